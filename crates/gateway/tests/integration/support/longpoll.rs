//! `LongPoll`: a long-poll client as phoenix.js's `LongPoll` drives
//! `/socket/longpoll`, holding its session token.

use serde_json::{json, Value};

use super::{http, TestServer};

/// One long-poll client: the session token it holds.
pub struct LongPoll {
    base: String,
    query: String,
    /// The session token, once the server issued one.
    pub token: Option<String>,
}

impl LongPoll {
    /// A client of `/socket/longpoll?QUERY` on `server`; no session yet.
    pub fn new(server: &TestServer, query: &str) -> LongPoll {
        LongPoll {
            base: server.url("/socket/longpoll"),
            query: query.to_owned(),
            token: None,
        }
    }

    /// phoenix.js appends its session token as a last `token` parameter
    /// (and a stray `&` when it has none yet).
    pub fn url(&self) -> String {
        format!(
            "{}?{}&{}",
            self.base,
            self.query,
            self.token
                .as_ref()
                .map(|t| format!("token={t}"))
                .unwrap_or_default()
        )
    }

    /// One GET (a poll, or the opening request); keeps the token it answers.
    pub async fn get(&mut self) -> Value {
        let response = http()
            .get(self.url())
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let body: Value = response.json().await.unwrap();
        if let Some(token) = body["token"].as_str() {
            self.token = Some(token.to_owned());
        }
        body
    }

    /// Opens the session: the first GET answers 410 with a token.
    pub async fn open(&mut self) {
        let body = self.get().await;
        assert_eq!(body["status"], 410, "{body}");
        assert_eq!(body["messages"], json!([]));
        assert!(self.token.is_some(), "{body}");
    }

    /// One ndjson POST of `lines`.
    pub async fn post(&self, lines: &[String]) -> Value {
        let response = http()
            .post(self.url())
            .header("content-type", "application/x-ndjson")
            .body(lines.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    /// Polls until at least `n` messages came; returns them parsed.
    pub async fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut found = Vec::new();
        while found.len() < n {
            let body = self.get().await;
            assert!(
                body["status"] == 200 || body["status"] == 204,
                "{body}; so far {found:?}"
            );
            for message in body["messages"].as_array().unwrap() {
                found.push(serde_json::from_str(message.as_str().unwrap()).unwrap());
            }
        }
        found
    }
}
