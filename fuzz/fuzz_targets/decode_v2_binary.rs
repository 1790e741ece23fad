//! V2 binary frames (`decode_binary`, `decode_binary_bytes`, `peek_header`):
//! never panic, agree with each other, and a decoded client push encodes
//! back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{
    decode_binary, decode_binary_bytes, encode_client_binary, peek_header, FrameRef, Payload, Vsn,
};

fuzz_target!(|data: &[u8]| {
    let borrowed = decode_binary(data);
    let shared = decode_binary_bytes(data.to_vec().into());
    assert_eq!(borrowed, shared);
    let header = peek_header(FrameRef::Binary(data), Vsn::V2);
    let Ok(message) = borrowed else {
        assert!(header.is_none(), "peek accepts only what decode accepts");
        return;
    };
    let header = header.expect("a decodable frame has a readable header");
    assert_eq!(header.topic, message.topic);
    assert_eq!(header.event, message.event);
    let Payload::Binary(payload) = &message.payload else {
        panic!("a binary frame decodes to a binary payload");
    };
    let frame = encode_client_binary(
        message.join_ref.as_deref(),
        message.msg_ref.as_deref(),
        &message.topic,
        &message.event,
        payload,
    )
    .expect("a decoded header fits the binary format");
    assert_eq!(frame.bytes().as_ref(), data);
});
