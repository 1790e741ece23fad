//! Counts the requests refused for a body over `[limits] max_body_bytes`.
//!
//! The limit itself is axum's `DefaultBodyLimit` (the body extractors answer
//! 413); this layer only sees those 413s on their way out and counts them in
//! `limit_exceeded_total{limit="max_body_bytes"}`, labelled with the app the
//! request names (in the path, or long-poll's `app` parameter) when it is a
//! registered app, else `unknown`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::gateway::Gateway;

/// The middleware: passes the request on, counts a 413 answer.
pub async fn count_oversized_bodies(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    // A `Uri` clone shares its bytes; read only when the answer is a 413.
    let uri = request.uri().clone();
    let response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // Only registered ids become label values: anyone can make one up.
        let app = app_named_by(uri.path(), uri.query())
            .filter(|id| gateway.apps.get(id).is_some())
            .unwrap_or("unknown");
        gateway.metrics.limit_exceeded(app, "max_body_bytes");
        tracing::info!(app, "request refused: body larger than max_body_bytes");
    }
    response
}

fn app_named_by<'a>(path: &'a str, query: Option<&'a str>) -> Option<&'a str> {
    let in_path = ["/api/v1/apps/", "/admin/v1/apps/"]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .and_then(|rest| rest.split('/').next());
    in_path.or_else(|| query?.split('&').find_map(|pair| pair.strip_prefix("app=")))
}

#[cfg(test)]
mod tests {
    use super::app_named_by;

    #[test]
    fn the_app_comes_from_the_path_or_the_query() {
        assert_eq!(app_named_by("/api/v1/apps/a1/broadcast", None), Some("a1"));
        assert_eq!(app_named_by("/admin/v1/apps/a2", None), Some("a2"));
        assert_eq!(
            app_named_by("/socket/longpoll", Some("vsn=2.0.0&app=a3&token=t")),
            Some("a3")
        );
        assert_eq!(app_named_by("/metrics", None), None);
    }
}
