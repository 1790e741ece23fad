//! The set of apps by id: those from the config file, and those registered
//! through the admin API (persisted to the state file).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::config::RawApp;

use super::App;

/// Why the registry refused a change.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Apps from the config file cannot be replaced or deleted.
    #[error("defined_in_config")]
    DefinedInConfig,
    /// No app with that id.
    #[error("not_found")]
    NotFound,
    /// The state file could not be written.
    #[error("state file {path}: {error}")]
    StateFile {
        /// Where.
        path: PathBuf,
        /// What.
        error: std::io::Error,
    },
}

/// All apps, by id.
pub struct Apps {
    apps: RwLock<HashMap<String, Arc<App>>>,
    state_file: Option<PathBuf>,
}

impl Apps {
    /// Builds the registry from the config file's apps. `state_file` is
    /// where admin-registered apps persist (None: not persisted).
    pub fn new(configured: Vec<Arc<App>>, state_file: Option<PathBuf>) -> Self {
        let apps = configured
            .into_iter()
            .map(|app| (app.id().to_owned(), app))
            .collect();
        Self {
            apps: RwLock::new(apps),
            state_file,
        }
    }

    /// The app with this id.
    pub fn get(&self, id: &str) -> Option<Arc<App>> {
        self.read().get(id).cloned()
    }

    /// Every app, sorted by id.
    pub fn all(&self) -> Vec<Arc<App>> {
        let mut apps: Vec<_> = self.read().values().cloned().collect();
        apps.sort_by(|a, b| a.id().cmp(b.id()));
        apps
    }

    /// Adds or replaces an admin-registered app. Returns the replaced app,
    /// if any, so the caller can close its connections.
    pub fn put(&self, app: Arc<App>) -> Result<Option<Arc<App>>, RegistryError> {
        let previous = {
            let mut apps = self.write();
            if apps.get(app.id()).is_some_and(|a| a.from_config()) {
                return Err(RegistryError::DefinedInConfig);
            }
            apps.insert(app.id().to_owned(), app)
        };
        self.persist()?;
        Ok(previous)
    }

    /// Removes an admin-registered app.
    pub fn remove(&self, id: &str) -> Result<Arc<App>, RegistryError> {
        let removed = {
            let mut apps = self.write();
            match apps.get(id) {
                None => return Err(RegistryError::NotFound),
                Some(app) if app.from_config() => return Err(RegistryError::DefinedInConfig),
                Some(_) => apps.remove(id).ok_or(RegistryError::NotFound)?,
            }
        };
        self.persist()?;
        Ok(removed)
    }

    /// Reads admin-registered apps from the state file (missing file: none).
    pub fn read_state_file(path: &std::path::Path) -> Result<Vec<RawApp>, String> {
        match std::fs::read(path) {
            Ok(bytes) => {
                #[derive(serde::Deserialize)]
                struct State {
                    apps: Vec<RawApp>,
                }
                serde_json::from_slice::<State>(&bytes)
                    .map(|s| s.apps)
                    .map_err(|e| format!("state file {}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("state file {}: {e}", path.display())),
        }
    }

    fn persist(&self) -> Result<(), RegistryError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let registered: Vec<RawApp> = self
            .all()
            .iter()
            .filter(|app| !app.from_config())
            .map(|app| app.config().to_raw())
            .collect();
        let body = serde_json::json!({ "apps": registered });
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, serde_json::to_vec_pretty(&body)?)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|error| RegistryError::StateFile {
            path: path.clone(),
            error,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<App>>> {
        self.apps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<App>>> {
        self.apps.write().unwrap_or_else(|p| p.into_inner())
    }
}
