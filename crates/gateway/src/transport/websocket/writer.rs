//! Writes queued data frames to a client socket: a batch of frames in one
//! vectored write, each frame's payload straight from the hub's shared
//! encoding.
//!
//! Written by hand, not through tungstenite, for two reasons. tungstenite
//! copies every frame into a per-connection output buffer that keeps its
//! largest size for the connection's life: one large broadcast would leave
//! every subscriber holding a buffer that large. And it writes each frame as
//! it is queued, one syscall per frame, where a batch can share one. A
//! server frame needs no masking, so all there is to write is a 2–10 byte
//! header (RFC 6455 §5.2) in front of bytes that are already shared.
//! Control frames (pong, close) still go through tungstenite.

use std::io::{self, IoSlice};

use switchboard_protocol::Frame;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The longest frame header a server writes: FIN/opcode, the 127 marker and
/// a 64-bit length.
const MAX_HEADER: usize = 10;

/// A frame header and how many of its bytes are used.
struct Header {
    bytes: [u8; MAX_HEADER],
    len: usize,
}

impl Header {
    /// The unmasked header of a final frame carrying `frame`.
    fn of(frame: &Frame) -> Header {
        let opcode = match frame {
            Frame::Text(_) => 0x1,
            Frame::Binary(_) => 0x2,
        };
        let mut bytes = [0; MAX_HEADER];
        bytes[0] = 0x80 | opcode;
        let payload = frame.len();
        let len = if payload < 126 {
            bytes[1] = payload as u8;
            2
        } else if let Ok(short) = u16::try_from(payload) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
            10
        };
        Header { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Writes `frames` as WebSocket data frames, in order, then flushes.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    stream: &mut W,
    frames: &[Frame],
) -> io::Result<()> {
    let headers: Vec<Header> = frames.iter().map(Header::of).collect();
    let mut slices: Vec<IoSlice<'_>> = headers
        .iter()
        .zip(frames)
        .flat_map(|(header, frame)| [IoSlice::new(header.as_slice()), IoSlice::new(frame.bytes())])
        .filter(|slice| !slice.is_empty())
        .collect();
    let mut unwritten = &mut slices[..];
    while !unwritten.is_empty() {
        let written = stream.write_vectored(unwritten).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut unwritten, written);
    }
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameSocket;

    use super::*;

    /// Reads back what [`write_frames`] wrote with tungstenite's own frame
    /// parser: opcode, FIN and payload of each frame.
    fn parse(wire: Vec<u8>) -> Vec<(u8, bool, Vec<u8>)> {
        let mut socket = FrameSocket::new(std::io::Cursor::new(wire));
        let mut frames = Vec::new();
        while let Some(frame) = socket.read(None).expect("a valid frame") {
            let header = frame.header();
            frames.push((
                u8::from(header.opcode),
                header.is_final,
                frame.into_payload().to_vec(),
            ));
        }
        frames
    }

    #[tokio::test]
    async fn frames_of_every_length_class_read_back_intact() {
        let sizes = [0, 1, 125, 126, 65_535, 65_536, 200_000];
        let frames: Vec<Frame> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let bytes = Bytes::from(vec![b'a' + i as u8; size]);
                if i % 2 == 0 {
                    Frame::Text(bytes)
                } else {
                    Frame::Binary(bytes)
                }
            })
            .collect();
        let mut wire = Vec::new();
        write_frames(&mut wire, &frames).await.unwrap();
        let read = parse(wire);
        assert_eq!(read.len(), frames.len());
        for (i, ((opcode, fin, payload), frame)) in read.into_iter().zip(&frames).enumerate() {
            assert!(fin, "frame {i} is final");
            assert_eq!(opcode, if i % 2 == 0 { 1 } else { 2 }, "frame {i} opcode");
            assert_eq!(payload, frame.bytes()[..], "frame {i} payload");
        }
    }

    #[tokio::test]
    async fn partial_writes_are_resumed() {
        // A duplex pipe with a tiny buffer accepts a few bytes per write.
        let (mut client, mut server) = tokio::io::duplex(7);
        let frames = vec![
            Frame::Text(Bytes::from_static(b"[null,null,\"t\",\"e\",{}]")),
            Frame::Binary(Bytes::from(vec![9; 300])),
        ];
        let expected = frames.clone();
        let wire_len: usize = frames.iter().map(|f| Header::of(f).len + f.len()).sum();
        let writer = tokio::spawn(async move { write_frames(&mut server, &frames).await });
        let mut wire = Vec::new();
        let mut buf = [0; 64];
        use tokio::io::AsyncReadExt;
        while wire.len() < wire_len {
            let n = client.read(&mut buf).await.unwrap();
            wire.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap().unwrap();
        let read = parse(wire);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].2, expected[0].bytes()[..]);
        assert_eq!(read[1].2, expected[1].bytes()[..]);
    }
}
