//! The live view of each phone: every screen its actor reads (an
//! [`Observation`](tapwire_device_agent::agent::Observation)) goes to a broadcast the
//! server's event streams subscribe to, and the last one (with its screenshot, if one was
//! taken) is kept for a page that opens later.
//!
//! The actor asks [`PhoneLive::watching`] before taking a screenshot, and the count behind
//! it is held by each open stream ([`Watch`]), so an unwatched phone costs no screenshot.
//! Process-wide like [`crate::health`]: the phone's thread and the server meet here without
//! being wired to each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tapwire_device_agent::agent::{Observation, Observer};
use tapwire_device_agent::reader::Frame;
use tokio::sync::broadcast;

use crate::health::{self, SourceHealth};

/// One phone's live view.
pub struct PhoneLive {
    name: String,
    screens: broadcast::Sender<Arc<Observation>>,
    watchers: AtomicUsize,
    refresh: AtomicBool,
    last: Mutex<Option<Arc<Observation>>>,
    /// The last observation that came with a screenshot: a read without one (nobody
    /// watched, or the screen had not changed) keeps the picture that is still true.
    last_shot: Mutex<Option<Arc<Observation>>>,
    /// The last raw frame encoded as PNG, by its observation's time: encoded once however
    /// many pages ask.
    png: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
    health: Arc<SourceHealth>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl PhoneLive {
    fn new(name: &str) -> PhoneLive {
        // Readers that fall this far behind skip to the newest screen, which is all a
        // live view needs.
        let (screens, _) = broadcast::channel(16);
        PhoneLive {
            name: name.to_string(),
            screens,
            watchers: AtomicUsize::new(0),
            refresh: AtomicBool::new(false),
            last: Mutex::new(None),
            last_shot: Mutex::new(None),
            png: Mutex::new(None),
            health: health::of(name),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts watching: screenshots are taken from now on, and the phone reads its screen
    /// once soon even if nothing changes on it, so the watcher has something to see.
    pub fn watch(self: &Arc<Self>) -> (Watch, broadcast::Receiver<Arc<Observation>>) {
        let receiver = self.screens.subscribe();
        self.watchers.fetch_add(1, Ordering::SeqCst);
        self.refresh.store(true, Ordering::SeqCst);
        (Watch(self.clone()), receiver)
    }

    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::SeqCst)
    }

    /// The last screen read.
    pub fn last(&self) -> Option<Arc<Observation>> {
        lock(&self.last).clone()
    }

    /// The last screen read with a screenshot.
    pub fn last_screenshot(&self) -> Option<Arc<Observation>> {
        lock(&self.last_shot).clone()
    }

    /// The last screenshot as PNG, and when its screen was read. A raw frame (the vision
    /// reader's) is encoded here, off the async threads, once.
    pub async fn last_png(&self) -> Option<Result<(u64, Arc<Vec<u8>>), String>> {
        let shot = self.last_screenshot()?;
        let frame = shot.screenshot.clone()?;
        if let Frame::Png(png) = frame.as_ref() {
            return Some(Ok((shot.at_ms, Arc::new(png.clone()))));
        }
        if let Some((at, png)) = lock(&self.png).clone()
            && at == shot.at_ms
        {
            return Some(Ok((at, png)));
        }
        let encoded = tokio::task::spawn_blocking(move || frame.to_png())
            .await
            .map_err(|e| e.to_string())
            .and_then(|png| png);
        Some(encoded.map(|png| {
            let png = Arc::new(png);
            *lock(&self.png) = Some((shot.at_ms, png.clone()));
            (shot.at_ms, png)
        }))
    }
}

impl Observer for PhoneLive {
    fn watching(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    fn wants_refresh(&self) -> bool {
        self.refresh.swap(false, Ordering::Relaxed)
    }

    fn observe(&self, observation: Observation) {
        self.health.screen_read();
        let observation = Arc::new(observation);
        if observation.screenshot.is_some() {
            *lock(&self.last_shot) = Some(observation.clone());
        }
        *lock(&self.last) = Some(observation.clone());
        // Nobody subscribed is fine.
        let _ = self.screens.send(observation);
    }

    fn unchanged(&self) {
        self.health.screen_read();
    }
}

/// One watcher of a phone; the count drops with it.
pub struct Watch(Arc<PhoneLive>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<PhoneLive>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<PhoneLive>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// The live view of phone `name`, created on first use (by the phone when it starts).
pub fn phone(name: &str) -> Arc<PhoneLive> {
    lock(registry())
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(PhoneLive::new(name)))
        .clone()
}

/// The live view of phone `name` if that phone exists.
pub fn find(name: &str) -> Option<Arc<PhoneLive>> {
    lock(registry()).get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_device_agent::screen::ScreenKind;

    fn seen(shot: bool) -> Observation {
        Observation {
            device: "live-test".into(),
            at_ms: 1,
            kind: ScreenKind::Chat,
            reader: "wechat-8.0".into(),
            title: Some("amy".into()),
            rows: Vec::new(),
            messages: Vec::new(),
            boxes: Vec::new(),
            size: shot.then_some((10, 20)),
            screenshot: shot.then(|| Arc::new(Frame::Png(vec![1, 2, 3]))),
        }
    }

    #[tokio::test]
    async fn watchers_are_counted_and_see_each_screen() {
        let live = phone("live-test");
        assert!(!live.watching());
        let (watch, mut screens) = live.watch();
        assert!(live.watching());
        assert!(live.wants_refresh(), "a new watcher asks for a read");
        assert!(!live.wants_refresh(), "once");
        live.observe(seen(true));
        live.observe(seen(false));
        assert!(screens.recv().await.expect("first").screenshot.is_some());
        assert!(screens.recv().await.expect("second").screenshot.is_none());
        assert!(live.last().expect("last").screenshot.is_none());
        assert!(live.last_screenshot().expect("shot").screenshot.is_some());
        drop(watch);
        assert!(!live.watching());
        assert!(find("live-test").is_some());
        assert!(find("live-nobody").is_none());
    }
}
