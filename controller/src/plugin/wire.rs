//! The line protocol's encoding and decoding, kept apart from processes so every rule
//! about what counts as a response is tested on plain bytes.

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{PluginError, PluginRequest};
use crate::event::{Event, HandlerAction};

/// Longest stdout/stderr line kept. A plugin printing an endless line must not make the
/// host buffer it all.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// How much of a bad line a fault report carries.
const GARBAGE_SHOWN: usize = 200;

#[derive(Serialize)]
struct WireRequest<'a> {
    id: &'a str,
    #[serde(flatten)]
    body: WireBody<'a>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireBody<'a> {
    Command {
        command: &'a str,
        args: &'a [String],
        event: &'a Event,
    },
    Event {
        event: &'a Event,
    },
}

/// The request as one line, newline included.
pub(crate) fn encode_request(id: &str, request: &PluginRequest) -> serde_json::Result<String> {
    let body = match request {
        PluginRequest::Command {
            event,
            command,
            args,
        } => WireBody::Command {
            command,
            args,
            event,
        },
        PluginRequest::Event { event } => WireBody::Event { event },
    };
    let mut line = serde_json::to_string(&WireRequest { id, body })?;
    line.push('\n');
    Ok(line)
}

/// A line that names a request. What it says is judged only once the request is found,
/// so that a malformed answer fails its caller at once instead of leaving it to time out.
#[derive(Debug)]
pub(crate) struct Response {
    pub id: String,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Actions(serde_json::Value),
    Error(serde_json::Value),
    Neither,
}

/// Why a line is garbage, or the response it is.
pub(crate) fn parse_response(line: &str) -> Result<Response, &'static str> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|_| "not JSON")?;
    let serde_json::Value::Object(mut object) = value else {
        return Err("not a JSON object");
    };
    // Numbers are accepted because hand-written plugins echo ids back carelessly.
    let id = match object.remove("id") {
        Some(serde_json::Value::String(id)) => id,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err("no string id"),
    };
    let body = match (object.remove("error"), object.remove("actions")) {
        (Some(error), _) if !error.is_null() => Body::Error(error),
        (_, Some(actions)) if !actions.is_null() => Body::Actions(actions),
        _ => Body::Neither,
    };
    Ok(Response { id, body })
}

impl Response {
    pub fn into_result(self, plugin: &str) -> Result<Vec<HandlerAction>, PluginError> {
        match self.body {
            Body::Error(serde_json::Value::String(message)) => Err(PluginError::Failed {
                plugin: plugin.to_string(),
                message,
            }),
            Body::Error(other) => Err(PluginError::Failed {
                plugin: plugin.to_string(),
                message: other.to_string(),
            }),
            Body::Actions(actions) => {
                serde_json::from_value(actions).map_err(|e| PluginError::BadResponse {
                    plugin: plugin.to_string(),
                    message: e.to_string(),
                })
            }
            Body::Neither => Err(PluginError::BadResponse {
                plugin: plugin.to_string(),
                message: "neither \"actions\" nor \"error\"".into(),
            }),
        }
    }
}

/// A line for a fault report: lossy UTF-8, cut to a readable length.
pub(crate) fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(GARBAGE_SHOWN).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// Without its `\n` (and `\r`).
    Full(Vec<u8>),
    /// Longer than the limit: its first `max` bytes; the rest was read and dropped.
    TooLong(Vec<u8>),
    Eof,
}

/// Reads one line, keeping at most `max` bytes of it. Not cancel safe: run it in a task
/// of its own.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut dropped = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            // A last line without a newline still counts; only nothing at all is the end.
            return Ok(match (line.is_empty() && !dropped, dropped) {
                (true, _) => Line::Eof,
                (false, true) => Line::TooLong(line),
                (false, false) => Line::Full(line),
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..take.min(room)]);
        dropped |= take > room;
        reader.consume(take + usize::from(done));
        if done {
            if line.last() == Some(&b'\r') && !dropped {
                line.pop();
            }
            return Ok(if dropped {
                Line::TooLong(line)
            } else {
                Line::Full(line)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_message;

    #[test]
    fn requests_carry_id_kind_and_event() {
        let event = test_message("phone-1", "Alice", "roster who 2026-11-24", false);
        let line = encode_request(
            "17",
            &PluginRequest::Command {
                event: event.clone(),
                command: "who".into(),
                args: vec!["2026-11-24".into()],
            },
        )
        .expect("encodes");
        assert!(
            line.starts_with("{\"id\":\"17\",\"kind\":\"command\""),
            "{line}"
        );
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
        let json: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(json["command"], "who");
        assert_eq!(json["args"][0], "2026-11-24");
        assert_eq!(json["event"]["type"], "message.received");

        let line = encode_request("18", &PluginRequest::Event { event }).expect("encodes");
        let json: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(json["kind"], "event");
        assert_eq!(json["id"], "18");
        assert!(json.get("args").is_none());
    }

    #[test]
    fn responses_are_told_from_garbage() {
        assert_eq!(parse_response("hello").unwrap_err(), "not JSON");
        assert_eq!(parse_response("[1]").unwrap_err(), "not a JSON object");
        assert_eq!(
            parse_response("{\"actions\":[]}").unwrap_err(),
            "no string id"
        );

        let ok = parse_response(r#"{"id":"1","actions":[{"action":"reply","text":"hi"}]}"#)
            .expect("response");
        assert_eq!(ok.id, "1");
        assert_eq!(
            ok.into_result("p").expect("actions"),
            vec![HandlerAction::reply("hi")]
        );

        let numeric = parse_response(r#"{"id":7,"actions":[]}"#).expect("response");
        assert_eq!(numeric.id, "7");

        let failed = parse_response(r#"{"id":"2","error":"no such date"}"#).expect("response");
        assert!(
            matches!(failed.into_result("p"), Err(PluginError::Failed { message, .. }) if message == "no such date")
        );

        let bad =
            parse_response(r#"{"id":"3","actions":[{"action":"reply","text":"x","bogus":1}]}"#)
                .expect("response");
        assert!(matches!(
            bad.into_result("p"),
            Err(PluginError::BadResponse { .. })
        ));

        let empty = parse_response(r#"{"id":"4"}"#).expect("response");
        assert!(matches!(
            empty.into_result("p"),
            Err(PluginError::BadResponse { .. })
        ));
    }

    #[test]
    fn garbage_is_shown_truncated() {
        assert_eq!(shown(b"short"), "short");
        let long = "值".repeat(500);
        let shown = shown(long.as_bytes());
        assert_eq!(shown.chars().count(), GARBAGE_SHOWN + 1);
        assert!(shown.ends_with('…'));
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let input = b"one\r\ntwo-is-long\nthree\nlast-without-newline".to_vec();
        let mut reader = tokio::io::BufReader::with_capacity(4, &input[..]);
        let mut lines = Vec::new();
        loop {
            match read_line(&mut reader, 8).await.expect("read") {
                Line::Eof => break,
                line => lines.push(line),
            }
        }
        assert_eq!(
            lines,
            vec![
                Line::Full(b"one".to_vec()),
                Line::TooLong(b"two-is-l".to_vec()),
                Line::Full(b"three".to_vec()),
                Line::TooLong(b"last-wit".to_vec()),
            ]
        );
    }
}
