//! CNCF distribution (Debian's `docker-registry`) on a free loopback port, in four modes.
//!
//! Distribution 2.8 has no referrers API, so it is the real test of every fallback path. Each
//! instance gets its own temporary storage and is killed when the guard drops.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tempfile::TempDir;

use crate::component::require;
use crate::pki::{self, TestCa};
use crate::token::{self, TokenServer};

/// A host name that TLS certificates also carry, for tests that resolve it through `/etc/hosts`.
pub const TEST_HOST_NAME: &str = "registry.gantry.test";
/// User name in the basic and bearer modes.
pub const USERNAME: &str = "gantry";
/// Password in the basic and bearer modes.
pub const PASSWORD: &str = "registry-pass-3f9c1e";

/// How clients must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Plain HTTP, no authentication.
    Anonymous,
    /// HTTP basic authentication (htpasswd, bcrypt).
    Basic,
    /// The bearer-token challenge flow: the registry answers 401 with a realm, the client gets a
    /// token there with basic credentials, then retries with `Authorization: Bearer`.
    Bearer,
    /// HTTPS with a certificate from a throwaway CA; no authentication.
    Tls,
}

/// Which registry implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CNCF distribution 2.8 (Debian's `docker-registry`): no referrers API.
    Distribution,
    /// gantry's embedded registry: the referrers API.
    Gantry,
}

/// A running registry; stopped on drop.
pub struct Registry {
    auth: Auth,
    backend: Backend,
    addr: SocketAddr,
    child: Option<Child>,
    /// distribution's binary, to restart it.
    binary: Option<PathBuf>,
    embedded: Option<Embedded>,
    dir: TempDir,
    ca_pem: Option<String>,
    token: Option<TokenServer>,
}

/// gantry-registry on a thread of its own, so that sync and async tests alike can hold it.
struct Embedded {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("auth", &self.auth)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a registry, or returns `None` after a loud skip when `docker-registry` is missing
    /// outside CI. Panics when it cannot start.
    pub fn start(auth: Auth) -> Option<Self> {
        let binary = require("docker-registry", "apt-get install docker-registry")?;
        Some(
            Self::start_with(&binary, auth)
                .unwrap_or_else(|e| panic!("starting docker-registry ({auth:?}): {e:#}")),
        )
    }

    /// Starts a registry of `backend`; `None` after a loud skip when distribution is missing
    /// outside CI.
    pub fn start_on(backend: Backend, auth: Auth) -> Option<Self> {
        match backend {
            Backend::Distribution => Self::start(auth),
            Backend::Gantry => Some(
                Self::start_embedded(auth)
                    .unwrap_or_else(|e| panic!("starting gantry-registry ({auth:?}): {e:#}")),
            ),
        }
    }

    fn start_embedded(auth: Auth) -> anyhow::Result<Self> {
        let credentials = || (USERNAME.to_owned(), gantry_secret::Secret::new(PASSWORD));
        let mode = match auth {
            Auth::Anonymous | Auth::Tls => gantry_registry::AuthMode::None,
            Auth::Basic => {
                let (username, password) = credentials();
                gantry_registry::AuthMode::Basic { username, password }
            }
            Auth::Bearer => {
                let (username, password) = credentials();
                gantry_registry::AuthMode::Bearer { username, password }
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("gantry-embedded-")
            .tempdir()?;
        let mut ca_pem = None;
        let mut tls = None;
        if auth == Auth::Tls {
            let ca = TestCa::new("gantry-testkit CA")?;
            let cert = ca.issue(&["127.0.0.1", "localhost", TEST_HOST_NAME])?;
            std::fs::write(dir.path().join("server.pem"), &cert.cert_pem)?;
            std::fs::write(dir.path().join("server.key"), &cert.key_pem)?;
            std::fs::write(dir.path().join("ca.pem"), ca.cert_pem())?;
            let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
            tls = Some(gantry_registry::TlsFiles { cert, key });
            ca_pem = Some(ca.cert_pem());
        }
        let config = gantry_registry::Config {
            storage: Some(dir.path().join("data")),
            auth: mode,
            tls,
            ..gantry_registry::Config::default()
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = addr_tx.send(Err(anyhow::anyhow!("runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                match gantry_registry::start(config).await {
                    Ok(running) => {
                        let _ = addr_tx.send(Ok(running.addr()));
                        let _ = rx.await;
                        running.stop().await;
                    }
                    Err(e) => {
                        let _ = addr_tx.send(Err(anyhow::anyhow!("{e}")));
                    }
                }
            });
        });
        let addr = addr_rx.recv()??;
        Ok(Self {
            auth,
            backend: Backend::Gantry,
            addr,
            child: None,
            binary: None,
            embedded: Some(Embedded {
                shutdown: Some(tx),
                thread: Some(thread),
            }),
            dir,
            ca_pem,
            token: None,
        })
    }

    /// Which implementation this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts the registry at `binary`.
    pub fn start_with(binary: &Path, auth: Auth) -> anyhow::Result<Self> {
        let mut last_error = None;
        // A free port can be taken between choosing it and binding it: try a few.
        for _ in 0..3 {
            match Self::try_start(binary, auth) {
                Ok(registry) => return Ok(registry),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    fn try_start(binary: &Path, auth: Auth) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("gantry-registry-")
            .tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: gantry-testkit-{port}\n",
            dir.path().join("data").display()
        );
        let mut ca_pem = None;
        let mut token = None;
        match auth {
            Auth::Anonymous => {}
            Auth::Basic => {
                let hash = bcrypt::hash(PASSWORD, 5)?;
                std::fs::write(dir.path().join("htpasswd"), format!("{USERNAME}:{hash}\n"))?;
                write!(
                    config,
                    "auth:\n  htpasswd:\n    realm: gantry-testkit\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )?;
            }
            Auth::Bearer => {
                let signing = pki::self_signed("gantry-testkit token signer")?;
                std::fs::write(dir.path().join("token-signer.pem"), &signing.cert_pem)?;
                let server = TokenServer::start(USERNAME, PASSWORD, &signing)?;
                write!(
                    config,
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm,
                    token::SERVICE,
                    token::ISSUER,
                    dir.path().join("token-signer.pem").display()
                )?;
                token = Some(server);
            }
            Auth::Tls => {
                let ca = TestCa::new("gantry-testkit CA")?;
                let cert = ca.issue(&["127.0.0.1", "localhost", TEST_HOST_NAME])?;
                std::fs::write(dir.path().join("server.pem"), &cert.cert_pem)?;
                std::fs::write(dir.path().join("server.key"), &cert.key_pem)?;
                std::fs::write(dir.path().join("ca.pem"), ca.cert_pem())?;
                write!(
                    config,
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.path().join("server.pem").display(),
                    dir.path().join("server.key").display()
                )?;
                ca_pem = Some(ca.cert_pem());
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut registry = Self {
            auth,
            backend: Backend::Distribution,
            addr,
            child: Some(child),
            binary: Some(binary.to_path_buf()),
            embedded: None,
            dir,
            ca_pem,
            token,
        };
        registry.wait_until_listening()?;
        Ok(registry)
    }

    /// How distribution ended, if it has.
    fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self
            .child
            .as_mut()
            .map(Child::try_wait)
            .transpose()?
            .flatten())
    }

    fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.exited()? {
                anyhow::bail!(
                    "docker-registry exited with {status} before listening; its log:\n{}",
                    self.log()
                );
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                // The port was picked free and released before distribution bound it: another
                // test's server may hold it, and distribution then exits at once (address in
                // use). Only a registry still running a moment after the connection counts.
                std::thread::sleep(Duration::from_millis(150));
                if let Some(status) = self.exited()? {
                    anyhow::bail!(
                        "docker-registry exited with {status}; {} answered someone else's server; its log:\n{}",
                        self.addr,
                        self.log()
                    );
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        anyhow::bail!(
            "docker-registry did not listen on {} within 15 s; its log:\n{}",
            self.addr,
            self.log()
        )
    }

    /// Restarts distribution on the same address and data in its read-only maintenance mode:
    /// every read answers as before, every write (an upload, a manifest) is refused.
    pub fn make_read_only(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.backend == Backend::Distribution,
            "only distribution has a read-only mode"
        );
        let config_path = self.dir.path().join("config.yml");
        let config = std::fs::read_to_string(&config_path)?.replacen(
            "  delete:\n    enabled: true\n",
            "  delete:\n    enabled: true\n  maintenance:\n    readonly:\n      enabled: true\n",
            1,
        );
        std::fs::write(&config_path, config)?;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The port is free again once the old process is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("registry.log"))?;
        let binary = self.binary.clone().context("distribution's binary")?;
        self.child = Some(
            Command::new(&binary)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("spawning {}", binary.display()))?,
        );
        self.wait_until_listening()
    }

    /// What the registry printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The mode it runs in.
    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`, the registry part of an image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `https` in TLS mode, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.auth == Auth::Tls {
            "https"
        } else {
            "http"
        }
    }

    /// `http(s)://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    /// User name and password, in the modes that need them.
    pub fn credentials(&self) -> Option<(&'static str, &'static str)> {
        matches!(self.auth, Auth::Basic | Auth::Bearer).then_some((USERNAME, PASSWORD))
    }

    /// PEM of the CA that signed the TLS certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Path of a file holding [`Self::ca_pem`].
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_pem
            .is_some()
            .then(|| self.dir.path().join("ca.pem"))
    }

    /// How many tokens the bearer mode's token server has issued.
    pub fn tokens_issued(&self) -> usize {
        self.token.as_ref().map_or(0, TokenServer::tokens_issued)
    }

    /// The realm URL of the bearer mode's token server.
    pub fn token_realm(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.realm.as_str())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.embedded.take();
    }
}
