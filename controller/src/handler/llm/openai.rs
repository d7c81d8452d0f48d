//! OpenAI-compatible chat completions, streamed (DeepSeek, Qwen's DashScope compatible
//! mode, GLM, Ollama's `/v1` and OpenAI itself). From OpenAI's API reference, "Create
//! chat completion" and "The chat completion chunk object": POST `{base}/chat/completions`
//! with `stream: true`; each SSE `data:` is a chunk whose `choices[0].delta.content`
//! carries the next text, `choices[0].finish_reason` is set on the last one, and the
//! stream ends with `data: [DONE]`. Some compatible servers put `{"error": {...}}` in a
//! `data:` line when they fail after the 200. Tools (the same reference, "Function
//! calling"): `tools` lists functions with JSON-schema parameters; a chunk's
//! `delta.tool_calls[]` carries, per `index`, the call's `function.name` once and its
//! `function.arguments` JSON in fragments to be joined, and the last chunk's
//! `finish_reason` is `tool_calls`.

use serde_json::{Value, json};

use super::Flow;
use super::sse::SseEvent;
use crate::store::Turn;

pub struct Request<'a> {
    pub model: &'a str,
    pub system_prompt: Option<&'a str>,
    pub history: &'a [Turn],
    pub text: &'a str,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Offer the `send` and `forward` tools.
    pub tools: bool,
}

/// The Tapwire actions a model may call: `send` a text to a conversation of a phone or
/// adapter, `forward` the asker's message there.
fn tools() -> Value {
    let place = json!({
        "target": {"type": "string", "description": "the phone serial or adapter name to send through"},
        "conversation": {"type": "string", "description": "the conversation (chat name, user or group id) on that target"},
    });
    let mut send_params = place.clone();
    send_params["text"] = json!({"type": "string", "description": "the text to send"});
    json!([
        {"type": "function", "function": {
            "name": "send",
            "description": "Send a text message to a conversation on one of Tapwire's phones or platforms.",
            "parameters": {"type": "object", "properties": send_params, "required": ["target", "conversation", "text"]},
        }},
        {"type": "function", "function": {
            "name": "forward",
            "description": "Forward the message being answered (its text, images and files) to another conversation.",
            "parameters": {"type": "object", "properties": place, "required": ["target", "conversation"]},
        }},
    ])
}

/// A function the model called, its arguments joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

pub fn body(request: &Request<'_>) -> Value {
    let mut messages = Vec::new();
    if let Some(prompt) = request.system_prompt {
        messages.push(json!({ "role": "system", "content": prompt }));
    }
    for turn in request.history {
        messages.push(json!({ "role": turn.role, "content": turn.text }));
    }
    messages.push(json!({ "role": "user", "content": request.text }));
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
    });
    if let Some(max_tokens) = request.max_tokens {
        body["max_tokens"] = json!(max_tokens);
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    if request.tools {
        body["tools"] = tools();
    }
    body
}

/// The answer as the chunks build it.
#[derive(Debug, Default)]
pub struct Reader {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// A choice said why it stopped: a stream ending without `[DONE]` after this is
    /// still whole (some compatible servers leave `[DONE]` out).
    finished: bool,
}

impl Reader {
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Flow, String> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Flow::Done);
        }
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|error| format!("a chunk that is not JSON ({error})"))?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_string);
            return Err(format!("the API failed mid-stream: {message}"));
        }
        // A usage chunk (`stream_options.include_usage`) has no choices.
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return Ok(Flow::More);
        };
        if let Some(piece) = choice
            .get("delta")
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
        {
            self.text.push_str(piece);
        }
        let calls = choice
            .get("delta")
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            let index = call
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(self.tool_calls.len());
            if index > 64 {
                return Err(format!("tool call index {index} is past any sane answer"));
            }
            if self.tool_calls.len() <= index {
                self.tool_calls.resize(index + 1, ToolCall::default());
            }
            let function = call.get("function");
            let field = |name: &str| function.and_then(|f| f.get(name)).and_then(Value::as_str);
            if let Some(name) = field("name") {
                self.tool_calls[index].name.push_str(name);
            }
            if let Some(arguments) = field("arguments") {
                self.tool_calls[index].arguments.push_str(arguments);
            }
        }
        if choice
            .get("finish_reason")
            .is_some_and(|reason| !reason.is_null())
        {
            self.finished = true;
        }
        Ok(Flow::More)
    }

    /// The stream closed without `[DONE]`.
    pub fn at_end(&self) -> Result<(), String> {
        if self.finished {
            Ok(())
        } else {
            Err("the stream ended before the answer did (no [DONE], no finish_reason)".into())
        }
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
    fn the_request_carries_the_prompt_the_memory_and_the_question_in_order() {
        let history = [Turn::new("user", "q"), Turn::new("assistant", "a")];
        let body = body(&Request {
            model: "deepseek-chat",
            system_prompt: Some("be brief"),
            history: &history,
            text: "now",
            max_tokens: Some(100),
            temperature: None,
            tools: true,
        });
        assert_eq!(body["tools"][0]["function"]["name"], "send");
        assert_eq!(body["tools"][1]["function"]["name"], "forward");
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 100);
        assert!(body.get("temperature").is_none());
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["role"].as_str().expect("role"))
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(body["messages"][3]["content"], "now");
    }

    #[test]
    fn deltas_add_up_until_done_and_errors_mid_stream_fail() {
        let mut reader = Reader::default();
        let first = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert!(matches!(reader.on_event(&data(first)), Ok(Flow::More)));
        let piece = r#"{"choices":[{"index":0,"delta":{"content":"你好"},"finish_reason":null}]}"#;
        assert!(matches!(reader.on_event(&data(piece)), Ok(Flow::More)));
        assert!(reader.at_end().is_err(), "no end yet");
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert!(matches!(reader.on_event(&data(last)), Ok(Flow::More)));
        assert!(matches!(
            reader.on_event(&data(r#"{"choices":[],"usage":{}}"#)),
            Ok(Flow::More)
        ));
        assert!(matches!(reader.on_event(&data("[DONE]")), Ok(Flow::Done)));
        assert_eq!(reader.text, "你好");
        assert!(reader.at_end().is_ok());

        let mut failing = Reader::default();
        let error = failing
            .on_event(&data(r#"{"error":{"message":"overloaded"}}"#))
            .err()
            .expect("an error");
        assert!(error.contains("overloaded"), "{error}");
        assert!(failing.on_event(&data("not json")).is_err());
    }

    #[test]
    fn tool_call_fragments_are_joined_per_index() {
        let mut reader = Reader::default();
        for chunk in [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"send","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"target\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"forward","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"ops\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ] {
            assert!(matches!(reader.on_event(&data(chunk)), Ok(Flow::More)));
        }
        assert_eq!(
            reader.tool_calls,
            [
                ToolCall {
                    name: "send".into(),
                    arguments: "{\"target\":\"ops\"}".into()
                },
                ToolCall {
                    name: "forward".into(),
                    arguments: "{}".into()
                },
            ]
        );
        assert!(reader.text.is_empty());
        assert!(reader.at_end().is_ok());
    }
}
