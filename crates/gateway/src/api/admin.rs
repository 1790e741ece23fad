//! The admin API of CONTRACT §6, authorized by `Bearer <server.admin_token>`
//! and off when no admin token is configured: list, register or replace,
//! and remove apps. Apps from the config file are read-only (409).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::server_api::bearer_token;
use super::ApiError;
use crate::apps::RegistryError;
use crate::config::RawApp;
use crate::gateway::Gateway;

/// Proof that the request carried the admin token.
pub struct Admin;

impl FromRequestParts<Arc<Gateway>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, ApiError> {
        let Some(expected) = &gateway.server.admin_token else {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "admin_api_disabled"));
        };
        match bearer_token(parts) {
            Some(token) if expected.matches(token) => Ok(Admin),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// `GET /admin/v1/apps` → `{"apps": [...]}` without secrets.
pub async fn list_apps(State(gateway): State<Arc<Gateway>>, _: Admin) -> impl IntoResponse {
    let apps: Vec<Value> = gateway
        .apps
        .all()
        .iter()
        .map(|app| {
            let mut raw = serde_json::to_value(app.config().to_raw().without_secrets())
                .unwrap_or_else(|_| json!({}));
            if let Some(object) = raw.as_object_mut() {
                object.insert("id".into(), json!(app.id()));
                object.insert("defined_in_config".into(), json!(app.from_config()));
                object.insert(
                    "schema_version".into(),
                    json!(app.schema().map(|s| s.version().to_owned())),
                );
            }
            raw
        })
        .collect();
    Json(json!({ "apps": apps }))
}

/// `PUT /admin/v1/apps/{app}` → 201 created, 200 replaced.
pub async fn put_app(
    State(gateway): State<Arc<Gateway>>,
    _: Admin,
    Path(app_id): Path<String>,
    body: Result<Json<RawApp>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut raw) = body?;
    match &raw.id {
        Some(id) if id != &app_id => {
            return Err(ApiError::bad_request(format!(
                "body id {id:?} differs from the path's {app_id:?}"
            )))
        }
        _ => raw.id = Some(app_id.clone()),
    }
    let config = raw
        .validate(&gateway.server)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if gateway.apps.get(&app_id).is_some_and(|a| a.from_config()) {
        return Err(conflict());
    }
    let engine = gateway.hub.engine();
    if engine.shares_apps() {
        engine
            .save_app(&app_id, Some(&config.to_raw()))
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?;
    }
    match gateway.install_registered_app(config) {
        Ok(true) => {
            tracing::info!(app = app_id, "app registered through the admin API");
            Ok((StatusCode::CREATED, Json(json!({ "id": app_id }))).into_response())
        }
        Ok(false) => {
            tracing::info!(app = app_id, "app replaced through the admin API");
            Ok((StatusCode::OK, Json(json!({ "id": app_id }))).into_response())
        }
        Err(error) => Err(registry_error(error)),
    }
}

/// `DELETE /admin/v1/apps/{app}` → 204.
pub async fn delete_app(
    State(gateway): State<Arc<Gateway>>,
    _: Admin,
    Path(app_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match gateway.apps.get(&app_id) {
        None => return Err(registry_error(RegistryError::NotFound)),
        Some(app) if app.from_config() => return Err(conflict()),
        Some(_) => {}
    }
    let engine = gateway.hub.engine();
    if engine.shares_apps() {
        engine
            .save_app(&app_id, None)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?;
    }
    gateway
        .remove_registered_app(&app_id)
        .map_err(registry_error)?;
    tracing::info!(app = app_id, "app removed through the admin API");
    Ok(StatusCode::NO_CONTENT)
}

fn conflict() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "defined_in_config")
}

fn registry_error(error: RegistryError) -> ApiError {
    match error {
        RegistryError::DefinedInConfig => conflict(),
        RegistryError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "unknown_app"),
        RegistryError::StateFile { .. } => {
            tracing::error!(%error, "could not persist the app registry");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "state_file_unwritable")
        }
    }
}
