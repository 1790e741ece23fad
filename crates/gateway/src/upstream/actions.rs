//! The actions a message webhook may answer with (CONTRACT §5): reply,
//! broadcast, noreply — one object or `{"actions": [...]}`.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use switchboard_protocol::Payload;

/// Data carried by an action: JSON (`data`) or bytes (`data_base64`).
pub type ActionData = Payload;

/// One thing the app asks the gateway to do in answer to a push.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Reply to the push with this status (`ok` or `error`) and data.
    Reply {
        /// `ok` | `error`.
        status: String,
        /// The reply's response.
        data: ActionData,
    },
    /// Broadcast on the push's topic or on `topic` (same app).
    Broadcast {
        /// The event name.
        event: String,
        /// The payload.
        data: ActionData,
        /// Another topic of the same app, if set.
        topic: Option<String>,
        /// Skip the pushing connection.
        exclude_sender: bool,
    },
    /// Nothing to do.
    NoReply,
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum RawAction {
    Reply {
        #[serde(default)]
        data: Option<Value>,
        #[serde(default)]
        data_base64: Option<String>,
        #[serde(default)]
        status: Option<String>,
    },
    Broadcast {
        event: String,
        #[serde(default)]
        data: Option<Value>,
        #[serde(default)]
        data_base64: Option<String>,
        #[serde(default)]
        topic: Option<String>,
        #[serde(default)]
        exclude_sender: bool,
    },
    Noreply,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAnswer {
    List { actions: Vec<RawAction> },
    One(RawAction),
}

/// Parses a message webhook's 200 answer.
pub fn parse_actions(body: &[u8]) -> Result<Vec<Action>, String> {
    let answer: RawAnswer = serde_json::from_slice(body)
        .map_err(|_| "expected one action or {\"actions\": [...]}".to_owned())?;
    let raw = match answer {
        RawAnswer::List { actions } => actions,
        RawAnswer::One(action) => vec![action],
    };
    raw.into_iter().map(convert).collect()
}

fn convert(raw: RawAction) -> Result<Action, String> {
    Ok(match raw {
        RawAction::Reply {
            data,
            data_base64,
            status,
        } => {
            let status = status.unwrap_or_else(|| "ok".to_owned());
            if status != "ok" && status != "error" {
                return Err(format!("reply status must be ok or error, got {status:?}"));
            }
            Action::Reply {
                status,
                data: data_of(data, data_base64)?,
            }
        }
        RawAction::Broadcast {
            event,
            data,
            data_base64,
            topic,
            exclude_sender,
        } => {
            if event.is_empty() {
                return Err("broadcast needs an event".to_owned());
            }
            Action::Broadcast {
                event,
                data: data_of(data, data_base64)?,
                topic,
                exclude_sender,
            }
        }
        RawAction::Noreply => Action::NoReply,
    })
}

fn data_of(data: Option<Value>, data_base64: Option<String>) -> Result<ActionData, String> {
    match (data, data_base64) {
        (_, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map(|bytes| Payload::Binary(Bytes::from(bytes)))
            .map_err(|e| format!("data_base64 is not standard base64: {e}")),
        (Some(value), None) => Ok(Payload::Json(value)),
        (None, None) => Ok(Payload::Json(Value::Object(Default::default()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_action_or_a_list() {
        assert_eq!(
            parse_actions(br#"{"action":"reply","data":{"a":1}}"#).unwrap(),
            vec![Action::Reply {
                status: "ok".into(),
                data: Payload::Json(json!({"a":1}))
            }]
        );
        let list = parse_actions(
            br#"{"actions":[{"action":"noreply"},{"action":"broadcast","event":"e","topic":"t:1","exclude_sender":true}]}"#,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert!(
            matches!(&list[1], Action::Broadcast { exclude_sender: true, topic: Some(t), .. } if t == "t:1")
        );
    }

    #[test]
    fn binary_data_and_bad_answers() {
        let a =
            parse_actions(br#"{"action":"reply","data_base64":"AQID","status":"error"}"#).unwrap();
        assert_eq!(
            a,
            vec![Action::Reply {
                status: "error".into(),
                data: Payload::Binary(Bytes::from_static(&[1, 2, 3]))
            }]
        );
        assert!(parse_actions(b"[]").is_err());
        assert!(parse_actions(br#"{"action":"explode"}"#).is_err());
        assert!(parse_actions(br#"{"action":"reply","status":"maybe"}"#).is_err());
        assert!(parse_actions(br#"{"action":"reply","data_base64":"%%"}"#).is_err());
    }
}
