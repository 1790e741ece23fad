//! V2 JSON array frames (`decode_text(Vsn::V2)`, `peek_header`): never
//! panics, the header peek agrees with the full decode, and a decoded
//! message encodes back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{decode_text, encode_message, peek_header, FrameRef, Vsn, WireFormat};

fuzz_target!(|data: &[u8]| {
    let header = peek_header(FrameRef::Text(data), Vsn::V2);
    let Ok(message) = decode_text(Vsn::V2, data) else {
        return;
    };
    let header = header.expect("a decodable frame has a readable header");
    assert_eq!(header.topic, message.topic);
    assert_eq!(header.event, message.event);
    assert_eq!(header.join_ref, message.join_ref);
    assert_eq!(header.msg_ref, message.msg_ref);
    let frame = encode_message(
        WireFormat::V2,
        message.join_ref.as_deref(),
        message.msg_ref.as_deref(),
        &message.topic,
        &message.event,
        &message.payload,
    );
    let again = decode_text(Vsn::V2, frame.bytes()).expect("an encoded V2 message decodes");
    assert_eq!(again, message);
});
