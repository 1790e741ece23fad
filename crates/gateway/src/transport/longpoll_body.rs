//! The body of a long-poll POST, split into the client frames it carries: a
//! whole body is one text message; an `application/x-ndjson` body is up to
//! [`MAX_BATCH_LINES`] lines, each a JSON text message or the standard
//! base64 of a V2 binary push.
//!
//! Pure and synchronous, so it can be fuzzed on its own (`fuzz/`); decoding
//! the frames and acting on them is the long-poll handler's job.

use base64::Engine;
use switchboard_protocol::FrameRef;

/// Lines of an ndjson POST processed; the rest are ignored, as Phoenix does.
pub const MAX_BATCH_LINES: usize = 100;

/// One client frame found in a POST body.
#[derive(Debug, PartialEq, Eq)]
pub enum PostedFrame<'a> {
    /// A text message, borrowed from the body.
    Text(&'a [u8]),
    /// A binary push, decoded from its base64 line.
    Binary(Vec<u8>),
    /// An ndjson line that is neither JSON nor base64.
    NotBase64,
}

impl PostedFrame<'_> {
    /// The frame to decode; `None` for a line that carried none.
    pub fn as_frame(&self) -> Option<FrameRef<'_>> {
        match self {
            PostedFrame::Text(text) => Some(FrameRef::Text(text)),
            PostedFrame::Binary(bytes) => Some(FrameRef::Binary(bytes)),
            PostedFrame::NotBase64 => None,
        }
    }
}

/// The frames of a POST body, in order. `ndjson`: the body's content type
/// is `application/x-ndjson`. Empty lines are skipped and a line's trailing
/// `\r` is ignored; base64 is decoded one line at a time, so a line's decoded
/// bytes are never larger than the line.
pub fn posted_frames(
    body: &[u8],
    ndjson: bool,
) -> Box<dyn Iterator<Item = PostedFrame<'_>> + Send + '_> {
    if !ndjson {
        return Box::new(std::iter::once(PostedFrame::Text(body)));
    }
    let lines = body
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .take(MAX_BATCH_LINES)
        .map(ndjson_line);
    Box::new(lines)
}

fn ndjson_line(line: &[u8]) -> PostedFrame<'_> {
    if matches!(line.first(), Some(b'[') | Some(b'{')) {
        return PostedFrame::Text(line);
    }
    match base64::engine::general_purpose::STANDARD.decode(line) {
        Ok(bytes) => PostedFrame::Binary(bytes),
        Err(_) => PostedFrame::NotBase64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_body_is_one_text_message() {
        let frames: Vec<_> = posted_frames(b"[1]\n[2]", false).collect();
        assert_eq!(frames, vec![PostedFrame::Text(b"[1]\n[2]")]);
    }

    #[test]
    fn ndjson_lines_are_text_binary_or_not_base64() {
        let body = b"[\"1\"]\r\n\n{\"a\":1}\nAAEC\n!!!\n";
        let frames: Vec<_> = posted_frames(body, true).collect();
        assert_eq!(
            frames,
            vec![
                PostedFrame::Text(b"[\"1\"]"),
                PostedFrame::Text(b"{\"a\":1}"),
                PostedFrame::Binary(vec![0, 1, 2]),
                PostedFrame::NotBase64,
            ]
        );
    }

    #[test]
    fn only_the_first_lines_of_a_batch_count() {
        let body = "[]\n".repeat(MAX_BATCH_LINES + 50);
        assert_eq!(
            posted_frames(body.as_bytes(), true).count(),
            MAX_BATCH_LINES
        );
    }
}
