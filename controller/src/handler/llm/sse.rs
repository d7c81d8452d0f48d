//! Server-sent events, as the WHATWG HTML standard's "Interpreting an event stream"
//! (§9.2.6) reads them: lines of `field: value`, `data` lines joined with `\n`, `event`
//! naming the type, `:` starting a comment, an empty line ending an event. Both chat APIs
//! stream this way (OpenAI's `data: {...}` ... `data: [DONE]`; Dify's `data: {"event": ...}`).
//!
//! Written here rather than taken from a crate: it is these forty lines over reqwest's
//! `chunk()`, where `eventsource-stream` would bring `nom` and reqwest's `stream` feature
//! for the same. Bytes are kept until a line is whole, so a character split across two
//! reads (Chinese text often is) is never cut.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `message` when the stream named none.
    pub event: String,
    pub data: String,
}

/// Decodes a byte stream, read by read, into events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// The incomplete last line.
    pending: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Takes the next read and returns the events it completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            // A blank line dispatches; an event without data is dropped (the standard's
            // rule), its type with it.
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            return Some(SseEvent {
                event: if event.is_empty() {
                    "message".to_string()
                } else {
                    event
                },
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = value.to_string(),
            // `id` and `retry` are for reconnecting EventSources; a chat answer is
            // requested again whole instead.
            _ => {}
        }
        None
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
    fn events_split_across_reads_even_inside_a_character_come_out_whole() {
        let stream = "data: {\"a\":\"你好\"}\n\n: keep-alive\n\nevent: ping\ndata: x\r\n\r\ndata: [DONE]\n\n";
        let bytes = stream.as_bytes();
        // Every split point, including inside the three bytes of 你.
        for cut in 0..bytes.len() {
            let mut decoder = SseDecoder::default();
            let mut events = decoder.feed(&bytes[..cut]);
            events.extend(decoder.feed(&bytes[cut..]));
            assert_eq!(
                events,
                [
                    data("{\"a\":\"你好\"}"),
                    SseEvent {
                        event: "ping".into(),
                        data: "x".into()
                    },
                    data("[DONE]"),
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn data_lines_join_and_an_unfinished_event_waits() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"data:one\ndata: two\n").is_empty());
        assert_eq!(decoder.feed(b"\n"), [data("one\ntwo")]);
        assert!(decoder.feed(b"event: lonely\n\n").is_empty());
        assert_eq!(decoder.feed(b"data\n\n"), [data("")]);
    }
}
