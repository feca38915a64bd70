//! Prism (`@stoplight/prism-cli`) as a validating proxy: every request to it and every answer
//! from the upstream is checked against an API description (`--errors`: a request that breaks it
//! is answered 422, an answer that breaks it 500). The GitHub and Argo CD fakes run behind one.

use std::net::{SocketAddr, TcpListener, TcpStream};
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
    /// listens; `None` after a loud skip when prism is not installed (a failure with `CI=true`).
    pub fn start(spec: &Path, upstream: SocketAddr) -> anyhow::Result<Option<Self>> {
        let Some(prism) = require_node("node_modules/.bin/prism", "prism") else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("prism.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&prism)
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
        let mut started = Self {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        started.wait_ready()?;
        Ok(Some(started))
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_mins(1);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("prism exited with {status}:\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("prism did not listen within a minute:\n{}", self.log())
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
