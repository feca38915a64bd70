//! Prism (`@stoplight/prism-cli`) as a validating proxy: every request to it and every answer
//! from the upstream is checked against an API description (`--errors`: a request that breaks it
//! is answered 422, an answer that breaks it 500). The GitHub and Argo CD fakes run behind one.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::component::require_node;

/// A prism proxy process; killed on drop.
pub struct Prism {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prism {
    /// Starts prism in front of `upstream` with the description `spec`, and waits until it
    /// says it listens on its port; `None` after a loud skip when prism is not installed (a
    /// failure with `CI=true`).
    ///
    /// The port is picked free and released before prism binds it, so another test's server may
    /// take it first: a connection alone would then reach that server (seen once in CI, a 404
    /// from someone else). Prism's own "listening" line for this port is what counts, and a prism
    /// that could not bind is started again on another port.
    pub fn start(spec: &Path, upstream: SocketAddr) -> anyhow::Result<Option<Self>> {
        let Some(prism) = require_node("node_modules/.bin/prism", "prism") else {
            return Ok(None);
        };
        let mut said = Vec::new();
        for _ in 0..5 {
            let mut started = Self::spawn(&prism, spec, upstream)?;
            match started.wait_ready() {
                Ok(()) => return Ok(Some(started)),
                Err(log) => said.push(log),
            }
        }
        anyhow::bail!(
            "prism did not start in five attempts:\n{}",
            said.join("\n---\n")
        )
    }

    fn spawn(prism: &Path, spec: &Path, upstream: SocketAddr) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("prism.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(prism)
            .arg("proxy")
            .arg(spec)
            .arg(format!("http://{upstream}"))
            .args([
                "--errors",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", prism.display()))?;
        Ok(Self {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        })
    }

    /// Waits for prism's line saying it listens on its own port; its log when it exits first or
    /// does not say so within a minute.
    fn wait_ready(&mut self) -> Result<(), String> {
        let listening = format!("Prism is listening on http://{}", self.addr);
        let deadline = Instant::now() + Duration::from_mins(1);
        while Instant::now() < deadline {
            if self.log().contains(&listening) {
                return Ok(());
            }
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(format!("prism exited with {status}:\n{}", self.log()));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("prism: {e}")),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "prism did not say {listening:?} within a minute:\n{}",
            self.log()
        ))
    }

    /// What prism printed: its violations, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
