//! What the bench reads from and asks of the operating system: the
//! open-files limit (raised to its hard cap in every bench process), a
//! process's resident memory from `/proc/PID/status` and its CPU time from
//! `/proc/PID/stat`.
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

/// The RSS of several processes, added up.
pub fn read_rss_sum(pids: &[u32]) -> Result<Rss> {
    let mut sum = Rss::default();
    for &pid in pids {
        let rss = read_rss(pid)?;
        sum.total += rss.total;
        sum.anon += rss.anon;
    }
    Ok(sum)
}

/// Polls the summed RSS of `pids` once a second until two reads differ by
/// less than 1%, or `max` has passed. Returns the last read and how long it
/// took.
pub async fn settled_rss(pids: &[u32], max: Duration) -> Result<(Rss, Duration)> {
    let started = std::time::Instant::now();
    let mut last = read_rss_sum(pids)?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read_rss_sum(pids)?;
        let diff = now.total.abs_diff(last.total) as f64;
        last = now;
        if diff < 0.01 * now.total as f64 || started.elapsed() >= max {
            return Ok((now, started.elapsed()));
        }
    }
}

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on every
/// Linux architecture the bench runs on).
const USER_HZ: f64 = 100.0;

/// CPU time (user + system) a process has used so far, in seconds; 0 when
/// the process cannot be read.
pub fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which sits in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counting
    // from 0 at the state field, which follows the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / USER_HZ
}

/// CPU seconds the whole machine has spent busy (every state but idle and
/// iowait) since boot, over all cores, from `/proc/stat`; 0 when unreadable.
pub fn machine_busy_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    busy as f64 / USER_HZ
}

/// Nanoseconds since the Unix epoch: the clock shared by every bench
/// process, so a timestamp written by one can be read by another.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory() {
        let pid = std::process::id();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_secs(pid) > 0.0);
        assert!(machine_busy_secs() >= cpu_secs(pid));
        assert!(read_rss_sum(&[pid, pid]).unwrap().total >= 2 * read_rss(pid).unwrap().anon);
    }
}
