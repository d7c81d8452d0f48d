//! The replay cache of a callback route: a signed request taken once is not taken again.
//!
//! A platform's signature proves who sent a request, not that it is new: whoever sees
//! one (a proxy's log, a tunnel) could send it again while its timestamp is still
//! accepted. So each verified request's signed values (timestamp and nonce, or the
//! signature itself where the platform signs no nonce) are remembered until its
//! timestamp falls out of the route's window, after which the window refuses it anyway;
//! the cache therefore never needs to remember longer than the window. Only verified
//! requests get in, so a forger cannot fill it; it is still bounded, evicting the entries
//! closest to expiry first.
//!
//! A platform's own retry of a request we were too slow to answer is the same request
//! too. So a request is remembered as in flight while it is handled, released if handling
//! failed (the platform's retry is then handled as new), and kept, with what to answer
//! again, once it succeeded: a repeat then gets that answer (usually the platform's plain
//! "received") without being read, decrypted or routed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// The most requests one route remembers at once.
pub const CAPACITY: usize = 50_000;

#[derive(Debug)]
enum State<V> {
    InFlight,
    Done(V),
}

#[derive(Debug)]
struct Entry<V> {
    expires: SystemTime,
    state: State<V>,
}

#[derive(Debug)]
struct Inner<V> {
    entries: HashMap<String, Entry<V>>,
    /// Every key by its expiry, earliest first; stale pairs (a key released, or claimed
    /// again with another expiry) are skipped when they surface.
    expiries: BinaryHeap<Reverse<(SystemTime, String)>>,
    capacity: usize,
}

impl<V> Inner<V> {
    fn pop_earliest(&mut self) {
        while let Some(Reverse((expires, key))) = self.expiries.pop() {
            if self.entries.get(&key).is_some_and(|e| e.expires == expires) {
                self.entries.remove(&key);
                return;
            }
        }
    }

    fn prune(&mut self, now: SystemTime) {
        while let Some(Reverse((expires, _))) = self.expiries.peek() {
            if *expires > now {
                break;
            }
            if let Some(Reverse((expires, key))) = self.expiries.pop()
                && self.entries.get(&key).is_some_and(|e| e.expires == expires)
            {
                self.entries.remove(&key);
            }
        }
    }
}

/// One route's remembered requests; `V` is what a repeat of a handled one is answered
/// with (`()` where the answer is always the same).
#[derive(Debug)]
pub struct Replays<V> {
    inner: Arc<Mutex<Inner<V>>>,
}

/// What the cache knows of a request.
#[derive(Debug)]
pub enum Seen<V> {
    /// Not seen (or released): handle it, then say how it went on the claim.
    New(Claim<V>),
    /// Handled before: answer with this, and do nothing else.
    Done(V),
    /// Being handled right now (the platform's retry overtook our answer): ask it to come
    /// again later.
    InFlight,
}

/// A request being handled. [`Claim::done`] remembers it as handled; dropped without
/// that (handling failed), it is forgotten, so the platform's retry is handled anew.
#[derive(Debug)]
pub struct Claim<V> {
    inner: Arc<Mutex<Inner<V>>>,
    key: String,
    done: bool,
}

fn lock<V>(inner: &Mutex<Inner<V>>) -> MutexGuard<'_, Inner<V>> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl<V: Clone> Replays<V> {
    pub fn new() -> Replays<V> {
        Replays::with_capacity(CAPACITY)
    }

    pub fn with_capacity(capacity: usize) -> Replays<V> {
        Replays {
            inner: Arc::new(Mutex::new(Inner {
                entries: HashMap::new(),
                expiries: BinaryHeap::new(),
                capacity: capacity.max(1),
            })),
        }
    }

    /// Looks `key` up; a new one is claimed until `expires` (when its signed timestamp
    /// leaves the route's window).
    pub fn check(&self, key: &str, expires: SystemTime, now: SystemTime) -> Seen<V> {
        let mut inner = lock(&self.inner);
        inner.prune(now);
        if let Some(entry) = inner.entries.get(key) {
            return match &entry.state {
                State::InFlight => Seen::InFlight,
                State::Done(value) => Seen::Done(value.clone()),
            };
        }
        if expires <= now {
            // Already out of the window: nothing to remember (the window refuses it).
            return Seen::New(Claim {
                inner: self.inner.clone(),
                key: String::new(),
                done: true,
            });
        }
        while inner.entries.len() >= inner.capacity {
            inner.pop_earliest();
        }
        inner.entries.insert(
            key.to_string(),
            Entry {
                expires,
                state: State::InFlight,
            },
        );
        inner.expiries.push(Reverse((expires, key.to_string())));
        Seen::New(Claim {
            inner: self.inner.clone(),
            key: key.to_string(),
            done: false,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }
}

impl<V: Clone> Default for Replays<V> {
    fn default() -> Self {
        Replays::new()
    }
}

impl<V> Claim<V> {
    /// Handled: a repeat until the expiry is answered with `value`.
    pub fn done(mut self, value: V) {
        self.done = true;
        if self.key.is_empty() {
            return;
        }
        if let Some(entry) = lock(&self.inner).entries.get_mut(&self.key) {
            entry.state = State::Done(value);
        }
    }
}

impl<V> Drop for Claim<V> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.inner).entries.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_request_is_new_once_then_answered_as_before_until_it_expires() {
        let replays: Replays<&str> = Replays::new();
        let Seen::New(claim) = replays.check("k", at(700), at(100)) else {
            panic!("new");
        };
        assert!(matches!(
            replays.check("k", at(700), at(101)),
            Seen::InFlight
        ));
        claim.done("answered");
        assert!(matches!(
            replays.check("k", at(700), at(600)),
            Seen::Done("answered")
        ));
        // Another key is another request.
        assert!(matches!(
            replays.check("k2", at(700), at(600)),
            Seen::New(_)
        ));
        // Past its expiry the key is gone (the window refuses it by then).
        assert!(matches!(
            replays.check("k", at(1_300), at(700)),
            Seen::New(_)
        ));
    }

    #[test]
    fn a_failed_request_is_released_for_the_platforms_retry() {
        let replays: Replays<()> = Replays::new();
        match replays.check("k", at(700), at(100)) {
            Seen::New(claim) => drop(claim),
            other => panic!("{other:?}"),
        }
        assert_eq!(replays.len(), 0);
        let Seen::New(claim) = replays.check("k", at(700), at(100)) else {
            panic!("new again");
        };
        claim.done(());
        assert!(matches!(
            replays.check("k", at(700), at(100)),
            Seen::Done(())
        ));
    }

    #[test]
    fn the_cache_is_bounded_and_gives_up_the_nearest_expiry_first() {
        let replays: Replays<()> = Replays::with_capacity(3);
        for (key, expires) in [("a", 500), ("b", 300), ("c", 400), ("d", 600)] {
            let Seen::New(claim) = replays.check(key, at(expires), at(100)) else {
                panic!("{key}");
            };
            claim.done(());
        }
        assert_eq!(replays.len(), 3);
        assert!(matches!(replays.check("b", at(300), at(100)), Seen::New(_)));
        // Expired entries go as time passes.
        let _held = replays.check("z", at(10_000), at(550));
        assert_eq!(replays.len(), 2);
        // Something already out of its window is not remembered.
        let Seen::New(claim) = replays.check("old", at(10), at(550)) else {
            panic!("old");
        };
        claim.done(());
        assert_eq!(replays.len(), 2);
    }
}
