//! A small Server-Sent Events parser: bytes in (in whatever chunks the network gives), events out.
//!
//! Follows the WHATWG rules votectl needs: lines end in LF, CRLF or CR; `event:` names the event,
//! `data:` lines are joined with `\n`; one leading space after the colon is dropped; lines starting
//! with `:` are comments (keep-alives); a blank line dispatches the event if it has data.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `message` when the stream did not name it.
    pub event: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl Parser {
    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                        events.push(event);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    fn line_done(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `id` and `retry` do not matter to votectl; unknown fields are ignored by the spec.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_chunking() {
        let stream = b": keep-alive\r\nevent: results\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n\
                       data:plain\n\nevent: other\n\n";
        let expected = vec![
            Event {
                event: "results".into(),
                data: "{\"a\":\n1}".into(),
            },
            Event {
                event: "message".into(),
                data: "plain".into(),
            },
        ];
        for size in 1..stream.len() {
            let mut parser = Parser::default();
            let events: Vec<Event> = stream.chunks(size).flat_map(|c| parser.feed(c)).collect();
            assert_eq!(events, expected, "chunk size {size}");
        }
    }
}
