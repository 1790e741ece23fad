//! Long-poll POST bodies (`posted_frames`, then each frame's decoders as the
//! long-poll handler runs them). The first byte chooses ndjson or a plain
//! body, the second the serializer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_gateway::transport::longpoll_body::{posted_frames, PostedFrame, MAX_BATCH_LINES};
use switchboard_protocol::{decode_binary, decode_text, peek_header, FrameRef, Vsn};

fuzz_target!(|data: &[u8]| {
    let [mode, vsn, body @ ..] = data else {
        return;
    };
    let ndjson = mode & 1 == 1;
    let vsn = if vsn & 1 == 1 { Vsn::V2 } else { Vsn::V1 };
    let mut count = 0;
    for frame in posted_frames(body, ndjson) {
        count += 1;
        if let PostedFrame::Binary(bytes) = &frame {
            assert!(bytes.len() <= body.len(), "base64 never grows");
        }
        match frame.as_frame() {
            Some(FrameRef::Text(text)) => {
                let _ = decode_text(vsn, text);
                let _ = peek_header(FrameRef::Text(text), vsn);
            }
            Some(FrameRef::Binary(bytes)) => {
                let _ = decode_binary(bytes);
                let _ = peek_header(FrameRef::Binary(bytes), vsn);
            }
            None => {}
        }
    }
    assert!(count <= MAX_BATCH_LINES, "a batch is capped");
});
