//! One supervised process per plugin.
//!
//! Each plugin has a supervisor task that spawns the process, publishes it to callers
//! through a `watch` channel, and on its end fails the pending calls, reports the fault
//! and restarts it with backoff. Per process, a writer task owns stdin (so a plugin that
//! stops reading blocks only that writer), a reader task matches stdout lines to pending
//! calls by id, and a third task logs stderr.

use std::collections::HashMap;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::wire::{self, Line};
use super::{FaultKind, Manifest, PluginError, PluginFault, PluginRequest};
use crate::event::HandlerAction;
use crate::telemetry;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that stayed up this long was healthy: its next crash starts the backoff over.
const HEALTHY_UPTIME: Duration = Duration::from_secs(60);
/// How long a plugin gets to exit on its own once stdin closes at shutdown.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// How long the last stdout lines of an ended process are waited for; a grandchild that
/// inherited stdout could otherwise hold the reader open forever.
const DRAIN: Duration = Duration::from_millis(200);
/// Requests queued for one process's stdin before callers wait (within their timeout).
const QUEUE: usize = 64;
/// How long `start` waits for every plugin's first spawn.
const START_WAIT: Duration = Duration::from_secs(5);
/// Stdout faults (garbage, unknown ids) reported per process; past it they are only
/// counted, so a plugin printing junk in a loop cannot flood the faults channel or the log.
const STDOUT_FAULTS_REPORTED: u64 = 100;

type Reply = Result<Vec<HandlerAction>, PluginError>;

/// The running plugins. Clones share them; every method may be called from many tasks.
/// Dropping the last clone stops the plugins as `shutdown` does, without waiting.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

struct Inner {
    manifests: Vec<Manifest>,
    slots: HashMap<String, Arc<Slot>>,
    /// Supervisors stop on `true`, or when this sender is dropped with the host.
    stop: watch::Sender<bool>,
    supervisors: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStats {
    pub name: String,
    pub running: bool,
    pub pid: Option<u32>,
    /// Processes started after the first: crashes, timeouts and failed spawns retried.
    pub restarts: u64,
    pub faults: u64,
    pub calls: u64,
}

impl PluginHost {
    /// Spawns every plugin and returns once each has been started (or has failed to
    /// start, which is reported as a fault and retried, never an error here).
    pub async fn start(
        manifests: Vec<Manifest>,
        faults: mpsc::UnboundedSender<PluginFault>,
    ) -> PluginHost {
        let (stop, _) = watch::channel(false);
        let mut slots = HashMap::new();
        let mut supervisors = Vec::new();
        for manifest in &manifests {
            let (state, _) = watch::channel(State::Starting);
            let slot = Arc::new(Slot {
                manifest: manifest.clone(),
                state,
                faults: faults.clone(),
                next_id: AtomicU64::new(1),
                restarts: AtomicU64::new(0),
                fault_count: AtomicU64::new(0),
                calls: AtomicU64::new(0),
            });
            supervisors.push(tokio::spawn(supervise(slot.clone(), stop.subscribe())));
            slots.insert(manifest.name.clone(), slot);
        }
        let deadline = Instant::now() + START_WAIT;
        for slot in slots.values() {
            let mut state = slot.state.subscribe();
            let started = state.wait_for(|s| !matches!(s, State::Starting));
            if tokio::time::timeout_at(deadline, started).await.is_err() {
                tracing::warn!(plugin = %slot.name(), "plugin still starting");
            }
        }
        PluginHost {
            inner: Arc::new(Inner {
                manifests,
                slots,
                stop,
                supervisors: Mutex::new(supervisors),
            }),
        }
    }

    pub fn manifests(&self) -> &[Manifest] {
        &self.inner.manifests
    }

    pub fn manifest(&self, plugin: &str) -> Option<&Manifest> {
        self.inner.manifests.iter().find(|m| m.name == plugin)
    }

    /// Sends one request and waits for its answer, at most the manifest's timeout.
    pub async fn call(
        &self,
        plugin: &str,
        request: PluginRequest,
    ) -> Result<Vec<HandlerAction>, PluginError> {
        let slot = self
            .inner
            .slots
            .get(plugin)
            .ok_or_else(|| PluginError::UnknownPlugin(plugin.to_string()))?;
        slot.call(request).await
    }

    pub fn stats(&self) -> Vec<PluginStats> {
        self.inner
            .manifests
            .iter()
            .filter_map(|m| self.inner.slots.get(&m.name))
            .map(|slot| {
                let process = match &*slot.state.borrow() {
                    State::Running(process) => Some(process.pid),
                    _ => None,
                };
                PluginStats {
                    name: slot.name().to_string(),
                    running: process.is_some(),
                    pid: process.flatten(),
                    restarts: slot.restarts.load(Ordering::Relaxed),
                    faults: slot.fault_count.load(Ordering::Relaxed),
                    calls: slot.calls.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Closes every plugin's stdin, gives it a moment to exit, kills what is left and
    /// waits until every process has been reaped. Later calls fail with `Stopped`.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let supervisors = std::mem::take(&mut *lock(&self.inner.supervisors));
        for supervisor in supervisors {
            if let Err(e) = supervisor.await {
                tracing::error!(error = %e, "plugin supervisor failed");
            }
        }
    }
}

/// One plugin: its manifest, its current process and its counters.
struct Slot {
    manifest: Manifest,
    state: watch::Sender<State>,
    faults: mpsc::UnboundedSender<PluginFault>,
    /// Ids are never reused across restarts, so a late answer cannot reach a new caller.
    next_id: AtomicU64,
    restarts: AtomicU64,
    fault_count: AtomicU64,
    calls: AtomicU64,
}

#[derive(Clone)]
enum State {
    /// Being spawned, or being replaced after a kill: callers wait (within their timeout).
    Starting,
    Running(Arc<Process>),
    /// Waiting out the backoff: callers fail fast.
    Down {
        until: Instant,
    },
    Stopped,
}

/// One live process, shared by the callers using it.
struct Process {
    pid: Option<u32>,
    /// `None` once the process has ended and its calls have been failed.
    pending: Mutex<Option<HashMap<String, oneshot::Sender<Reply>>>>,
    requests: mpsc::Sender<String>,
    kill: mpsc::UnboundedSender<String>,
}

impl Process {
    /// Hands the reply channel back when the process has already ended.
    fn register(
        &self,
        id: &str,
        reply: oneshot::Sender<Reply>,
    ) -> Result<(), oneshot::Sender<Reply>> {
        match &mut *lock(&self.pending) {
            Some(pending) => {
                pending.insert(id.to_string(), reply);
                Ok(())
            }
            None => Err(reply),
        }
    }

    fn forget(&self, id: &str) {
        if let Some(pending) = &mut *lock(&self.pending) {
            pending.remove(id);
        }
    }

    /// False when no call waits for this id.
    fn resolve(&self, id: &str, reply: Reply) -> bool {
        let waiter = lock(&self.pending).as_mut().and_then(|p| p.remove(id));
        match waiter {
            // A caller that gave up in the meantime is not the plugin's fault.
            Some(waiter) => {
                let _ = waiter.send(reply);
                true
            }
            None => false,
        }
    }

    fn close(&self) -> HashMap<String, oneshot::Sender<Reply>> {
        lock(&self.pending).take().unwrap_or_default()
    }
}

impl Slot {
    fn name(&self) -> &str {
        &self.manifest.name
    }

    fn fault(&self, kind: FaultKind) {
        self.fault_count.fetch_add(1, Ordering::Relaxed);
        match &kind {
            FaultKind::SpawnFailed(_) | FaultKind::Exited { .. } => {
                tracing::error!(plugin = %self.name(), fault = %kind, "plugin fault");
            }
            _ => tracing::warn!(plugin = %self.name(), fault = %kind, "plugin fault"),
        }
        // Nobody listening is fine: the log and the counters still have it.
        let _ = self.faults.send(PluginFault {
            plugin: self.name().to_string(),
            kind,
        });
    }

    async fn call(&self, request: PluginRequest) -> Reply {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let timeout = self.manifest.timeout;
        let deadline = Instant::now() + timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let line = wire::encode_request(&id, &request).map_err(|e| PluginError::BadRequest {
            plugin: self.name().to_string(),
            message: e.to_string(),
        })?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let mut reply_tx = Some(reply_tx);
        let mut state = self.state.subscribe();
        let process = loop {
            let current = state.borrow_and_update().clone();
            match current {
                State::Running(process) => {
                    if let Some(tx) = reply_tx.take() {
                        match process.register(&id, tx) {
                            Ok(()) => break process,
                            // Ended under us: the supervisor is about to publish what next.
                            Err(tx) => reply_tx = Some(tx),
                        }
                    }
                }
                State::Down { until } => {
                    return Err(PluginError::Unavailable {
                        plugin: self.name().to_string(),
                        retry_in: until.saturating_duration_since(Instant::now()),
                    });
                }
                State::Stopped => return Err(self.stopped()),
                State::Starting => {}
            }
            match tokio::time::timeout_at(deadline, state.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(self.stopped()),
                Err(_) => {
                    return Err(PluginError::Unavailable {
                        plugin: self.name().to_string(),
                        retry_in: Duration::ZERO,
                    });
                }
            }
        };

        let exchange = async {
            // A closed queue means the process is ending; its end fails this call below.
            let _ = process.requests.send(line).await;
            reply_rx.await
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(PluginError::Crashed {
                plugin: self.name().to_string(),
                status: "supervisor gone".into(),
            }),
            Err(_) => {
                process.forget(&id);
                self.retire(&process, &id, timeout);
                Err(PluginError::Timeout {
                    plugin: self.name().to_string(),
                    after: timeout,
                })
            }
        }
    }

    /// Kills a process that left a request unanswered: it may be wedged. Only the first
    /// timeout per process is a fault; the calls that shared it end as `Crashed`.
    fn retire(&self, process: &Arc<Process>, id: &str, after: Duration) {
        let retired = self.state.send_if_modified(|state| {
            if let State::Running(current) = state
                && Arc::ptr_eq(current, process)
            {
                // New callers wait for the replacement instead of joining a doomed process.
                *state = State::Starting;
                true
            } else {
                false
            }
        });
        if retired {
            self.fault(FaultKind::Timeout {
                request: id.to_string(),
            });
            let _ = process
                .kill
                .send(format!("killed: request {id} timed out after {after:?}"));
        }
    }

    fn stopped(&self) -> PluginError {
        PluginError::Stopped {
            plugin: self.name().to_string(),
        }
    }
}

/// Why a process ended.
enum End {
    Exited(String),
    /// Killed by the host; restarted at once, since a wedged plugin is already
    /// rate-limited by its own timeout.
    Killed(String),
    Stop,
}

/// Exponential restart delay, reset by a process that stayed up long enough.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }

    fn after_crash(&mut self, uptime: Duration) -> Duration {
        if uptime >= HEALTHY_UPTIME {
            self.next = FIRST_BACKOFF;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        delay
    }
}

async fn supervise(slot: Arc<Slot>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    let mut first = true;
    loop {
        // A dropped host leaves `false` behind, so its closed channel counts as a stop.
        if *stop.borrow() || stop.has_changed().is_err() {
            break;
        }
        if !first {
            slot.restarts.fetch_add(1, Ordering::Relaxed);
            telemetry::plugin_restarted(slot.name());
        }
        first = false;
        slot.state.send_replace(State::Starting);
        let started = Instant::now();
        let (end, pending) = match spawn(&slot.manifest) {
            Ok(child) => run(&slot, child, &mut stop).await,
            Err(e) => {
                slot.fault(FaultKind::SpawnFailed(e.to_string()));
                (End::Exited(e.to_string()), HashMap::new())
            }
        };
        let error = |status: &str| PluginError::Crashed {
            plugin: slot.name().to_string(),
            status: status.to_string(),
        };
        match end {
            End::Stop => {
                slot.state.send_replace(State::Stopped);
                for waiter in pending.into_values() {
                    let _ = waiter.send(Err(slot.stopped()));
                }
                break;
            }
            End::Killed(reason) => {
                slot.state.send_replace(State::Starting);
                for waiter in pending.into_values() {
                    let _ = waiter.send(Err(error(&reason)));
                }
            }
            End::Exited(status) => {
                let delay = backoff.after_crash(started.elapsed());
                // Down before the callers hear of the crash, so a retry fails fast.
                slot.state.send_replace(State::Down {
                    until: Instant::now() + delay,
                });
                for waiter in pending.into_values() {
                    let _ = waiter.send(Err(error(&status)));
                }
                tracing::info!(plugin = %slot.name(), delay = ?delay, "plugin restarts after backoff");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopping(&mut stop) => {}
                }
            }
        }
    }
    slot.state.send_replace(State::Stopped);
    tracing::info!(plugin = %slot.name(), "plugin stopped");
}

/// Resolves once the host stops or is dropped.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

/// What every plugin gets of the controller's environment: enough to find programs and
/// format text, nothing secret.
const BASE_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "TZ",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_TIME",
];

fn spawn(manifest: &Manifest) -> std::io::Result<Child> {
    let (program, args) = manifest
        .exec
        .split_first()
        .ok_or_else(|| std::io::Error::other("exec is empty"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&manifest.dir)
        // Secrets come from the environment; each plugin sees only those it declares.
        .env_clear()
        .envs(
            BASE_ENV
                .iter()
                .copied()
                .chain(manifest.env.iter().map(String::as_str))
                .filter_map(|name| Some((name, std::env::var_os(name)?))),
        )
        .env("TAPWIRE_PLUGIN", &manifest.name)
        // Python buffers a piped stdout; a plugin that forgets to flush would time out.
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The backstop: whatever path drops the child, the process goes with it.
        .kill_on_drop(true);
    // Its own process group, so that what it starts (a shell's children, a worker pool)
    // can be stopped with it.
    #[cfg(unix)]
    command.process_group(0);
    command.spawn()
}

/// Kills whatever is left in a plugin's process group once the plugin itself is gone or
/// being killed: children it started must not outlive it (a hung helper would hold the
/// plugin's resources, or answer nobody forever).
fn kill_group(plugin: &str, pid: Option<u32>) {
    #[cfg(unix)]
    {
        let Some(group) = pid
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        if group == rustix::process::Pid::INIT {
            return;
        }
        match rustix::process::kill_process_group(group, rustix::process::Signal::KILL) {
            Ok(()) => {
                tracing::debug!(plugin, pid = ?pid, "killed what was left of the plugin's process group")
            }
            // Nothing left: the usual case.
            Err(rustix::io::Errno::SRCH) => {}
            Err(e) => tracing::warn!(plugin, error = %e, "cannot kill the plugin's process group"),
        }
    }
    #[cfg(not(unix))]
    let _ = (plugin, pid);
}

/// Serves one process until it ends; returns why, and the calls still pending on it.
async fn run(
    slot: &Arc<Slot>,
    mut child: Child,
    stop: &mut watch::Receiver<bool>,
) -> (End, HashMap<String, oneshot::Sender<Reply>>) {
    let pid = child.id();
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        // Unreachable with piped stdio; handled so that it is not a panic.
        let _ = child.kill().await;
        return (End::Exited("no stdio pipes".into()), HashMap::new());
    };
    let (requests, request_rx) = mpsc::channel(QUEUE);
    let (kill, mut kill_rx) = mpsc::unbounded_channel();
    let process = Arc::new(Process {
        pid,
        pending: Mutex::new(Some(HashMap::new())),
        requests,
        kill,
    });
    let writer = tokio::spawn(write_requests(slot.name().to_string(), stdin, request_rx));
    let mut reader = tokio::spawn(read_responses(slot.clone(), process.clone(), stdout));
    let mut logger = tokio::spawn(log_stderr(slot.name().to_string(), stderr));
    slot.state.send_replace(State::Running(process.clone()));
    tracing::info!(plugin = %slot.name(), pid = ?pid, "plugin started");

    let end = tokio::select! {
        status = child.wait() => End::Exited(describe(status)),
        Some(reason) = kill_rx.recv() => {
            kill_group(slot.name(), pid);
            if let Err(e) = child.kill().await {
                tracing::warn!(plugin = %slot.name(), error = %e, "cannot kill plugin");
            }
            tracing::warn!(plugin = %slot.name(), reason = %reason, "plugin killed");
            End::Killed(reason)
        }
        () = stopping(stop) => {
            // Dropping stdin is the plugin's cue to exit cleanly.
            writer.abort();
            if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_err() {
                tracing::warn!(plugin = %slot.name(), "plugin ignored closed stdin; killing");
                kill_group(slot.name(), pid);
                let _ = child.kill().await;
            }
            End::Stop
        }
    };
    writer.abort();
    // Its children, if it left any behind (they keep the group, so its id is not reused).
    kill_group(slot.name(), pid);
    if let End::Exited(status) = &end {
        // Answers the process wrote just before exiting still count.
        if tokio::time::timeout(DRAIN, &mut reader).await.is_err() {
            reader.abort();
        }
        slot.fault(FaultKind::Exited {
            status: status.clone(),
        });
    } else {
        reader.abort();
    }
    if tokio::time::timeout(DRAIN, &mut logger).await.is_err() {
        logger.abort();
    }
    (end, process.close())
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}

async fn write_requests(
    plugin: String,
    mut stdin: ChildStdin,
    mut requests: mpsc::Receiver<String>,
) {
    while let Some(line) = requests.recv().await {
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(e) = written.await {
            // The process closed stdin or died; its exit (or the caller's timeout) is
            // what gets reported.
            tracing::debug!(plugin = %plugin, error = %e, "cannot write to plugin");
            return;
        }
    }
}

async fn read_responses(slot: Arc<Slot>, process: Arc<Process>, stdout: ChildStdout) {
    let mut stdout = BufReader::new(stdout);
    let mut faults = 0;
    let mut report = |kind: FaultKind| {
        faults += 1;
        if faults <= STDOUT_FAULTS_REPORTED {
            slot.fault(kind);
        } else {
            slot.fault_count.fetch_add(1, Ordering::Relaxed);
            if faults == STDOUT_FAULTS_REPORTED + 1 {
                tracing::warn!(plugin = %slot.name(), "more junk on stdout: counted, no longer reported");
            }
        }
    };
    loop {
        let line = match wire::read_line(&mut stdout, wire::MAX_LINE).await {
            Ok(Line::Full(line)) => line,
            Ok(Line::TooLong(head)) => {
                report(FaultKind::Garbage {
                    line: wire::shown(&head),
                });
                continue;
            }
            Ok(Line::Eof) => return,
            Err(e) => {
                tracing::debug!(plugin = %slot.name(), error = %e, "plugin stdout closed");
                return;
            }
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            report(FaultKind::Garbage {
                line: wire::shown(&line),
            });
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        match wire::parse_response(text) {
            Ok(response) => {
                let id = response.id.clone();
                if !process.resolve(&id, response.into_result(slot.name())) {
                    report(FaultKind::UnknownId(id));
                }
            }
            Err(why) => {
                tracing::debug!(plugin = %slot.name(), why, "not a response");
                report(FaultKind::Garbage {
                    line: wire::shown(&line),
                });
            }
        }
    }
}

async fn log_stderr(plugin: String, stderr: ChildStderr) {
    let mut stderr = BufReader::new(stderr);
    loop {
        match wire::read_line(&mut stderr, wire::MAX_LINE).await {
            Ok(Line::Full(line) | Line::TooLong(line)) => {
                tracing::info!(plugin = %plugin, line = %String::from_utf8_lossy(&line), "plugin stderr");
            }
            Ok(Line::Eof) | Err(_) => return,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent across a panic (plain inserts and
    // takes), so a poisoned lock is still safe to use.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::event::{Event, test_message};
    use crate::plugin::load_dir;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins")
    }

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
    }

    async fn host(
        dir: &Path,
        names: &[&str],
    ) -> (PluginHost, mpsc::UnboundedReceiver<PluginFault>) {
        let manifests: Vec<Manifest> = load_dir(dir)
            .expect("fixtures load")
            .into_iter()
            .filter(|m| names.contains(&m.name.as_str()))
            .collect();
        assert_eq!(manifests.len(), names.len(), "{names:?}");
        let (tx, rx) = mpsc::unbounded_channel();
        (PluginHost::start(manifests, tx).await, rx)
    }

    fn command(name: &str, args: &[&str]) -> PluginRequest {
        PluginRequest::Command {
            event: test_message("phone-1", "Alice", name, false),
            command: name.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn replies(result: Reply) -> Vec<String> {
        result
            .expect("answered")
            .into_iter()
            .map(|a| match a {
                HandlerAction::Reply { text, .. } => text,
                other => panic!("not a reply: {other:?}"),
            })
            .collect()
    }

    fn drain(faults: &mut mpsc::UnboundedReceiver<PluginFault>) -> Vec<FaultKind> {
        std::iter::from_fn(|| faults.try_recv().ok())
            .map(|f| f.kind)
            .collect()
    }

    fn stats(host: &PluginHost, name: &str) -> PluginStats {
        host.stats()
            .into_iter()
            .find(|s| s.name == name)
            .expect("stats")
    }

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    /// Retries `call` while the plugin is restarting, for at most `within`.
    async fn call_until_up(host: &PluginHost, plugin: &str, within: Duration) -> Reply {
        let deadline = Instant::now() + within;
        loop {
            match host.call(plugin, command("ping", &[])).await {
                Err(PluginError::Unavailable { retry_in, .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(retry_in.max(Duration::from_millis(20))).await;
                }
                other => return other,
            }
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_after_a_healthy_run() {
        let mut backoff = Backoff::new();
        let quick = Duration::from_millis(10);
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.after_crash(quick).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert_eq!(backoff.after_crash(HEALTHY_UPTIME), FIRST_BACKOFF);
        assert_eq!(backoff.after_crash(quick), FIRST_BACKOFF * 2);
    }

    #[tokio::test]
    async fn roster_answers_who_and_schedules() {
        let (host, mut faults) = host(&shipped(), &["roster"]).await;

        // The expected name comes from roster.json, so the test follows edits to it.
        let roster: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(shipped().join("roster/roster.json")).expect("roster.json"),
        )
        .expect("json");
        let day = |date: &str| {
            humantime::parse_rfc3339(&format!("{date}T00:00:00Z"))
                .expect("date")
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after epoch")
                .as_secs()
                / 86_400
        };
        let start = day(roster["start"].as_str().expect("start"));
        let rotation = roster["rotation"].as_array().expect("rotation");
        let expected = rotation[((day("2026-11-24") - start) as usize) % rotation.len()]
            .as_str()
            .expect("name");
        assert_eq!(expected, "李娜");

        let who = host.call("roster", command("who", &["2026-11-24"])).await;
        assert_eq!(replies(who), [format!("2026-11-24 值班: {expected}")]);

        let bad = host.call("roster", command("who", &["24/11"])).await;
        assert!(
            matches!(&bad, Err(PluginError::Failed { message, .. }) if message.contains("YYYY-MM-DD")),
            "{bad:?}"
        );

        let mut fired: Event = test_message("scheduler", "-", "", false);
        fired.event_type = "schedule.fired".into();
        fired.conversation = None;
        fired.sender = None;
        fired.content.clear();
        // 16:30 UTC on the 23rd is already the 24th at UTC+8.
        fired.raw = serde_json::json!({
            "schedule": "duty-morning",
            "scheduled_for": "2026-11-23T16:30:00Z",
            "target": "wecom",
            "conversation": "ops-group",
            "data": {}
        });
        assert!(
            host.manifest("roster")
                .expect("manifest")
                .wants(&fired.event_type)
        );
        let actions = host
            .call("roster", PluginRequest::Event { event: fired })
            .await
            .expect("answered");
        assert_eq!(
            actions,
            [HandlerAction::Send {
                target: "wecom".into(),
                conversation: "ops-group".into(),
                text: format!("今日值班: {expected} (2026-11-24)"),
                attachments: Vec::new(),
            }]
        );
        assert_eq!(drain(&mut faults), []);
        host.shutdown().await;
    }

    #[tokio::test]
    async fn concurrent_calls_get_their_own_answers() {
        let (host, mut faults) = host(&fixtures(), &["echoer"]).await;
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let host = host.clone();
                tokio::spawn(async move {
                    let args = [format!("n{i}"), format!("值{i}")];
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    (i, host.call("echoer", command("echo", &args)).await)
                })
            })
            .collect();
        for call in calls {
            let (i, reply) = call.await.expect("task");
            assert_eq!(replies(reply), [format!("n{i} 值{i}")]);
        }
        assert_eq!(stats(&host, "echoer").calls, 20);
        assert_eq!(drain(&mut faults), []);
        host.shutdown().await;
    }

    #[tokio::test]
    async fn errors_bad_actions_and_events_are_told_apart() {
        let (host, mut faults) = host(&fixtures(), &["echoer"]).await;
        let failed = host.call("echoer", command("fail", &[])).await;
        assert!(
            matches!(&failed, Err(PluginError::Failed { plugin, message }) if plugin == "echoer" && message == "echoer refuses"),
            "{failed:?}"
        );
        let bad = host.call("echoer", command("bad-action", &[])).await;
        assert!(
            matches!(bad, Err(PluginError::BadResponse { .. })),
            "{bad:?}"
        );
        let event = host
            .call(
                "echoer",
                PluginRequest::Event {
                    event: test_message("phone-1", "Alice", "hi", false),
                },
            )
            .await;
        assert_eq!(replies(event), ["event message.received"]);
        let unknown = host.call("nobody", command("echo", &[])).await;
        assert!(matches!(unknown, Err(PluginError::UnknownPlugin(name)) if name == "nobody"));
        // Answers the plugin meant are not faults.
        assert_eq!(drain(&mut faults), []);
        host.shutdown().await;
    }

    #[tokio::test]
    async fn a_crash_fails_pending_calls_and_the_plugin_comes_back() {
        let (host, mut faults) = host(&fixtures(), &["crashy"]).await;
        let first_pid = stats(&host, "crashy").pid.expect("pid");
        let crash = tokio::spawn({
            let host = host.clone();
            async move { host.call("crashy", command("crash", &[])).await }
        });
        // Queued behind `crash`, so still pending when the process dies.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let bystander = host.call("crashy", command("ping", &[])).await;
        let crash = crash.await.expect("task");
        for result in [&crash, &bystander] {
            assert!(
                matches!(result, Err(PluginError::Crashed { status, .. }) if status.contains('3')),
                "{result:?}"
            );
        }

        // Down for its backoff: fail fast instead of waiting out the 5 s timeout.
        let asked = Instant::now();
        let down = host.call("crashy", command("ping", &[])).await;
        assert!(
            matches!(down, Err(PluginError::Unavailable { retry_in, .. }) if retry_in <= FIRST_BACKOFF),
            "{down:?}"
        );
        assert!(asked.elapsed() < Duration::from_secs(1));
        assert!(!stats(&host, "crashy").running);

        assert_eq!(
            replies(call_until_up(&host, "crashy", Duration::from_secs(5)).await),
            ["pong"]
        );
        let after = stats(&host, "crashy");
        assert!(
            after.running && after.restarts == 1 && after.faults == 1,
            "{after:?}"
        );
        assert_ne!(after.pid, Some(first_pid));
        assert!(!alive(first_pid));
        let reported = drain(&mut faults);
        assert!(
            matches!(reported.as_slice(), [FaultKind::Exited { status }] if status.contains('3')),
            "{reported:?}"
        );
        host.shutdown().await;
    }

    /// Running, not a zombie waiting to be reaped by whoever inherited it.
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
    }

    #[tokio::test]
    async fn what_a_killed_plugin_started_is_killed_with_it() {
        let (host, _faults) = host(&fixtures(), &["hangy"]).await;
        let spawned = replies(host.call("hangy", command("spawn", &[])).await);
        let child: u32 = spawned[0].parse().expect("a pid");
        assert!(running(child), "the fixture's child runs");
        let hung = host.call("hangy", command("hang", &[])).await;
        assert!(matches!(hung, Err(PluginError::Timeout { .. })), "{hung:?}");
        // The kill is sent before the timeout is answered; give the kernel a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while running(child) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!running(child), "the plugin's child {child} outlived it");
        assert_eq!(
            replies(call_until_up(&host, "hangy", Duration::from_secs(5)).await),
            ["pong"]
        );
        host.shutdown().await;
    }

    #[tokio::test]
    async fn a_plugin_sees_only_the_environment_it_declares() {
        // Two variables of this process that are not among the basic ones: one declared,
        // one standing for another component's secret.
        let mut extra = std::env::vars().map(|(name, _)| name).filter(|name| {
            !BASE_ENV.contains(&name.as_str())
                && !["PWD", "OLDPWD", "SHLVL", "_"].contains(&name.as_str())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let (Some(declared), Some(secret)) = (extra.next(), extra.next()) else {
            panic!("this test needs two environment variables beyond the basic ones");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let plugin = dir.path().join("envy");
        std::fs::create_dir(&plugin).expect("mkdir");
        std::fs::write(
            plugin.join("plugin.toml"),
            format!("name = \"envy\"\nexec = [\"sh\", \"envy.sh\"]\nenv = [{declared:?}]\n[[commands]]\nname = \"env\"\n"),
        )
        .expect("manifest");
        // Answers with the names of its environment variables.
        std::fs::write(
            plugin.join("envy.sh"),
            r#"while IFS= read -r line; do
  id=$(printf '%s\n' "$line" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
  printf '{"id":"%s","actions":[{"action":"reply","text":"%s"}]}\n' "$id" "$(env | cut -d= -f1 | tr '\n' ' ')"
done
"#,
        )
        .expect("script");
        let (host, _faults) = host(dir.path(), &["envy"]).await;
        let names = replies(host.call("envy", command("env", &[])).await).join(" ");
        let names: Vec<&str> = names.split_whitespace().collect();
        assert!(
            names.contains(&declared.as_str()),
            "{declared} missing: {names:?}"
        );
        assert!(names.contains(&"PATH"), "{names:?}");
        assert!(names.contains(&"TAPWIRE_PLUGIN"), "{names:?}");
        assert!(
            !names.contains(&secret.as_str()),
            "{secret} leaked: {names:?}"
        );
        host.shutdown().await;
    }

    #[tokio::test]
    async fn a_hung_request_times_out_and_the_process_is_replaced() {
        let (host, mut faults) = host(&fixtures(), &["hangy"]).await;
        let first_pid = stats(&host, "hangy").pid.expect("pid");
        let asked = Instant::now();
        let hung = host.call("hangy", command("hang", &[])).await;
        let waited = asked.elapsed();
        assert!(
            matches!(hung, Err(PluginError::Timeout { after, .. }) if after == Duration::from_millis(300)),
            "{hung:?}"
        );
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{waited:?}"
        );

        // The replacement starts at once: the next call waits for it, not for a backoff.
        assert_eq!(
            replies(host.call("hangy", command("ping", &[])).await),
            ["pong"]
        );
        let after = stats(&host, "hangy");
        assert!(
            after.running && after.restarts == 1 && after.faults == 1,
            "{after:?}"
        );
        assert!(!alive(first_pid), "the wedged process was killed");
        let reported = drain(&mut faults);
        assert!(
            matches!(reported.as_slice(), [FaultKind::Timeout { request }] if request == "1"),
            "{reported:?}"
        );
        host.shutdown().await;
    }

    #[tokio::test]
    async fn garbage_is_reported_and_answers_still_arrive() {
        let (host, mut faults) = host(&fixtures(), &["garbage"]).await;
        assert_eq!(
            replies(host.call("garbage", command("ping", &[])).await),
            ["still fine"]
        );
        assert_eq!(
            drain(&mut faults),
            [
                FaultKind::Garbage {
                    line: "this is not JSON".into()
                },
                FaultKind::Garbage {
                    line: r#"{"no":"id"}"#.into()
                },
                FaultKind::UnknownId("nobody-asked".into()),
            ]
        );

        // A line past the limit is dropped whole, and the next line is read normally.
        assert_eq!(
            replies(host.call("garbage", command("long", &[])).await),
            ["still fine"]
        );
        let reported = drain(&mut faults);
        assert_eq!(reported.len(), 4, "{reported:?}");
        assert!(
            matches!(&reported[3], FaultKind::Garbage { line } if line.starts_with("xxx") && line.chars().count() <= 201),
            "{:?}",
            reported[3]
        );
        let after = stats(&host, "garbage");
        assert!(
            after.running && after.restarts == 0 && after.faults == 7,
            "{after:?}"
        );

        // A flood is counted in full but reported only up to the cap.
        assert_eq!(
            replies(host.call("garbage", command("flood", &[])).await),
            ["still fine"]
        );
        let reported = drain(&mut faults);
        assert_eq!(reported.len() as u64, STDOUT_FAULTS_REPORTED - 7);
        assert_eq!(stats(&host, "garbage").faults, 7 + 3 + 300);
        host.shutdown().await;
    }

    #[tokio::test]
    async fn a_plugin_that_cannot_start_is_a_fault_not_an_error() {
        let tmp = tempfile::tempdir().expect("tmp");
        let manifest = Manifest {
            name: "missing".into(),
            description: String::new(),
            dir: tmp.path().to_path_buf(),
            exec: vec!["tapwire-test-no-such-program".into()],
            events: Vec::new(),
            timeout: Duration::from_secs(5),
            commands: Vec::new(),
            env: Vec::new(),
        };
        let (tx, mut faults) = mpsc::unbounded_channel();
        let host = PluginHost::start(vec![manifest], tx).await;
        let reported = drain(&mut faults);
        assert!(
            matches!(reported.as_slice(), [FaultKind::SpawnFailed(_)]),
            "{reported:?}"
        );
        let call = host.call("missing", command("x", &[])).await;
        assert!(
            matches!(call, Err(PluginError::Unavailable { .. })),
            "{call:?}"
        );
        assert!(!stats(&host, "missing").running);
        host.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_leaves_no_process_behind() {
        let (host, _faults) = host(&fixtures(), &["echoer", "hangy", "crashy"]).await;
        let pids: Vec<u32> = host
            .stats()
            .iter()
            .map(|s| s.pid.expect("running"))
            .collect();
        assert!(pids.iter().all(|&pid| alive(pid)), "{pids:?}");
        // A request left hanging must not hold shutdown up.
        let hanging = tokio::spawn({
            let host = host.clone();
            async move { host.call("hangy", command("hang", &[])).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        host.shutdown().await;
        for pid in &pids {
            assert!(!alive(*pid), "pid {pid} outlived shutdown");
        }
        let hanging = hanging.await.expect("task");
        assert!(
            matches!(hanging, Err(PluginError::Stopped { .. })),
            "{hanging:?}"
        );
        let after = host.call("echoer", command("echo", &["x"])).await;
        assert!(
            matches!(after, Err(PluginError::Stopped { .. })),
            "{after:?}"
        );
        assert!(host.stats().iter().all(|s| !s.running));
        // Twice is harmless.
        host.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_kills_a_plugin_that_ignores_closed_stdin() {
        let (host, _faults) = host(&fixtures(), &["hangy"]).await;
        let pid = stats(&host, "hangy").pid.expect("pid");
        assert_eq!(
            replies(host.call("hangy", command("linger", &[])).await),
            ["pong"]
        );
        let asked = Instant::now();
        host.shutdown().await;
        assert!(!alive(pid), "pid {pid} outlived shutdown");
        // It was given the grace period, then killed, not left for its 30 s sleep.
        let took = asked.elapsed();
        assert!(
            took >= EXIT_GRACE && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn dropping_the_host_stops_its_plugins() {
        let (host, _faults) = host(&fixtures(), &["hangy"]).await;
        let pid = stats(&host, "hangy").pid.expect("pid");
        drop(host);
        let deadline = Instant::now() + Duration::from_secs(3);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(pid), "pid {pid} outlived its host");
    }
}
