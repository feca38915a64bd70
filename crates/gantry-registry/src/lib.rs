//! gantry's embedded OCI registry, for the demo and the tests: distribution-spec 1.1 with the
//! referrers API, which CNCF distribution 2.8 lacks.
//!
//! The one decision: correctness over speed. Every pushed blob and manifest is hashed and checked
//! against its digest, a manifest is refused while a blob or child it names is missing, and bad
//! requests get the spec's error codes, so a client that works here is not relying on leniency. It
//! listens on loopback unless told otherwise.

mod api;
mod auth;
mod store;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use auth::AuthMode;

/// How to run the registry.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Keep content in this directory (reloaded on start); in memory when `None`.
    pub storage: Option<PathBuf>,
    pub auth: AuthMode,
    /// Allow an address other than loopback.
    pub allow_remote: bool,
    /// Serve HTTPS with this certificate chain and key (PEM files); plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Most referrers in one answer; more are paged with `Link` headers.
    pub page_size: usize,
}

/// PEM files of a server certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
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
        }
    }
}

#[derive(Debug, thiserror::Error)]
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
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

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

/// Binds and starts serving on the current tokio runtime.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    if !config.allow_remote && !config.addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback { addr: config.addr });
    }
    let store = match &config.storage {
        Some(dir) => store::Store::disk(dir),
        None => store::Store::memory(),
    }
    .map_err(|source| ServeError::Storage {
        path: config
            .storage
            .as_ref()
            .map_or_else(|| "(memory)".to_owned(), |p| p.display().to_string()),
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
    let state = Arc::new(api::AppState::new(store, config.auth, config.page_size));
    let app = api::router(state);
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
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
    });
    tracing::debug!("gantry registry listening on http://{addr}");
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}
