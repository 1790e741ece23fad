//! Frames as they cross the wire: [`Frame`] for encoded outbound frames
//! (cheap to clone, shared across a broadcast's subscribers) and [`FrameRef`]
//! for borrowing an inbound frame.
//!
//! It does not know how frames are encoded; see the codec modules.

use bytes::Bytes;

/// An encoded frame, ready for the wire, cheap to clone.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A text frame; the bytes are always valid UTF-8.
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
}

impl Frame {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether the frame has no bytes (never true for an encoded message).
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The text of a text frame, for long-poll's `messages` list; `None` for
    /// binary frames. Validates UTF-8 (linear in the length, no copy).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Frame::Text(b) => std::str::from_utf8(b).ok(),
            Frame::Binary(_) => None,
        }
    }

    /// The raw bytes, whichever the kind.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b,
        }
    }

    /// Whether this is a binary frame.
    pub fn is_binary(&self) -> bool {
        matches!(self, Frame::Binary(_))
    }
}

/// A borrowed inbound frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameRef<'a> {
    /// A text frame's bytes.
    Text(&'a [u8]),
    /// A binary frame's bytes.
    Binary(&'a [u8]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let t = Frame::Text(Bytes::from_static(b"[1]"));
        assert_eq!(t.len(), 3);
        assert!(!t.is_empty());
        assert_eq!(t.as_text(), Some("[1]"));
        assert!(!t.is_binary());

        let b = Frame::Binary(Bytes::from_static(&[2, 0, 0]));
        assert_eq!(b.len(), 3);
        assert_eq!(b.as_text(), None);
        assert!(b.is_binary());
        assert!(Frame::Binary(Bytes::new()).is_empty());
    }
}
