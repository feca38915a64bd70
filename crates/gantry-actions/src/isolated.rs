//! A command run on the runner in isolation: `sh -c` in an environment of its own (`PATH`,
//! `HOME`, the variables the caller passes and only the variables its allow-list names), so it
//! never sees gantry's tokens (`GITHUB_TOKEN`, `ACTIONS_ID_TOKEN_REQUEST_*`, registry passwords,
//! `INPUT_*`). It runs in a process group of its own, killed whole when it times out and cleared
//! of leftovers when it ends, so a background process cannot outlive it. Its output streams to
//! the log line by line through the output layer (it cannot issue workflow commands), capped.
//! promote-digest's gates and canary-watch's `on-rollback-run` are such commands.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::output;

/// The most output of one command that reaches the log.
const LOG_LIMIT: usize = 1024 * 1024;
/// The longest line logged as it is.
const LINE_LIMIT: usize = 4096;
/// Lines of output a failure message quotes.
const TAIL_LINES: usize = 5;
/// The `PATH` a command gets when gantry has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command to run in isolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolated {
    /// Its name, the prefix of its log lines.
    pub name: String,
    /// The script (`sh -c`).
    pub run: String,
    /// How long it may run.
    pub timeout: Duration,
    /// Variables of gantry's own environment it may see.
    pub env: Vec<String>,
}

/// The environment a command runs with.
fn environment(command: &Isolated, variables: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = vec![(
        "PATH".to_owned(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned()),
    )];
    if let Ok(home) = std::env::var("HOME") {
        env.push(("HOME".to_owned(), home));
    }
    env.extend(variables.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    for name in &command.env {
        if let Ok(value) = std::env::var(name) {
            env.push((name.clone(), value));
        }
    }
    env
}

/// Runs `command` with `variables` (besides `PATH`, `HOME` and its allow-list); `Err` says why it
/// failed.
pub async fn run(gate: &Isolated, variables: &[(&str, String)]) -> Result<(), String> {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&gate.run)
        .env_clear()
        .envs(environment(gate, variables))
        .process_group(0)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (no `sh` here: the container action's image holds only gantry; run commands with the gantry CLI on the runner, or as steps of their own)"
        } else {
            ""
        };
        format!("could not start `sh -c {:?}`: {e}{hint}", gate.run)
    })?;
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
    let log = Log::new(&gate.name);
    let stdout = child
        .stdout
        .take()
        .map(|s| tokio::spawn(log.clone().follow(s)));
    let stderr = child
        .stderr
        .take()
        .map(|s| tokio::spawn(log.clone().follow(s)));
    let waited = tokio::time::timeout(gate.timeout, child.wait()).await;
    // Whatever the gate left running goes with it, whether it ended or timed out.
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let status = if let Ok(status) = waited {
        Some(status.map_err(|e| format!("waiting for `{}`: {e}", gate.run))?)
    } else {
        let _ = child.wait().await;
        None
    };
    let mut tail = Vec::new();
    for reader in [stdout, stderr].into_iter().flatten() {
        if let Ok(Ok(lines)) = tokio::time::timeout(Duration::from_secs(5), reader).await {
            tail.extend(lines);
        }
    }
    let tail = tail[tail.len().saturating_sub(TAIL_LINES)..].join(" | ");
    match status {
        None => Err(format!(
            "timed out after {} s (the command and everything it started were killed)",
            gate.timeout.as_secs()
        )),
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("`{}` exited with {status}: {tail}", gate.run)),
    }
}

/// A command's output on its way to the log: prefixed with the gate's name, neutralised, capped.
#[derive(Clone)]
struct Log {
    name: String,
    logged: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Log {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            logged: std::sync::Arc::default(),
        }
    }

    /// Logs `reader` line by line until it ends; returns its last lines.
    async fn follow(self, mut reader: impl AsyncRead + Unpin) -> Vec<String> {
        let mut tail: Vec<String> = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut buffer = vec![0u8; 8192];
        loop {
            let n = match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buffer[..n]);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                self.line(&line[..line.len() - 1], &mut tail);
            }
            if pending.len() > LINE_LIMIT {
                let line: Vec<u8> = std::mem::take(&mut pending);
                self.line(&line, &mut tail);
            }
        }
        if !pending.is_empty() {
            self.line(&pending, &mut tail);
        }
        tail
    }

    fn line(&self, bytes: &[u8], tail: &mut Vec<String>) {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LINE_LIMIT)])
            .trim_end_matches('\r')
            .to_owned();
        let before = self
            .logged
            .fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed);
        if before < LOG_LIMIT {
            output::err(&format!("[{}] {text}", self.name));
            if before + bytes.len() >= LOG_LIMIT {
                output::err(&format!(
                    "[{}] … output cut at {LOG_LIMIT} bytes",
                    self.name
                ));
            }
        }
        tail.push(text);
        if tail.len() > TAIL_LINES {
            tail.remove(0);
        }
    }
}
