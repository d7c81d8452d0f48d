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
