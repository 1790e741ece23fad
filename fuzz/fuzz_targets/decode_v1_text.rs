//! V1 JSON text frames (`decode_text(Vsn::V1)`, `peek_header`): never
//! panics, and a decoded message encodes back to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{decode_text, encode_message, peek_header, FrameRef, Vsn, WireFormat};

fuzz_target!(|data: &[u8]| {
    let header = peek_header(FrameRef::Text(data), Vsn::V1);
    let Ok(message) = decode_text(Vsn::V1, data) else {
        return;
    };
    assert!(header.is_some(), "a decodable frame has a readable header");
    // V1 outbound objects carry no join_ref.
    let frame = encode_message(
        WireFormat::V1,
        None,
        message.msg_ref.as_deref(),
        &message.topic,
        &message.event,
        &message.payload,
    );
    let again = decode_text(Vsn::V1, frame.bytes()).expect("an encoded V1 message decodes");
    assert_eq!(again.topic, message.topic);
    assert_eq!(again.event, message.event);
    assert_eq!(again.msg_ref, message.msg_ref);
    assert_eq!(again.payload, message.payload);
});
