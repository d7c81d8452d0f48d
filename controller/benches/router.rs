//! Router and pipeline throughput, measured per event (so p99 is real, not derived):
//!
//! - `in-process`: route + pipeline (dedup, self-filter, rate limit, command parsing,
//!   permission check, dispatch decision, formatting) over a mix of messages, all in
//!   memory. Command dispatch to a scene goes as far as the plugin host; the scene's
//!   process is not running, so no I/O is measured here.
//! - `durable`: the same, with the event stored before routing and its actions stored
//!   after, on SQLite in WAL mode: one conversation (one event at a time, in a task on
//!   the multi-thread runtime as a lane runs), then 8 conversations side by side, whose
//!   writes the store's single writer commits together (group commit).
//! - `plugin`: `roster who` through the live roster plugin (Python, JSON lines).
//!
//! `cargo bench -p tapwire --bench router` (BENCH_EVENTS scales the counts).

#![allow(clippy::print_stdout)] // a benchmark's report

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapwire::event::{Conversation, ConversationKind, Event, Segment, Sender, types};
use tapwire::handler::pipeline::{PipelineConfig, PrefixConfig, RateLimit};
use tapwire::handler::{Handler, Handlers, Pipeline};
use tapwire::plugin::{CommandSpec, Manifest, PluginHost, PluginRequest};
use tapwire::router::{Pattern, Route, Router};
use tapwire::store::{SharedStore, SqliteStore};

fn message(i: usize, text: &str) -> Event {
    let chat = format!("chat-{}", i % 50);
    Event {
        id: format!("ev_{i}"),
        event_type: types::MESSAGE_RECEIVED.into(),
        source: "phone-1".into(),
        platform: "wechat".into(),
        idempotency_key: format!("bench:{i}"),
        conversation: Some(Conversation {
            id: chat.clone(),
            title: Some(chat),
            kind: ConversationKind::Group,
        }),
        sender: Some(Sender {
            id: format!("user-{}", i % 200),
            display_name: None,
            is_self: false,
        }),
        content: vec![Segment::Text { text: text.into() }],
        platform_message_id: None,
        timestamp: "2026-11-24T00:00:00.000Z".into(),
        raw: serde_json::Value::Null,
    }
}

/// Plain chat, help, a prefix, scene commands (granted and not), an unknown command.
const TEXTS: &[&str] = &[
    "明天几点开会？",
    "help",
    "#总结一下今天的讨论",
    "ops deploy web",
    "ops status",
    "ops fly",
    "好的，收到",
    "help ops",
];

fn router() -> Router {
    let mut routes: Vec<Route> = (0..18)
        .map(|i| Route {
            id: format!("other-{i}"),
            pattern: Pattern::parse(if i % 2 == 0 {
                "group.*"
            } else {
                "device.connected"
            })
            .expect("pattern"),
            source: Some(format!("phone-{}", i + 2)),
            conversation: None,
            priority: i,
            enabled: true,
            continue_: false,
            handler: "echo".into(),
        })
        .collect();
    routes.push(Route {
        id: "audit".into(),
        pattern: Pattern::Any,
        source: Some("nobody".into()),
        conversation: None,
        priority: 100,
        enabled: true,
        continue_: true,
        handler: "echo".into(),
    });
    routes.push(Route {
        id: "bot".into(),
        pattern: Pattern::parse("message.*").expect("pattern"),
        source: None,
        conversation: None,
        priority: 0,
        enabled: true,
        continue_: false,
        handler: "bot".into(),
    });
    Router::new(routes)
}

async fn handlers(store: SharedStore) -> Arc<Handlers> {
    let command = |name: &str, public: bool| CommandSpec {
        name: name.into(),
        usage: format!("ops {name}"),
        help: format!("{name} things"),
        public,
    };
    // A scene whose process cannot start: dispatch is measured up to the plugin host.
    let ops = Manifest {
        name: "ops".into(),
        description: "operations".into(),
        dir: std::env::temp_dir(),
        exec: vec!["/nonexistent/tapwire-bench-plugin".into()],
        events: Vec::new(),
        timeout: Duration::from_secs(1),
        commands: vec![command("deploy", false), command("status", true)],
        env: Vec::new(),
    };
    let (faults, mut faults_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while faults_rx.recv().await.is_some() {} });
    let plugins = PluginHost::start(vec![ops], faults).await;
    let bot = Pipeline::new(
        "bot",
        &PipelineConfig {
            rate_limit: Some(RateLimit {
                messages: 1_000_000,
                per_seconds: 60,
            }),
            prefixes: vec![PrefixConfig {
                prefix: "#".into(),
                handler: "echo".into(),
                help: "ask".into(),
            }],
            fallback: Some("echo".into()),
            ..PipelineConfig::default()
        },
    );
    let mut map: HashMap<String, Box<dyn Handler>> = HashMap::new();
    map.insert("bot".to_string(), Box::new(bot));
    map.insert(
        "echo".to_string(),
        Box::new(Pipeline::builtin("echo", true)),
    );
    let admins: HashSet<String> = (0..200)
        .step_by(10)
        .map(|i| format!("wechat:user-{i}"))
        .collect();
    Arc::new(Handlers::new(map, store, plugins, admins, HashMap::new()))
}

struct Figures {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    actions: usize,
}

impl Figures {
    fn report(mut self, name: &str) {
        self.latencies.sort_unstable();
        let at = |q: f64| self.latencies[((self.latencies.len() as f64 - 1.0) * q) as usize];
        println!(
            "{name}: {} events in {:.2} s = {:.0} events/s; per event p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {} actions",
            self.events,
            self.elapsed.as_secs_f64(),
            self.events as f64 / self.elapsed.as_secs_f64(),
            at(0.50).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6,
            at(1.0).as_secs_f64() * 1e6,
            self.actions,
        );
    }
}

async fn in_process(offset: usize, count: usize, handlers: &Handlers, router: &Router) -> Figures {
    // Distinct keys: the dedup stage would stop a repeated one early.
    let events: Vec<Event> = (offset..offset + count)
        .map(|i| message(i, TEXTS[i % TEXTS.len()]))
        .collect();
    let mut latencies = Vec::with_capacity(count);
    let mut actions = 0;
    let started = Instant::now();
    for event in &events {
        let t = Instant::now();
        for route in router.route(event) {
            actions += handlers
                .handle(&route.handler, event)
                .await
                .expect("handled")
                .actions
                .len();
        }
        latencies.push(t.elapsed());
    }
    Figures {
        events: count,
        elapsed: started.elapsed(),
        latencies,
        actions,
    }
}

async fn durable(
    offset: usize,
    count: usize,
    store: &SharedStore,
    handlers: &Handlers,
    router: &Router,
) -> Figures {
    let events: Vec<Event> = (offset..offset + count)
        .map(|i| message(i, TEXTS[i % TEXTS.len()]))
        .collect();
    let mut latencies = Vec::with_capacity(count);
    let mut actions = 0;
    let started = Instant::now();
    for event in &events {
        let t = Instant::now();
        store.insert_event(event).await.expect("stored");
        let mut decided = Vec::new();
        for route in router.route(event) {
            decided.extend(
                handlers
                    .handle(&route.handler, event)
                    .await
                    .expect("handled")
                    .actions,
            );
        }
        actions += store
            .complete_event(event, &decided, None)
            .await
            .expect("completed")
            .len();
        latencies.push(t.elapsed());
    }
    Figures {
        events: count,
        elapsed: started.elapsed(),
        latencies,
        actions,
    }
}

/// The runtime's shape: conversations in their own lanes, side by side, each in order.
async fn durable_lanes(
    lanes: usize,
    count: usize,
    store: &SharedStore,
    handlers: &Arc<Handlers>,
    router: &Arc<Router>,
) -> Figures {
    let mut set = tokio::task::JoinSet::new();
    let started = Instant::now();
    for lane in 0..lanes {
        let (store, handlers, router) = (store.clone(), handlers.clone(), router.clone());
        let offset = 20_000_000 + lane * count;
        set.spawn(async move { durable(offset, count / lanes, &store, &handlers, &router).await });
    }
    let mut all = Figures {
        events: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        actions: 0,
    };
    while let Some(done) = set.join_next().await {
        let figures = done.expect("lane");
        all.events += figures.events;
        all.actions += figures.actions;
        all.latencies.extend(figures.latencies);
    }
    all.elapsed = started.elapsed();
    all
}

async fn plugin_round_trip(count: usize) -> Figures {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let manifests: Vec<Manifest> = tapwire::plugin::load_dir(&plugins)
        .expect("the repo's plugins")
        .into_iter()
        .filter(|m| m.name == "roster")
        .collect();
    let (faults, _faults_rx) = tokio::sync::mpsc::unbounded_channel();
    let host = PluginHost::start(manifests, faults).await;
    let event = message(0, "roster who 2026-11-24");
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let request = PluginRequest::Command {
            event: event.clone(),
            command: "who".into(),
            args: vec!["2026-11-24".into()],
        };
        host.call("roster", request)
            .await
            .expect("the roster answers");
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    host.shutdown().await;
    Figures {
        events: count,
        elapsed,
        latencies,
        actions: count,
    }
}

fn main() {
    let scale: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: SharedStore = Arc::new(
            SqliteStore::open(&dir.path().join("bench.db"))
                .await
                .expect("store"),
        );
        let handlers = handlers(store.clone()).await;
        let router = router();
        // Warm up: caches, allocator, the failed plugin start.
        in_process(1_000_000_000, 5_000, &handlers, &router).await;
        in_process(0, scale, &handlers, &router)
            .await
            .report("in-process route + pipeline");
        let router = Arc::new(router);
        // On a worker thread, as a lane runs in the binary (not on the thread in block_on).
        let one = {
            let (store, handlers, router) = (store.clone(), handlers.clone(), router.clone());
            tokio::spawn(async move {
                durable(10_000_000, scale / 10, &store, &handlers, &router).await
            })
        };
        one.await
            .expect("one conversation")
            .report("durable, one conversation (store event, route, store actions; SQLite WAL)");
        durable_lanes(8, scale / 10, &store, &handlers, &router)
            .await
            .report("durable, 8 conversations side by side");
        plugin_round_trip(scale / 100)
            .await
            .report("roster who through the external plugin (Python, JSON lines)");
    });
}
