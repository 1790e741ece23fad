//! `phx_leave` (PHOENIX_PROTOCOL.md §4 rules 4 and 5).

use switchboard_protocol::{Message, Payload};

use super::Session;

impl Session {
    pub(super) fn leave(&mut self, message: &Message) {
        let topic = message.topic.as_str();
        let msg_ref = message.msg_ref.as_deref();
        let Some(joined) = self.channels.get(topic) else {
            // Leaving a topic never joined is answered ok, as Phoenix does.
            self.reply(
                message.join_ref.as_deref(),
                msg_ref,
                topic,
                "ok",
                &Payload::empty(),
            );
            return;
        };
        if message.join_ref.is_some() && message.join_ref != joined.join_ref {
            return; // a leave for an older join of this topic: ignored
        }
        let reply_join_ref = joined.reply_join_ref.clone();
        let close_ref = joined.join_ref.clone();
        self.forget_channel(topic);
        self.reply(
            reply_join_ref.as_deref(),
            msg_ref,
            topic,
            "ok",
            &Payload::empty(),
        );
        self.send_close(close_ref.as_deref(), topic);
    }
}
