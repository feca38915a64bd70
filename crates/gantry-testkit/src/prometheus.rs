//! A real Prometheus (Debian's `prometheus`) scraping a metrics endpoint the test controls, every
//! 200 ms, so that queries are real `PromQL` over `/api/v1/query`.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::component::require;
use crate::server::ServerThread;

/// Metrics a test sets, in the text exposition format, served at `/metrics`.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<String>>);

impl Metrics {
    /// Replaces what `/metrics` serves (one sample per line: `name{labels} value`).
    pub fn set(&self, text: &str) {
        text.clone_into(&mut self.0.lock().expect("metrics"));
    }
}

/// Prometheus and the endpoint it scrapes; both stop on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    /// What the scraped endpoint serves.
    pub metrics: Metrics,
    _exporter: ServerThread,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping a fresh endpoint serving `initial`, once it has scraped it;
    /// `None` after a loud skip when Prometheus is not installed (a failure with `CI=true`).
    pub fn start(initial: &str) -> anyhow::Result<Option<Self>> {
        let Some(binary) = require("prometheus", "apt-get install prometheus") else {
            return Ok(None);
        };
        let metrics = Metrics::default();
        metrics.set(initial);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let target = listener.local_addr()?;
        let app = Router::new()
            .route(
                "/metrics",
                get(|State(metrics): State<Metrics>| async move {
                    metrics.0.lock().expect("metrics").clone()
                }),
            )
            .with_state(metrics.clone());
        let exporter = ServerThread::spawn(listener, app)?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\nscrape_configs:\n  - job_name: canary\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut prometheus = Self {
            child,
            addr,
            metrics,
            _exporter: exporter,
            _dir: dir,
        };
        prometheus.wait_scraped()?;
        Ok(Some(prometheus))
    }

    /// The API base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the target has been scraped (`up` is 1).
    fn wait_scraped(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_mins(1);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("prometheus exited with {status}");
            }
            let body = http_get(self.addr, "/api/v1/query?query=up");
            if body.is_some_and(|b| b.contains("\"value\":[") && b.contains(",\"1\"]")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("prometheus did not scrape its target within a minute")
    }

    /// Waits until a scrape later than now has happened (after [`Metrics::set`]).
    pub fn wait_next_scrape(&self) {
        std::thread::sleep(Duration::from_millis(600));
    }
}

/// A plain HTTP/1.0 GET on loopback; the whole answer, or `None`.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.").then_some(answer)
}
