//! `heartbeat` on topic `phoenix`: always an ok reply with a null join_ref,
//! before any routing.

use switchboard_protocol::{Message, Payload};

use super::Session;

impl Session {
    pub(super) fn heartbeat(&self, message: &Message) {
        self.reply(
            None,
            message.msg_ref.as_deref(),
            "phoenix",
            "ok",
            &Payload::empty(),
        );
    }
}
