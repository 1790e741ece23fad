//! `TestServer`: the real gateway (`Gateway::start` + `switchboard_gateway::run`)
//! on `127.0.0.1:<ephemeral>`, configured through `Config::from_toml_str`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchboard_gateway::config::Config;
use switchboard_gateway::Gateway;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{eventually, MockBackend, WAIT};

/// Id and secret of the main test app.
pub const APP: &str = "app1";
/// Its secret.
pub const SECRET: &str = "app1-secret";
/// A second app on the same backend (same schema, other secret).
pub const APP2: &str = "app2";
/// Its secret.
pub const SECRET2: &str = "app2-secret";
/// The admin token of servers built with [`Setup::admin`].
pub const ADMIN_TOKEN: &str = "admin-token";

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory.
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "switchboard-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a test server is configured: two apps (`app1`, `app2`) on the mock
/// backend, plus whatever lines the test adds to `[server]`, `[limits]` or
/// `app1`'s entry.
pub struct Setup {
    backend: String,
    server: Vec<String>,
    limits: Vec<String>,
    app: Vec<String>,
    auth: Option<String>,
    wait_for_schema: bool,
    state_file: Option<PathBuf>,
}

impl Setup {
    /// The defaults on `backend`.
    pub fn new(backend: &MockBackend) -> Setup {
        Setup {
            backend: backend.url(""),
            server: Vec::new(),
            limits: Vec::new(),
            app: Vec::new(),
            auth: None,
            wait_for_schema: true,
            state_file: None,
        }
    }

    /// Adds a `key = value` line to `[server]`.
    pub fn server(mut self, line: &str) -> Setup {
        self.server.push(line.to_owned());
        self
    }

    /// Adds a `key = value` line to `[limits]`.
    pub fn limits(mut self, line: &str) -> Setup {
        self.limits.push(line.to_owned());
        self
    }

    /// Adds a `key = value` line to `app1`'s `[[apps]]` entry.
    pub fn app(mut self, line: &str) -> Setup {
        self.app.push(line.to_owned());
        self
    }

    /// Replaces `app1`'s auth source (default `auth_endpoint = "<backend>/auth"`)
    /// with this line, e.g. `jwt_secret = "..."`.
    pub fn auth(mut self, line: &str) -> Setup {
        self.auth = Some(line.to_owned());
        self
    }

    /// Turns the admin API on with [`ADMIN_TOKEN`].
    pub fn admin(self) -> Setup {
        self.server(&format!("admin_token = \"{ADMIN_TOKEN}\""))
    }

    /// Does not wait for the apps' schemas to load before returning.
    pub fn no_schema_wait(mut self) -> Setup {
        self.wait_for_schema = false;
        self
    }

    /// Keeps admin-registered apps in this file (default: a fresh temp dir).
    pub fn state_file(mut self, path: &Path) -> Setup {
        self.state_file = Some(path.to_owned());
        self
    }

    /// The config text.
    pub fn toml(&self, state_file: &Path) -> String {
        let b = &self.backend;
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
drain_timeout_secs = 1
state_file = "{state}"
{server}

[limits]
{limits}

[[apps]]
id = "{APP}"
secret = "{SECRET}"
{auth}
schema_endpoint = "{b}/schema"
message_endpoint = "{b}/messages"
{app}

[[apps]]
id = "{APP2}"
secret = "{SECRET2}"
auth_endpoint = "{b}/auth"
schema_endpoint = "{b}/schema"
message_endpoint = "{b}/messages"
"#,
            state = state_file.display(),
            server = self.server.join("\n"),
            limits = self.limits.join("\n"),
            app = self.app.join("\n"),
            auth = self
                .auth
                .clone()
                .unwrap_or_else(|| format!("auth_endpoint = \"{b}/auth\"")),
        )
    }

    /// Starts the gateway; unless told otherwise, returns once both apps'
    /// schemas are loaded.
    pub async fn start(self) -> TestServer {
        let dir = TempDir::new();
        let state_file = self
            .state_file
            .clone()
            .unwrap_or_else(|| dir.path().join("state.json"));
        let config = Config::from_toml_str(&self.toml(&state_file), &|_| None)
            .unwrap_or_else(|e| panic!("test config: {e}"));
        let server = TestServer::start(config, dir).await;
        if self.wait_for_schema {
            let gateway = server.gateway.clone();
            eventually("both apps' schemas load", || {
                let gateway = gateway.clone();
                async move {
                    [APP, APP2]
                        .iter()
                        .all(|id| gateway.apps.get(id).is_some_and(|a| a.schema().is_some()))
                }
            })
            .await;
        }
        server
    }
}

/// The gateway running in this process.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state (for conditions a test cannot see from outside).
    pub gateway: Arc<Gateway>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts `config` on its own ephemeral listener (`config.server.listen`
    /// is ignored).
    pub async fn start(config: Config, dir: TempDir) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gateway = Gateway::start(config).expect("gateway starts");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_gateway::run(
            listener,
            gateway.clone(),
            async move {
                let _ = signal.await;
            },
        ));
        TestServer {
            addr,
            gateway,
            shutdown: Some(shutdown),
            task: Some(task),
            _dir: dir,
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Triggers the shutdown (drain) and waits for `run` to return.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops within the deadline")
                .expect("server task")
                .expect("run returns Ok");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
