//! An axum server on a thread and runtime of its own, so that sync and async tests alike can hold
//! it; stopped (gracefully) when dropped.

pub(crate) struct ServerThread {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The runtime a server thread runs on.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

impl ServerThread {
    /// Serves `app` on `listener` (already bound, any blocking mode).
    pub(crate) fn spawn(
        listener: std::net::TcpListener,
        app: axum::Router,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = runtime()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(Self {
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl ServerThread {
    /// Serves `app` over HTTPS with `cert` on `listener`.
    pub(crate) fn spawn_tls(
        listener: std::net::TcpListener,
        app: axum::Router,
        cert: &crate::pki::IssuedCert,
    ) -> anyhow::Result<Self> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::service::TowerToHyperService;
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pkcs8_der.clone())),
            )?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        listener.set_nonblocking(true)?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = runtime()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let stream = tokio::select! {
                        _ = &mut rx => return,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let acceptor = acceptor.clone();
                    let service = TowerToHyperService::new(app.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        });
        Ok(Self {
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

/// An HTTPS server for tests: `app` behind a certificate from a test CA for `127.0.0.1`,
/// `localhost` and [`crate::TEST_HOST_NAME`]. Stopped on drop.
pub struct HttpsServer {
    addr: std::net::SocketAddr,
    _server: ServerThread,
}

impl HttpsServer {
    /// Starts serving `app` over HTTPS with a certificate from `ca`.
    pub fn start(app: axum::Router, ca: &crate::TestCa) -> anyhow::Result<Self> {
        let cert = ca.issue(&["127.0.0.1", "localhost", crate::TEST_HOST_NAME])?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        Ok(Self {
            addr,
            _server: ServerThread::spawn_tls(listener, app, &cert)?,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
