//! The parent's side of the worker processes: splits the connections over
//! `--processes` children (`current_exe() worker --spec …`), sends them
//! commands and gathers their answers.
//!
//! Each process may hold at most 20,000 open files, so big runs must be split;
//! the split is contiguous (worker `w` holds connections `first..first+count`),
//! which keeps token and topic numbering global. What the answers mean is the
//! scenarios' business.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use crate::ipc::{Command, Event, Ready, Report, WorkerSpec};

/// How long a worker may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(20);

enum Note {
    Event(Event),
    Exited(usize),
}

/// Running worker processes.
pub struct Fleet {
    children: Vec<(Child, ChildStdin)>,
    notes: mpsc::UnboundedReceiver<Note>,
    total: usize,
}

impl Fleet {
    /// Starts `processes` workers sharing `total` connections, each from
    /// `template` with its own `worker`, `first` and `count`, and waits until
    /// each has started.
    pub async fn start(template: &WorkerSpec, total: usize, processes: usize) -> Result<Fleet> {
        let processes = processes.clamp(1, total.max(1));
        let exe = std::env::current_exe().context("cannot find the bench binary")?;
        let (tx, notes) = mpsc::unbounded_channel();
        let mut children = Vec::with_capacity(processes);
        let mut first = 0;
        for worker in 0..processes {
            let count = total / processes + usize::from(worker < total % processes);
            let spec = WorkerSpec {
                worker,
                first,
                count,
                ..template.clone()
            };
            first += count;
            let mut child = tokio::process::Command::new(&exe)
                .arg("worker")
                .arg("--spec")
                .arg(serde_json::to_string(&spec)?)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("cannot start a worker process")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Event>(&line) {
                        Ok(event) => {
                            let _ = tx.send(Note::Event(event));
                        }
                        Err(_) => eprintln!("bench: worker {worker} said: {line}"),
                    }
                }
                let _ = tx.send(Note::Exited(worker));
            });
            children.push((child, stdin));
        }
        let mut fleet = Fleet {
            children,
            notes,
            total,
        };
        let mut started = 0;
        let deadline = Instant::now() + START_TIMEOUT;
        while started < processes {
            if let Event::Started { .. } = fleet.next(deadline).await? {
                started += 1;
            }
        }
        Ok(fleet)
    }

    /// Number of worker processes.
    pub fn processes(&self) -> usize {
        self.children.len()
    }

    /// The worker processes' ids (for their CPU time).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(|(c, _)| c.id()).collect()
    }

    async fn next(&mut self, deadline: Instant) -> Result<Event> {
        match tokio::time::timeout_at(deadline.into(), self.notes.recv()).await {
            Err(_) => bail!("timed out waiting for the workers"),
            Ok(None) => bail!("every worker has gone"),
            Ok(Some(Note::Exited(worker))) => bail!("worker {worker} exited unexpectedly"),
            Ok(Some(Note::Event(Event::Error { worker, message }))) => {
                bail!("worker {worker}: {message}")
            }
            Ok(Some(Note::Event(event))) => Ok(event),
        }
    }

    /// Sends `command` to every worker.
    pub async fn send(&mut self, command: &Command) -> Result<()> {
        let mut line = serde_json::to_string(command)?;
        line.push('\n');
        for (worker, (_, stdin)) in self.children.iter_mut().enumerate() {
            stdin
                .write_all(line.as_bytes())
                .await
                .with_context(|| format!("cannot reach worker {worker}"))?;
            stdin.flush().await?;
        }
        Ok(())
    }

    /// Opens every connection; prints progress on stderr; returns each
    /// worker's [`Ready`].
    pub async fn open(&mut self, within: Duration) -> Result<Vec<Ready>> {
        self.send(&Command::Open).await?;
        let deadline = Instant::now() + within;
        let n = self.processes();
        let mut progress = vec![(0usize, 0usize); n];
        let mut ready = Vec::with_capacity(n);
        let mut printed = Instant::now();
        while ready.len() < n {
            match self.next(deadline).await? {
                Event::Progress {
                    worker,
                    joined,
                    failed,
                } => progress[worker] = (joined, failed),
                Event::Ready(r) => {
                    progress[r.worker] = (r.joined, r.failed);
                    ready.push(r);
                }
                _ => {}
            }
            if printed.elapsed() >= Duration::from_secs(2) {
                printed = Instant::now();
                let joined: usize = progress.iter().map(|p| p.0).sum();
                let failed: usize = progress.iter().map(|p| p.1).sum();
                eprintln!("bench: joined {joined}/{} ({failed} failed)", self.total);
            }
        }
        Ok(ready)
    }

    /// Asks every worker for its counters.
    pub async fn report(&mut self) -> Result<Vec<Report>> {
        self.send(&Command::Report).await?;
        self.reports(Duration::from_secs(30)).await
    }

    /// Runs a push phase on every connection and returns the reports.
    pub async fn push(&mut self, command: Command) -> Result<Vec<Report>> {
        let duration = match &command {
            Command::Push { duration_ms, .. } => Duration::from_millis(*duration_ms),
            _ => bail!("not a push command"),
        };
        self.send(&command).await?;
        self.reports(duration + Duration::from_secs(60)).await
    }

    async fn reports(&mut self, within: Duration) -> Result<Vec<Report>> {
        let deadline = Instant::now() + within;
        let mut reports = Vec::with_capacity(self.processes());
        while reports.len() < self.processes() {
            if let Event::Report(report) = self.next(deadline).await? {
                reports.push(report);
            }
        }
        Ok(reports)
    }

    /// Tells every worker to close its connections and waits for them to
    /// exit (killing any that take over 10 s).
    pub async fn stop(mut self) {
        let _ = self.send(&Command::Stop).await;
        for (mut child, stdin) in self.children.drain(..) {
            drop(stdin);
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}
