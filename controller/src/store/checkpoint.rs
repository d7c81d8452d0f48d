//! Copies the write-ahead log back into the database file beside the writer, so the
//! writer's own checkpoint finds little left to do.
//!
//! In WAL mode every commit appends pages to the log, and a checkpoint copies them into
//! the database and syncs it. SQLite runs that checkpoint inside the commit that takes the
//! log past `wal_autocheckpoint` pages: at thousands of callbacks a second that was one
//! commit in a few hundred holding every waiting caller for ≈ 50 ms, the whole p99 of the
//! callback benchmark (session 10: 20.9 ms with checkpoints off, 53–68 ms with).
//!
//! Here a thread of its own runs PASSIVE checkpoints after commits. A passive checkpoint
//! takes no lock a writer or reader waits for; it copies what is in the log when it starts,
//! while the writer goes on appending. The writer keeps its automatic checkpoint, because
//! only a checkpoint that finds the whole log copied lets the next commit start the log
//! again from its beginning; by the time it runs, this thread has copied all but the last
//! few commits, so it copies those and returns.

use std::path::Path;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Rest after a checkpoint before the next, so commits in the meantime are copied
/// together (a page written by many commits once). Short, because what is left when
/// the writer's own checkpoint comes is what it copies while callers wait: at 5 000
/// callbacks/s, p99 6.8–7.6 ms with 2 ms, 10–12 ms with 5 ms, 15–22 ms with 20 ms
/// (`BENCH=callback scripts/bench`, session 11).
const PAUSE: Duration = Duration::from_millis(2);

/// The handle the writer nudges after each commit. Dropping it ends the thread.
pub(super) struct Checkpointer {
    nudge: SyncSender<()>,
}

impl Checkpointer {
    /// Opens a connection of its own to `path` (in WAL mode already) and starts the thread.
    pub(super) fn start(path: &Path) -> Result<(Checkpointer, JoinHandle<()>), String> {
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        let (nudge, nudged) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("tapwire-store-checkpoint".into())
            .spawn(move || {
                while nudged.recv().is_ok() {
                    checkpoint(&conn);
                    std::thread::sleep(PAUSE);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok((Checkpointer { nudge }, thread))
    }

    /// Asks for a checkpoint soon. Never waits: a nudge already pending covers this one.
    pub(super) fn nudge(&self) {
        match self.nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                tracing::debug!(
                    "the store's checkpoint thread is gone; the writer checkpoints alone"
                );
            }
        }
    }
}

fn checkpoint(conn: &Connection) {
    // (busy, pages in the log, pages copied): busy only when another checkpoint runs, the
    // writer's own, which then does the work.
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match result {
        Ok((logged, copied)) => tracing::trace!(logged, copied, "checkpoint"),
        Err(error) => tracing::warn!(%error, "checkpointing the store's write-ahead log"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages committed to the log reach the database file only through a checkpoint;
    /// with the writer's own switched off, this thread is the one that copies them.
    #[test]
    fn a_nudge_copies_the_log_into_the_database_and_dropping_ends_the_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (x TEXT)",
            )
            .expect("setup");
        let (checkpointer, thread) = Checkpointer::start(&path).expect("start");
        let database_size = || std::fs::metadata(&path).expect("stat").len();
        let before = database_size();
        writer
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) \
                 INSERT INTO t SELECT hex(randomblob(500)) FROM n",
                [],
            )
            .expect("insert");
        assert_eq!(database_size(), before, "nothing checkpointed yet");
        checkpointer.nudge();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while database_size() < before + 400 * 1000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was not copied: {} bytes",
                database_size()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(checkpointer);
        thread.join().expect("the thread ends with its handle");
    }
}
