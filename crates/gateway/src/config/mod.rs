//! The gateway's configuration: the TOML file of CONTRACT §2, the apps the
//! admin API registers (same fields, as JSON), and the embedded demo default.
//!
//! Loading goes in two stages (STYLE #7):
//! 1. [`raw`]: serde structs of raw values, every key optional with a
//!    documented default, unknown keys rejected. `${VAR}` references in the
//!    file text are substituted from the environment first (`env`).
//! 2. `validate`: checks every value and builds the typed [`Config`] the
//!    server runs on, or a [`ConfigError`] whose `Display` is one line
//!    saying what and where.
//!
//! This module does not watch the file, persist admin-registered apps (it
//! only converts them with [`RawApp`] / [`AppConfig::to_raw`]), fetch schemas
//! or verify tokens: it only describes where those things come from.

mod demo;
mod env;
mod error;
pub mod raw;
mod secret;
mod settings;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use demo::{DEMO_APP_ID, DEMO_APP_SECRET, DEMO_SCHEMA_JSON};
pub use error::{ConfigError, ConfigErrorKind};
pub use raw::RawApp;
pub use secret::Secret;
pub use settings::{
    AppConfig, AuthSource, ClusterSettings, Config, Limits, SchemaSource, ServerSettings, TlsFiles,
};

impl Config {
    /// Reads the file at `path`, substitutes `${VAR}` from the process
    /// environment, parses and validates it. Relative `schema_file` paths
    /// and TLS paths are resolved against the file's directory, and the TLS
    /// certificate and key, when set, are read and checked. Errors name the
    /// file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::from(ConfigErrorKind::Read(error)).in_file(path))?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        let config = parse(&text, &|name| std::env::var(name).ok(), Some(base_dir))
            .map_err(|error| error.in_file(path))?;
        if let Some(files) = &config.server.tls {
            crate::tls::load(files).map_err(|error| {
                ConfigError::invalid(error.key(), error.to_string()).in_file(path)
            })?;
        }
        Ok(config)
    }

    /// Parses and validates config text, taking `${VAR}` values from `env`.
    /// Relative `schema_file` paths are kept as written.
    pub fn from_toml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        parse(text, env, None)
    }
}

fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base_dir: Option<&Path>,
) -> Result<Config, ConfigError> {
    // Values taken from the environment are often secrets: an error that
    // quotes one (a TOML type error, a bad URL) shows `${NAME}` instead.
    let substituted = std::cell::RefCell::new(Vec::new());
    let recording_env = |name: &str| {
        let value = env(name);
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            substituted
                .borrow_mut()
                .push((name.to_owned(), value.clone()));
        }
        value
    };
    let text = env::substitute(text, &recording_env)?;
    let substituted = substituted.into_inner();
    let raw: raw::RawConfig =
        toml::from_str(&text).map_err(|error| syntax_error(&text, &error).hiding(&substituted))?;
    validate::config(raw, base_dir).map_err(|error| error.hiding(&substituted))
}

/// Renders a TOML error as `line L, column C: message`, on one line.
fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let (line, column) = match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    let message = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    ConfigError::from(ConfigErrorKind::Syntax {
        line,
        column,
        message,
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
