//! gantry's embedded OCI registry, for the demo and the tests: distribution-spec 1.1 with the
//! referrers API, which CNCF distribution 2.8 lacks.
//!
//! The one decision: correctness over speed. Every pushed blob and manifest is hashed and checked
//! against its digest, a manifest is refused while a blob or child it names is missing, and bad
//! requests get the spec's error codes, so a client that works here is not relying on leniency. It
//! listens on loopback unless told otherwise, and there answers only requests that name a
//! loopback host and come from no web page.
//!
//! Content is never shared by accident: a stored blob is never replaced (one repository cannot
//! rewrite another's layer), an upload has one writer at a time, and what a client may mount from
//! another repository it must be allowed to pull. Uploads are bounded ([`Limits`]) and expire
//! when idle.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gantry_registry::ServeError> {
//! let running = gantry_registry::start(gantry_registry::Config::default()).await?;
//! println!("pushing to {}/team/app", running.host());
//! running.stop().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod api;
mod auth;
mod store;
mod tls;
mod uploads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use auth::AuthMode;
pub use uploads::Limits;

/// How to run the registry.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// Keep content in this directory (reloaded on start); in a temporary directory removed on
    /// stop when `None`.
    pub storage: Option<PathBuf>,
    /// How clients authenticate.
    pub auth: AuthMode,
    /// Allow an address other than loopback.
    pub allow_remote: bool,
    /// Serve HTTPS with this certificate chain and key (PEM files); plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Most referrers in one answer; more are paged with `Link` headers.
    pub page_size: usize,
    /// The URL clients reach the registry at (`https://registry.example:5000`), which bearer
    /// challenges name as the token realm; default: the scheme the TLS setting implies and the
    /// bound address. Never taken from a request's `Host`.
    pub public_url: Option<String>,
    /// How long an issued bearer token is valid.
    pub token_lifetime: Duration,
    /// Limits on uploads.
    pub limits: Limits,
}

/// PEM files of a server certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage: None,
            auth: AuthMode::None,
            allow_remote: false,
            tls: None,
            page_size: 1000,
            public_url: None,
            token_lifetime: Duration::from_mins(5),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum ServeError {
    #[error(
        "refusing to listen on {addr}: it is not a loopback address\nhint: pass --allow-remote to serve other hosts"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("loading the TLS certificate and key: {reason}")]
    Tls { reason: String },
    #[error(
        "public URL {url:?} is not http(s)://host[:port] without a path\nhint: e.g. --public-url https://registry.example:5000"
    )]
    PublicUrl { url: String },
    #[error("opening storage {path}")]
    Storage {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A running registry; stops when dropped or when [`Running::stop`] is called.
pub struct Running {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serves until the task ends (for `gantry registry serve`).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `scheme://authority` of a configured public URL, refused when it carries more.
fn public_base(url: &str) -> Result<String, ServeError> {
    let bad = || ServeError::PublicUrl {
        url: url.to_owned(),
    };
    let trimmed = url.trim_end_matches('/');
    let (scheme, authority) = trimmed.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https")
        || authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' '])
    {
        return Err(bad());
    }
    Ok(format!("{scheme}://{authority}"))
}

/// Binds and starts serving on the current tokio runtime.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    if !config.allow_remote && !config.addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback { addr: config.addr });
    }
    let store = match &config.storage {
        Some(dir) => store::Store::disk(dir),
        None => store::Store::temporary(),
    }
    .map_err(|source| ServeError::Storage {
        path: config
            .storage
            .as_ref()
            .map_or_else(|| "(temporary)".to_owned(), |p| p.display().to_string()),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.addr,
        source,
    })?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let base = match &config.public_url {
        Some(url) => public_base(url)?,
        None => format!("{scheme}://{addr}"),
    };
    let hosts = (!config.allow_remote).then(|| {
        let authority = base.split_once("://").map_or("", |(_, rest)| rest);
        vec![api::host_name(authority)]
    });
    let state = Arc::new(api::AppState::new(
        store,
        api::Settings {
            page_size: config.page_size,
            auth: config.auth,
            tokens: auth::Tokens::new(config.token_lifetime, 10_000),
            limits: config.limits,
            realm: format!("{base}/token"),
            hosts,
        },
    ));
    let app = api::router(Arc::clone(&state));
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let sweep = config
        .limits
        .idle_timeout
        .clamp(Duration::from_millis(100), Duration::from_mins(1));
    let task = tokio::spawn(async move {
        let serve = async move {
            match acceptor {
                Some(acceptor) => tls::serve(listener, acceptor, app, rx).await,
                None => {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                }
            }
        };
        let expire = async move {
            let mut ticks = tokio::time::interval(sweep);
            loop {
                ticks.tick().await;
                let expired = state.expire_idle_uploads();
                if expired > 0 {
                    tracing::debug!("removed {expired} idle upload(s)");
                }
            }
        };
        tokio::select! {
            () = serve => {}
            () = expire => {}
        }
    });
    tracing::debug!("gantry registry listening on http://{addr}");
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}
