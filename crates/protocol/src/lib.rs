//! Phoenix Channels messages and their wire codecs: V1 JSON objects, V2 JSON
//! arrays and V2 binary frames (PHOENIX_PROTOCOL.md §2), plus `vsn`
//! negotiation.
//!
//! Pure: no I/O, no async, no channel semantics. The server decodes inbound
//! frames with [`decode_text`] / [`decode_binary`], and encodes outbound ones
//! once per [`WireFormat`] with the `encode_*` functions; what the messages
//! mean (joins, replies, close codes) is decided elsewhere.

#![deny(missing_docs)]

mod binary;
mod decode;
mod encode;
mod error;
mod frame;
mod json_field;
mod json_v1;
mod json_v2;
mod json_write;
mod message;
mod vsn;

pub use decode::{decode_binary, decode_binary_bytes, decode_text, peek_header};
pub use encode::{
    encode_broadcast, encode_client_binary, encode_message, encode_push, encode_reply, PHX_REPLY,
};
pub use error::{DecodeError, UnsupportedVsn};
pub use frame::{Frame, FrameRef};
pub use message::{Header, Message, Payload};
pub use vsn::{Vsn, WireFormat};
