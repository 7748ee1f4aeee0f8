//! A server-sent events parser: bytes in as they arrive, whole messages out.
//!
//! It follows the WHATWG rules the API's stream needs: lines end in `\n`, `\r\n` or `\r`; a
//! blank line ends a message; `event:`, `id:` and `data:` (several `data:` lines join with
//! `\n`); lines starting with `:` are comments (keep-alives); a space after the colon is dropped.

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// `message` when the server named none.
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    event: Option<String>,
    id: Option<String>,
    data: Vec<String>,
}

impl Parser {
    /// Feeds bytes; returns the messages they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Message> {
        self.buffer.extend_from_slice(bytes);
        let mut messages = Vec::new();
        while let Some((line, rest)) = split_line(&self.buffer) {
            let line = String::from_utf8_lossy(line).into_owned();
            self.buffer.drain(..rest);
            if let Some(message) = self.line(&line) {
                messages.push(message);
            }
        }
        messages
    }

    fn line(&mut self, line: &str) -> Option<Message> {
        if line.is_empty() {
            if self.data.is_empty() {
                self.event = None;
                return None;
            }
            return Some(Message {
                event: self.event.take().unwrap_or_else(|| "message".to_owned()),
                id: self.id.clone(),
                data: std::mem::take(&mut self.data).join("\n"),
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
            "event" => self.event = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// The first complete line of `buffer` and where the next one starts. A lone `\r` at the very
/// end waits for more bytes (it may be the first half of `\r\n`).
fn split_line(buffer: &[u8]) -> Option<(&[u8], usize)> {
    let end = buffer.iter().position(|b| *b == b'\n' || *b == b'\r')?;
    if buffer[end] == b'\r' {
        match buffer.get(end + 1) {
            None => return None,
            Some(b'\n') => return Some((&buffer[..end], end + 2)),
            Some(_) => return Some((&buffer[..end], end + 1)),
        }
    }
    Some((&buffer[..end], end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_chunks_come_out_whole() {
        let mut parser = Parser::default();
        assert!(parser.feed(b": keep-alive\n\nevent: link.cli").is_empty());
        assert!(parser.feed(b"cked\nid: evt_1\ndata: {\"a\":").is_empty());
        let messages = parser.feed(b"1}\n\nevent: ready\r\ndata: x\r\n\r\n");
        assert_eq!(
            messages,
            vec![
                Message {
                    event: "link.clicked".into(),
                    id: Some("evt_1".into()),
                    data: "{\"a\":1}".into(),
                },
                Message {
                    event: "ready".into(),
                    id: Some("evt_1".into()),
                    data: "x".into(),
                },
            ]
        );
    }

    #[test]
    fn data_lines_join_and_a_message_without_data_is_nothing() {
        let mut parser = Parser::default();
        let messages = parser.feed(b"data:a\ndata: b\n\nevent: empty\n\n");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].event, "message");
        assert_eq!(messages[0].data, "a\nb");
    }

    #[test]
    fn a_carriage_return_at_the_end_of_a_chunk_waits_for_its_newline() {
        let mut parser = Parser::default();
        assert!(parser.feed(b"data: x\r").is_empty());
        assert!(parser.feed(b"\n\r").is_empty());
        assert_eq!(parser.feed(b"\n").len(), 1);
    }
}
