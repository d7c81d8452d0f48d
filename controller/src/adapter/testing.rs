//! What the adapters' tests share: an inbox that keeps what it is given, the context
//! that hands it to an adapter, and a loopback server for callback routes and
//! stand-ins of platform APIs.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Adapter, AdapterContext, Inbox};
use crate::event::Event;

/// An inbox that keeps what it is given; an idempotency key seen before is not fresh
/// (as the store would say).
#[derive(Default)]
pub struct Kept(pub Mutex<Vec<Event>>);

#[async_trait]
impl Inbox for Kept {
    async fn accept(&self, event: Event) -> Result<bool, crate::store::StoreError> {
        let mut kept = self.0.lock().expect("lock");
        let fresh = !kept
            .iter()
            .any(|e| e.idempotency_key == event.idempotency_key);
        if fresh {
            kept.push(event);
        }
        Ok(fresh)
    }
    fn submit(&self, event: Event) {
        self.0.lock().expect("lock").push(event);
    }
}

/// A context whose inbox is `kept`.
pub fn context(kept: &Arc<Kept>) -> AdapterContext {
    AdapterContext {
        store: Arc::new(crate::store::MemoryStore::default()),
        inbox: kept.clone(),
        activity: tokio::sync::broadcast::channel(4).0,
    }
}

/// Serves `router` on a loopback port: `http://127.0.0.1:PORT`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The adapter's callback routes served as the server mounts them: the URL of
/// `/callback/<name>`.
pub async fn callbacks(adapter: &dyn Adapter, name: &str) -> String {
    let path = format!("/callback/{name}");
    let router = axum::Router::new().nest(&path, adapter.routes().expect("routes"));
    format!("{}{path}", serve(router).await)
}

/// Property tests' shared pieces: the case count and strategies that make input shaped
/// enough to reach deep into a parser (its own field names and values) without ever
/// being trusted to be well formed.
pub mod props {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use proptest::sample::select;
    use serde_json::Value;

    /// Cases per property: 256, enough to find the usual panics (a slice past a length,
    /// an index not checked) and quick enough for every test run; `PROPTEST_CASES` asks
    /// for more (or fewer) on a run of one's own.
    pub fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(256);
        ProptestConfig::with_cases(cases)
    }

    /// Arbitrary JSON whose keys, and some string values, come from `words` (the fields
    /// and values a parser looks for) more often than not.
    pub fn json(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            select(words).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            let key = prop_oneof![
                3 => select(words).prop_map(str::to_string),
                1 => any::<String>(),
            ];
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::Array),
                btree_map(key, inner, 0..10)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// `base` (a genuine callback) with one to three of the values at `pointers` (JSON
    /// pointers) replaced by arbitrary JSON: input a parser takes deep before it meets
    /// what is wrong.
    pub fn mutated(
        base: Value,
        pointers: &'static [&'static str],
        words: &'static [&'static str],
    ) -> impl Strategy<Value = Value> {
        vec((select(pointers), json(words)), 1..4).prop_map(move |changes| {
            let mut value = base.clone();
            for (pointer, replacement) in changes {
                if let Some(slot) = value.pointer_mut(pointer) {
                    *slot = replacement;
                }
            }
            value
        })
    }

    /// Arbitrary XML in the shape of a WeCom callback (`<xml>` and flat children, some
    /// in CDATA) with children named, and often valued, from `tags`; or any text at all.
    pub fn xml(tags: &'static [&'static str]) -> impl Strategy<Value = String> {
        let value = prop_oneof![select(tags).prop_map(str::to_string), any::<String>()];
        let field = (select(tags), value, any::<bool>()).prop_map(|(tag, value, cdata)| {
            if cdata {
                format!("<{tag}><![CDATA[{value}]]></{tag}>")
            } else {
                format!("<{tag}>{value}</{tag}>")
            }
        });
        prop_oneof![
            3 => vec(field, 0..10).prop_map(|fields| format!("<xml>{}</xml>", fields.concat())),
            1 => any::<String>(),
        ]
    }
}
