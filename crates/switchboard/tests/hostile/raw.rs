//! Raw sockets for attacks a WebSocket library will not make: a hand-made
//! upgrade, hand-made frames (invalid UTF-8, garbage, half a frame), and
//! reading the server's close frame off the wire.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::{within, Server, APP};

/// Opens a TCP connection and completes the WebSocket upgrade by hand.
pub async fn upgrade(server: &Server, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    let request = format!(
        "GET /socket/websocket?app={APP}&token={token}&vsn=2.0.0 HTTP/1.1\r\n\
         Host: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_http_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
    stream
}

/// Reads up to the end of an HTTP response head, byte by byte (so nothing
/// after it is consumed).
pub async fn read_http_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    within("an HTTP response head", async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read_u8().await {
                Ok(byte) => head.push(byte),
                Err(_) => break,
            }
        }
    })
    .await;
    String::from_utf8_lossy(&head).into_owned()
}

/// A client frame: FIN set, masked with a fixed key, as RFC 6455 requires.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = frame_header(opcode, payload.len() as u64);
    let key = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// FIN + opcode, then the masked length in its shortest encoding.
pub fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut header = vec![0x80 | opcode];
    match len {
        0..=125 => header.push(0x80 | len as u8),
        126..=0xffff => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&len.to_be_bytes());
        }
    }
    header
}

/// How a connection ended, as seen by the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// A close frame with this code and reason.
    Close(u16, String),
    /// The TCP connection ended without a close frame.
    Eof,
}

/// Reads server frames until a close frame or the end of the stream.
pub async fn read_until_close(stream: &mut (impl AsyncRead + Unpin)) -> Ending {
    within("the server to close the connection", async {
        loop {
            let Ok(first) = stream.read_u8().await else {
                return Ending::Eof;
            };
            let Ok(second) = stream.read_u8().await else {
                return Ending::Eof;
            };
            let len = match second & 0x7f {
                126 => stream.read_u16().await.map(u64::from),
                127 => stream.read_u64().await,
                short => Ok(u64::from(short)),
            };
            let Ok(len) = len else { return Ending::Eof };
            let mut payload = vec![0; len as usize];
            if stream.read_exact(&mut payload).await.is_err() {
                return Ending::Eof;
            }
            if first & 0x0f == 0x8 {
                let code = payload
                    .get(..2)
                    .map_or(1005, |b| u16::from_be_bytes([b[0], b[1]]));
                let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
                return Ending::Close(code, reason.into_owned());
            }
        }
    })
    .await
}

/// Reads until the server closes the TCP connection; what it sent.
pub async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    within("the server to close the connection", async {
        let _ = stream.read_to_end(&mut answer).await;
    })
    .await;
    answer
}
