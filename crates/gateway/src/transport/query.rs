//! Connection query parameters (CONTRACT §3): `app`, `token`, `vsn`,
//! `client_type`, and everything else passed to the app's auth as `params`.

use serde_json::{Map, Value};

/// The parsed query string of a connection request.
#[derive(Debug, Default, Clone)]
pub struct ConnectQuery {
    /// `app`
    pub app: Option<String>,
    /// Every `token` in order (long-poll appends its session token last).
    pub tokens: Vec<String>,
    /// `vsn`
    pub vsn: Option<String>,
    /// `client_type`
    pub client_type: Option<String>,
    /// Everything else.
    pub params: Map<String, Value>,
}

impl ConnectQuery {
    /// Parses a raw query string. Tolerates empty pairs (phoenix.js's
    /// long-poll sends a stray `&`).
    pub fn parse(raw: Option<&str>) -> Self {
        let mut query = ConnectQuery::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "" => {}
                "app" => query.app = Some(value.into_owned()),
                "token" => query.tokens.push(value.into_owned()),
                "vsn" => query.vsn = Some(value.into_owned()),
                "client_type" => query.client_type = Some(value.into_owned()),
                other => {
                    query
                        .params
                        .insert(other.to_owned(), Value::String(value.into_owned()));
                }
            }
        }
        query
    }

    /// The auth token: the first `token` parameter.
    pub fn auth_token(&self) -> Option<&str> {
        self.tokens.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_known_parameters_from_params() {
        let q = ConnectQuery::parse(Some(
            "app=demo&token=a%20b&vsn=2.0.0&client_type=cli&room=1&token=lp&",
        ));
        assert_eq!(q.app.as_deref(), Some("demo"));
        assert_eq!(q.tokens, vec!["a b", "lp"]);
        assert_eq!(q.auth_token(), Some("a b"));
        assert_eq!(q.vsn.as_deref(), Some("2.0.0"));
        assert_eq!(q.client_type.as_deref(), Some("cli"));
        assert_eq!(q.params.get("room"), Some(&Value::String("1".into())));
        assert_eq!(q.params.len(), 1);
    }
}
