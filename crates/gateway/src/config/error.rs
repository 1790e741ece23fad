//! [`ConfigError`]: why a config file or an admin-registered app was refused.
//! Its `Display` is one readable line saying what and where, fit to be the
//! single line `switchboard serve` / `check-config` print before exiting.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A config that could not be read, parsed or validated.
///
/// Displays as one line: the file (when loaded from one), then where in it,
/// then what is wrong, e.g.
/// `switchboard.toml: apps[1] ("solo"): exactly one of auth_endpoint, jwks_url, jwt_secret is required`.
#[derive(Debug)]
pub struct ConfigError {
    file: Option<PathBuf>,
    kind: ConfigErrorKind,
}

/// What went wrong, without the file name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[source] io::Error),
    /// A `${NAME}` names a variable that is not set.
    #[error("environment variable {name} is not set (used at line {line})")]
    MissingEnvVar {
        /// The variable's name.
        name: String,
        /// 1-based line of the reference.
        line: usize,
    },
    /// A `${` not followed by a variable name and `}`.
    #[error("line {line}, column {column}: `${{` must be followed by a variable name (letters, digits, `_`) and `}}`")]
    MalformedEnvReference {
        /// 1-based line.
        line: usize,
        /// 1-based column of the `$`.
        column: usize,
    },
    /// The text is not TOML of the expected shape (syntax, wrong type,
    /// unknown key).
    #[error("{}{message}", position_prefix(*.line, *.column))]
    Syntax {
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column (in characters), when the parser knows it.
        column: Option<usize>,
        /// The parser's message, on one line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{at}: {message}")]
    Invalid {
        /// Where: a key path such as `server.listen` or `apps[1] ("solo")`.
        at: String,
        /// What is wrong.
        message: String,
    },
}

fn position_prefix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
        (Some(line), None) => format!("line {line}: "),
        _ => String::new(),
    }
}

impl ConfigError {
    /// What went wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }

    /// The config file, when the error came from [`super::Config::load`].
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub(super) fn invalid(at: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::from(ConfigErrorKind::Invalid {
            at: at.into(),
            message: message.into(),
        })
    }

    /// The same error with every `(name, value)` environment value in its
    /// message replaced by `${name}`, longest values first.
    pub(super) fn hiding(self, substituted: &[(String, String)]) -> ConfigError {
        let mut substituted: Vec<&(String, String)> = substituted.iter().collect();
        substituted.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        let hide = |text: String| {
            substituted.iter().fold(text, |text, (name, value)| {
                text.replace(value.as_str(), &format!("${{{name}}}"))
            })
        };
        let kind = match self.kind {
            ConfigErrorKind::Syntax {
                line,
                column,
                message,
            } => ConfigErrorKind::Syntax {
                line,
                column,
                message: hide(message),
            },
            ConfigErrorKind::Invalid { at, message } => ConfigErrorKind::Invalid {
                at: hide(at),
                message: hide(message),
            },
            other => other,
        };
        ConfigError { kind, ..self }
    }

    pub(super) fn in_file(self, file: &Path) -> ConfigError {
        ConfigError {
            file: Some(file.to_path_buf()),
            ..self
        }
    }
}

impl From<ConfigErrorKind> for ConfigError {
    fn from(kind: ConfigErrorKind) -> ConfigError {
        ConfigError { file: None, kind }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}
