//! Dify's chat app API, streamed. From Dify's "Chat App API" reference (`POST
//! /chat-messages`): the body has `inputs`, `query`, `response_mode: "streaming"`,
//! `user` and `conversation_id` (empty to start one; the id from the answer continues
//! it, Dify keeping the memory itself). Each SSE `data:` is JSON with an `event`:
//! `message` (chat apps) or `agent_message` (agent apps) carry the next `answer` piece and
//! the `conversation_id`; `message_end` ends the answer; `error` (`status`, `code`,
//! `message`) ends it failing; `ping` and the workflow/agent_thought events are progress
//! notes with no text.

use serde_json::{Value, json};

use super::Flow;
use super::sse::SseEvent;

pub fn body(text: &str, user: &str, conversation_id: Option<&str>) -> Value {
    json!({
        "inputs": {},
        "query": text,
        "response_mode": "streaming",
        "user": user,
        "conversation_id": conversation_id.unwrap_or_default(),
    })
}

#[derive(Debug, Default)]
pub struct Reader {
    pub text: String,
    pub conversation_id: Option<String>,
}

impl Reader {
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Flow, String> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|error| format!("an event that is not JSON ({error})"))?;
        if let Some(id) = chunk
            .get("conversation_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        {
            self.conversation_id = Some(id.to_string());
        }
        match chunk.get("event").and_then(Value::as_str).unwrap_or("") {
            "message" | "agent_message" => {
                if let Some(piece) = chunk.get("answer").and_then(Value::as_str) {
                    self.text.push_str(piece);
                }
                Ok(Flow::More)
            }
            "message_end" => Ok(Flow::Done),
            "error" => {
                let field = |name: &str| {
                    chunk
                        .get(name)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .unwrap_or_default()
                };
                Err(format!(
                    "Dify failed mid-stream: {} {}: {}",
                    field("status"),
                    field("code"),
                    field("message")
                ))
            }
            _ => Ok(Flow::More),
        }
    }

    pub fn at_end(&self) -> Result<(), String> {
        Err("the stream ended before message_end".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: "message".into(),
            data: text.into(),
        }
    }

    #[test]
    fn answers_add_up_the_conversation_is_kept_and_errors_fail() {
        let body = body("hi", "wechat:李娜", None);
        assert_eq!(body["response_mode"], "streaming");
        assert_eq!(body["conversation_id"], "");
        let mut reader = Reader::default();
        for event in [
            r#"{"event":"message","task_id":"t","message_id":"m","conversation_id":"c-1","answer":"你"}"#,
            r#"{"event":"ping"}"#,
            r#"{"event":"agent_thought","conversation_id":"c-1","thought":"x"}"#,
            r#"{"event":"agent_message","conversation_id":"c-1","answer":"好"}"#,
        ] {
            assert!(matches!(reader.on_event(&data(event)), Ok(Flow::More)));
        }
        assert!(matches!(
            reader.on_event(&data(
                r#"{"event":"message_end","conversation_id":"c-1","metadata":{}}"#
            )),
            Ok(Flow::Done)
        ));
        assert_eq!(reader.text, "你好");
        assert_eq!(reader.conversation_id.as_deref(), Some("c-1"));
        assert!(reader.at_end().is_err());
        let error = reader
            .on_event(&data(
                r#"{"event":"error","status":400,"code":"invalid_param","message":"bad"}"#,
            ))
            .err()
            .expect("error");
        assert!(
            error.contains("invalid_param") && error.contains("bad"),
            "{error}"
        );
    }
}
