//! A reverse proxy in front of a real registry that breaks chosen requests on purpose: bodies that
//! do not match their digest, connections dropped mid-body, bodies inflated past a client's limit,
//! 429 with `Retry-After`, 503.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use crate::server::ServerThread;

/// What to do to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward, then flip the last byte of the body (headers, digest header included, unchanged).
    CorruptBody,
    /// Forward, then send the headers and half of the body and drop the connection.
    DropMidBody,
    /// Forward, then pad the body with trailing spaces (JSON stays JSON) to `to` bytes: as a
    /// hostile registry serves a manifest larger than any registry accepts at push. With
    /// `declared`, Content-Length says so; without, the body is streamed without a length, so
    /// only a client that counts while it reads notices.
    Inflate {
        /// The size to pad the body to.
        to: usize,
        /// Whether `Content-Length` says so.
        declared: bool,
    },
    /// Answer 429 with `Retry-After: <seconds>` without forwarding.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// Answer 503 without forwarding.
    Unavailable,
    /// Forward, then drop this response header.
    StripHeader(&'static str),
    /// Forward without the query string (a mount request becomes a plain upload: 202).
    DropQuery,
    /// Answer 201 without forwarding: a write the client believes done that the registry never
    /// kept, as when a concurrent writer overwrites it at once.
    LoseWrite,
}

#[derive(Debug, Clone)]
struct Rule {
    method: String,
    path_contains: String,
    fault: Fault,
    remaining: usize,
}

struct Shared {
    upstream: String,
    own: String,
    http: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<String>>,
    /// Request body bytes forwarded (what clients uploaded), and those of them sent to blob paths.
    bytes_up: std::sync::atomic::AtomicU64,
    blob_bytes_up: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Forwarding to `upstream`; `Location`s naming it are rewritten to `own`.
    fn new(upstream: &str, own: &str) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            upstream: upstream.to_owned(),
            own: own.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            rules: Mutex::default(),
            log: Mutex::default(),
            bytes_up: std::sync::atomic::AtomicU64::new(0),
            blob_bytes_up: std::sync::atomic::AtomicU64::new(0),
        }))
    }
}

/// The proxy; stopped on drop.
pub struct FaultyProxy {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    _server: ServerThread,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FaultyProxy {
    /// Proxies to `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(upstream, &addr.to_string())?;
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let server = ServerThread::spawn(listener, app)?;
        Ok(Self {
            addr,
            shared,
            _server: server,
        })
    }

    /// A router that forwards every request to `upstream` (`host:port`, plain HTTP) unchanged:
    /// to put a plain-HTTP service behind an [`crate::HttpsServer`].
    pub fn forwarding(upstream: &str) -> anyhow::Result<axum::Router> {
        let shared = Shared::new(upstream, upstream)?;
        Ok(axum::Router::new().fallback(forward).with_state(shared))
    }

    /// `127.0.0.1:<port>` of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Applies `fault` to the next `times` requests whose method is `method` and whose path
    /// contains `path_contains`.
    pub fn inject(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        lock(&self.shared.rules).push(Rule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Request body bytes forwarded upstream so far: what clients uploaded through the proxy.
    pub fn bytes_up(&self) -> u64 {
        self.shared
            .bytes_up
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The part of [`Self::bytes_up`] sent to `/blobs/` paths: layer and config uploads, not
    /// manifests.
    pub fn blob_bytes_up(&self) -> u64 {
        self.shared
            .blob_bytes_up
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `METHOD path -> status` of every request seen, faults included.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }
}

fn take_fault(shared: &Shared, method: &str, path: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    let rule = rules
        .iter_mut()
        .find(|r| r.remaining > 0 && r.method == method && path.contains(&r.path_contains))?;
    rule.remaining -= 1;
    Some(rule.fault)
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().as_str().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let fault = take_fault(&shared, &method, &path_and_query);
    let (status, response) = match fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut response = Response::new(Body::from(
                "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}",
            ));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after_secs));
            (429, response)
        }
        Some(Fault::LoseWrite) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::CREATED;
            (201, response)
        }
        Some(Fault::Unavailable) => {
            let mut response = Response::new(Body::from("unavailable"));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            (503, response)
        }
        _ => match upstream(&shared, request, fault).await {
            Ok(response) => (response.status().as_u16(), response),
            Err(e) => {
                let mut response = Response::new(Body::from(format!("proxy: {e}")));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                (502, response)
            }
        },
    };
    lock(&shared.log).push(format!(
        "{method} {path_and_query} -> {status}{}",
        fault.map(|f| format!(" ({f:?})")).unwrap_or_default()
    ));
    response
}

async fn upstream(
    shared: &Shared,
    request: Request,
    fault: Option<Fault>,
) -> anyhow::Result<Response> {
    let (parts, body) = request.into_parts();
    let path_and_query = match fault {
        Some(Fault::DropQuery) => parts.uri.path(),
        _ => parts.uri.path_and_query().map_or("/", |p| p.as_str()),
    };
    let url = format!("http://{}{path_and_query}", shared.upstream);
    let body = axum::body::to_bytes(body, usize::MAX).await?;
    shared
        .bytes_up
        .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    if parts.uri.path().contains("/blobs/") {
        shared
            .blob_bytes_up
            .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    let mut outgoing = shared.http.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = outgoing.send().await?;
    let status = answer.status().as_u16();
    let mut builder = Response::builder().status(status);
    for (name, value) in answer.headers() {
        let stripped = match fault {
            Some(Fault::StripHeader(stripped)) => name.as_str().eq_ignore_ascii_case(stripped),
            Some(Fault::Inflate { .. }) => name == "content-length",
            _ => false,
        };
        if stripped {
            continue;
        }
        let value = if name == "location" {
            // Keep uploads going through the proxy.
            let text = value
                .to_str()
                .unwrap_or_default()
                .replace(&shared.upstream, &shared.own);
            HeaderValue::from_str(&text)?
        } else {
            value.clone()
        };
        builder = builder.header(name.as_str(), value);
    }
    let bytes = answer.bytes().await?;
    let body = match fault {
        Some(Fault::CorruptBody) if !bytes.is_empty() => {
            let mut changed = bytes.to_vec();
            if let Some(last) = changed.last_mut() {
                *last ^= 0x01;
            }
            Body::from(changed)
        }
        Some(Fault::DropMidBody) if !bytes.is_empty() => {
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped on purpose",
                )),
            ];
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        Some(Fault::Inflate { to, declared }) => {
            let mut inflated = bytes.to_vec();
            inflated.resize(to.max(bytes.len()), b' ');
            if declared {
                builder = builder.header("content-length", inflated.len());
                Body::from(inflated)
            } else {
                let chunks: Vec<Result<Bytes, std::io::Error>> = inflated
                    .chunks(64 * 1024)
                    .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                    .collect();
                Body::from_stream(futures_util::stream::iter(chunks))
            }
        }
        _ => Body::from(bytes),
    };
    Ok(builder.body(body)?)
}
