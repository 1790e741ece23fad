//! Helpers shared by the test binaries that drive the real `switchboard`
//! binary: a scratch directory for its config and state, and bounded waits.
//! Each test binary uses what it needs, hence the `dead_code` allowances.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A fresh directory under the system temp dir, removed on drop. `label`
/// names the test; the process id and a counter keep concurrent tests and
/// runs apart.
pub struct TempDir(pub PathBuf);

impl TempDir {
    #[allow(dead_code)]
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "switchboard-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for `future` at most `limit`, panicking with `what` after that.
#[allow(dead_code)]
pub async fn within_limit<T>(
    limit: Duration,
    what: &str,
    future: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
