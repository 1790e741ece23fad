//! What the bench reads from and asks of the operating system: the
//! open-files limit (raised to its hard cap in every bench process) and a
//! process's resident memory from `/proc/PID/status`.
//!
//! Linux only; nothing here touches another process beyond reading its
//! `/proc` entry.

use std::time::Duration;

use anyhow::{Context, Result};

/// Raises the soft open-files limit to the hard limit and returns the new
/// soft limit. The hard limit itself cannot be raised here.
pub fn raise_nofile_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            eprintln!("bench: cannot raise the open-files limit: {error}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(0)
        }
    }
}

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    /// `VmRSS`: all resident memory, in bytes.
    pub total: u64,
    /// `RssAnon`: resident anonymous memory (heap, stacks), in bytes.
    pub anon: u64,
}

/// Reads `VmRSS` and `RssAnon` of `pid`.
pub fn read_rss(pid: u32) -> Result<Rss> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Ok(Rss {
        total: field("VmRSS:").with_context(|| format!("no VmRSS in {path}"))?,
        anon: field("RssAnon:").unwrap_or(0),
    })
}

/// Polls `pid`'s RSS once a second until two reads differ by less than 1%,
/// or `max` has passed. Returns the last read and how long it took.
pub async fn settled_rss(pid: u32, max: Duration) -> Result<(Rss, Duration)> {
    let started = std::time::Instant::now();
    let mut last = read_rss(pid)?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read_rss(pid)?;
        let diff = now.total.abs_diff(last.total) as f64;
        last = now;
        if diff < 0.01 * now.total as f64 || started.elapsed() >= max {
            return Ok((now, started.elapsed()));
        }
    }
}

/// Nanoseconds since the Unix epoch: the clock shared by every bench
/// process, so a timestamp written by one can be read by another.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
