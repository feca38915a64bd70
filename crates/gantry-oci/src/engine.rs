//! The transport under every registry operation, and the one request builder they all use.
//!
//! [`Engine`] holds what a run shares: the HTTP client, credentials (looked up once per registry,
//! so a Docker credential helper runs once per run), auth state (basic hosts, bearer tokens per
//! scope), which loopback hosts speak plain HTTP, and the accounting of requests and bytes. An
//! operation describes a request with [`Call`] (method, path, scopes, headers, body, what it is
//! for) and sends it with [`Call::send`], [`Call::ok`] or [`Call::found`]: the engine answers auth
//! challenges, retries by gantry-http's one policy, and checks the status.
//!
//! Credentials go only where they belong: to the registry's own origin, and to a token realm on
//! the registry's host (or a host the caller names); never over plain HTTP when the registry
//! speaks HTTPS, never to a host a `Location` or `Link` header names.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use gantry_http::retry::Policy;
use gantry_secret::Secret;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use crate::auth::{Challenge, Credential, Credentials};
use crate::error::{OciError, Result};
use crate::reference::Reference;

/// The most of an error body or token answer that is read (the rest is dropped unread).
pub(crate) const DETAIL_LIMIT: u64 = 4096;
const TOKEN_LIMIT: u64 = 64 * 1024;

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Hosts (`host:port`) spoken to over plain HTTP. Loopback hosts (`localhost`, `127.0.0.0/8`,
    /// `[::1]`) need not be listed: as with docker and crane, they are tried over HTTPS and then
    /// over plain HTTP.
    pub plain_http: Vec<String>,
    /// Extra CA certificates to trust (PEM files).
    pub ca_files: Vec<PathBuf>,
    /// Time limit of one request.
    pub timeout: Duration,
    /// What is retried, and how long to wait.
    pub retry: Policy,
    /// Blob transfers at once in a copy.
    pub concurrency: usize,
    /// Hosts besides the registry's own that may receive its credentials as a token realm.
    /// Docker Hub's `auth.docker.io` is known without being listed.
    pub token_hosts: Vec<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            plain_http: Vec::new(),
            ca_files: Vec::new(),
            timeout: Duration::from_mins(5),
            retry: Policy::default(),
            concurrency: 4,
            token_hosts: Vec::new(),
        }
    }
}

/// Requests and bytes, for summaries, tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Requests sent (retries and token requests included).
    pub requests: u64,
    /// Body bytes sent.
    pub bytes_up: u64,
    /// Body bytes received.
    pub bytes_down: u64,
    /// Requests sent again after a transient failure.
    pub retries: u64,
}

impl std::ops::Sub for Counts {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self {
            requests: self.requests - rhs.requests,
            bytes_up: self.bytes_up - rhs.bytes_up,
            bytes_down: self.bytes_down - rhs.bytes_down,
            retries: self.retries - rhs.retries,
        }
    }
}

/// One request as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `PUT`, …
    pub method: String,
    /// Path and query, without scheme and host (a token request: the realm and `(token)`).
    pub path: String,
    /// The answer's status; 0 when none came.
    pub status: u16,
}

/// Access a request needs: pull, or pull and push, on one repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// The repository, without the registry.
    pub repository: String,
    /// Whether pushing is needed too.
    pub push: bool,
}

impl Scope {
    /// Pull access to `repository`.
    pub fn pull(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            push: false,
        }
    }
    /// Pull and push access to `repository`.
    pub fn push(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            push: true,
        }
    }
    pub(crate) fn token_scope(&self) -> String {
        format!(
            "repository:{}:{}",
            self.repository,
            if self.push { "pull,push" } else { "pull" }
        )
    }
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    retries: AtomicU64,
}

#[derive(Default)]
struct AuthState {
    basic_hosts: HashSet<String>,
    tokens: HashMap<(String, String), Secret>,
}

mod call;

pub(crate) use call::Call;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `host` (`name[:port]`) is this machine: `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The shared transport of one client.
pub(crate) struct Engine {
    http: reqwest::Client,
    pub(crate) options: ClientOptions,
    credentials: Credentials,
    /// Credentials looked up so far, by registry: a credential helper runs once per registry.
    looked_up: Mutex<HashMap<String, Credential>>,
    auth: Mutex<AuthState>,
    /// Loopback hosts found to answer plain HTTP, not HTTPS.
    plain_loopback: Mutex<HashSet<String>>,
    stats: Stats,
    log: Mutex<Vec<RequestRecord>>,
}

impl Engine {
    pub(crate) fn new(options: ClientOptions, credentials: Credentials) -> Result<Self> {
        let roots = gantry_http::roots(&options.ca_files)?;
        let http = gantry_http::client_builder(&roots, options.timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| OciError::Protocol(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            http,
            options,
            credentials,
            looked_up: Mutex::default(),
            auth: Mutex::default(),
            plain_loopback: Mutex::default(),
            stats: Stats::default(),
            log: Mutex::default(),
        })
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            requests: self.stats.requests.load(Ordering::Relaxed),
            bytes_up: self.stats.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.stats.bytes_down.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).clone()
    }

    pub(crate) fn count_up(&self, bytes: u64) {
        self.stats.bytes_up.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn count_down(&self, bytes: u64) {
        self.stats.bytes_down.fetch_add(bytes, Ordering::Relaxed);
    }

    fn record(&self, method: &Method, path: String, status: u16) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        lock(&self.log).push(RequestRecord {
            method: method.to_string(),
            path,
            status,
        });
    }

    fn scheme(&self, host: &str) -> &'static str {
        if self.options.plain_http.iter().any(|h| h == host)
            || lock(&self.plain_loopback).contains(host)
        {
            "http"
        } else {
            "https"
        }
    }

    /// `scheme://host` of a registry.
    pub(crate) fn base_url(&self, host: &str) -> Result<Url> {
        let text = format!("{}://{host}", self.scheme(host));
        Url::parse(&text).map_err(|e| OciError::Protocol(format!("bad registry URL {text}: {e}")))
    }

    /// The credential for `registry`, looked up once per run.
    fn credential(&self, registry: &str) -> Result<Credential> {
        let mut looked_up = lock(&self.looked_up);
        if let Some(credential) = looked_up.get(registry) {
            return Ok(credential.clone());
        }
        let credential = self.credentials.for_registry(registry)?;
        looked_up.insert(registry.to_owned(), credential.clone());
        Ok(credential)
    }

    /// A request to `path` under `/v2/<repository>/` of `reference`'s registry.
    pub(crate) fn call<'a>(
        &'a self,
        method: Method,
        reference: &'a Reference,
        path: &str,
    ) -> Call<'a> {
        let url = self.base_url(reference.api_host()).and_then(|base| {
            base.join(&format!("/v2/{}/{path}", reference.repository()))
                .map_err(|e| OciError::Protocol(format!("bad path {path:?}: {e}")))
        });
        Call::new(self, method, reference, url, true)
    }

    /// A request to a URL a registry handed out (`Location`, `Link`): relative to the registry,
    /// or absolute. Credentials go along only when it is the registry's own origin; a URL that
    /// would downgrade HTTPS to HTTP is refused.
    pub(crate) fn follow<'a>(
        &'a self,
        method: Method,
        reference: &'a Reference,
        link: &str,
    ) -> Call<'a> {
        let mut own = true;
        let url = self.base_url(reference.api_host()).and_then(|base| {
            let url = base
                .join(link)
                .map_err(|e| OciError::Protocol(format!("bad URL {link:?} from {base}: {e}")))?;
            if base.scheme() == "https" && url.scheme() != "https" {
                return Err(OciError::Protocol(format!(
                    "{} sent gantry to {url}, which is not HTTPS: refusing to leave HTTPS",
                    reference.registry()
                )));
            }
            own = url.origin() == base.origin();
            Ok(url)
        });
        Call::new(self, method, reference, url, own)
    }

    fn scopes_key(scopes: &[Scope]) -> String {
        let mut parts: Vec<String> = scopes.iter().map(Scope::token_scope).collect();
        parts.sort();
        parts.join(" ")
    }

    fn authorize(
        &self,
        request: RequestBuilder,
        reference: &Reference,
        scopes: &[Scope],
    ) -> Result<RequestBuilder> {
        let host = reference.api_host();
        let state = lock(&self.auth);
        if let Some(token) = state
            .tokens
            .get(&(host.to_owned(), Self::scopes_key(scopes)))
        {
            return Ok(request.bearer_auth(token.expose()));
        }
        let basic = state.basic_hosts.contains(host);
        drop(state);
        match self.credential(reference.registry())? {
            Credential::Basic { username, password } if basic => {
                Ok(request.basic_auth(username, Some(password.expose())))
            }
            Credential::Bearer(token) => Ok(request.bearer_auth(token.expose())),
            _ => Ok(request),
        }
    }

    /// Acts on a 401 challenge; `true` when the request should be sent again.
    async fn answer_challenge(
        &self,
        reference: &Reference,
        scopes: &[Scope],
        challenge: Option<Challenge>,
    ) -> Result<bool> {
        let host = reference.api_host();
        let credential = self.credential(reference.registry())?;
        match challenge {
            Some(Challenge::Basic) => Ok(matches!(credential, Credential::Basic { .. })
                && lock(&self.auth).basic_hosts.insert(host.to_owned())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if matches!(credential, Credential::Bearer(_)) {
                    return Ok(false);
                }
                let token = self
                    .fetch_token(reference, &realm, service.as_deref(), scopes, &credential)
                    .await?;
                lock(&self.auth)
                    .tokens
                    .insert((host.to_owned(), Self::scopes_key(scopes)), token);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether a realm at `realm_host` may receive the credentials of `reference`'s registry.
    fn may_receive_credentials(&self, reference: &Reference, realm_host: &str) -> bool {
        let registry = reference.api_host();
        let registry_name = registry.rsplit_once(':').map_or(registry, |(name, _)| name);
        // Docker Hub's registry and its token service live on different hosts.
        let known = [("registry-1.docker.io", "auth.docker.io")];
        realm_host.eq_ignore_ascii_case(registry_name)
            || known.contains(&(registry_name, realm_host))
            || self
                .options
                .token_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(realm_host))
    }

    async fn fetch_token(
        &self,
        reference: &Reference,
        realm: &str,
        service: Option<&str>,
        scopes: &[Scope],
        credential: &Credential,
    ) -> Result<Secret> {
        let err = |reason: String| OciError::Token {
            realm: realm.to_owned(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|e| err(format!("the realm is not a URL: {e}")))?;
        let registry = self.base_url(reference.api_host())?;
        if registry.scheme() == "https" && url.scheme() != "https" {
            return Err(err(format!(
                "{} speaks HTTPS but names a {} realm; gantry does not send credentials in cleartext",
                reference.registry(),
                url.scheme()
            )));
        }
        let realm_host = url.host_str().unwrap_or_default().to_owned();
        let trusted = self.may_receive_credentials(reference, &realm_host);
        if !trusted && !matches!(credential, Credential::Anonymous) {
            tracing::warn!(
                "the token service {realm_host} is not {}'s host: asking it for an anonymous token (pass --registry-token-host {realm_host} to send credentials there)",
                reference.registry()
            );
        }
        let credential = if trusted {
            credential
        } else {
            &Credential::Anonymous
        };
        let request = if let Credential::IdentityToken(refresh) = credential {
            let scope = scopes
                .iter()
                .map(Scope::token_scope)
                .collect::<Vec<_>>()
                .join(" ");
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("client_id", "gantry")
                .append_pair("refresh_token", refresh.expose());
            if let Some(service) = service {
                form.append_pair("service", service);
            }
            form.append_pair("scope", &scope);
            self.http
                .post(url)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.finish())
        } else {
            {
                let mut query = url.query_pairs_mut();
                if let Some(service) = service {
                    query.append_pair("service", service);
                }
                for scope in scopes {
                    query.append_pair("scope", &scope.token_scope());
                }
            }
            let request = self.http.get(url);
            match credential {
                Credential::Basic { username, password } => {
                    request.basic_auth(username, Some(password.expose()))
                }
                _ => request,
            }
        };
        let response = request.send().await.map_err(|e| err(e.to_string()))?;
        let status = response.status();
        self.record(&Method::GET, format!("{realm} (token)"), status.as_u16());
        if !status.is_success() {
            let mut detail = error_detail(response).await;
            if !trusted {
                let _ = write!(
                    detail,
                    "\nhint: gantry sent no credentials to {realm_host}, which is not {}'s host; pass --registry-token-host {realm_host} if it is the registry's token service",
                    reference.registry()
                );
            }
            return Err(OciError::Unauthorized {
                registry: realm.to_owned(),
                repository: scopes
                    .iter()
                    .map(|s| s.repository.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                action: action(scopes),
                status: status.as_u16(),
                detail,
            });
        }
        let body = read_limited(self, response, TOKEN_LIMIT, "the token answer").await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| err(format!("the answer is not a token: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(
                || err("the answer holds neither \"token\" nor \"access_token\"".to_owned()),
            )
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// Reads a body of at most `limit` bytes, counting them.
pub(crate) async fn read_limited(
    engine: &Engine,
    response: Response,
    limit: u64,
    what: &str,
) -> Result<Bytes> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(OciError::TooLarge {
            what: what.to_owned(),
            limit,
        });
    }
    let url = response.url().to_string();
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| OciError::Http {
            method: "GET".to_owned(),
            url: url.clone(),
            reason: gantry_http::explain(&error),
        })?;
        engine.count_down(chunk.len() as u64);
        if buffer.len() as u64 + chunk.len() as u64 > limit {
            return Err(OciError::TooLarge {
                what: what.to_owned(),
                limit,
            });
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `Content-Length` header. (`Response::content_length` is the body's size hint, which is 0
/// for every HEAD response over HTTP/1.1.)
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

fn path_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `<url>; rel="next"` from a `Link` header.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = header_str(headers, header::LINK)?;
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            Some(part[start..end].to_owned())
        })
}

/// What a request with `scopes` tried to do, for an error message.
fn action(scopes: &[Scope]) -> &'static str {
    if scopes.iter().any(|s| s.push) {
        "push to"
    } else {
        "pull from"
    }
}

/// The distribution error body, flattened for a message: at most [`DETAIL_LIMIT`] bytes read.
pub(crate) async fn error_detail(response: Response) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    let mut cut = false;
    while let Some(Ok(chunk)) = stream.next().await {
        let room = usize::try_from(DETAIL_LIMIT).unwrap_or(usize::MAX) - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            cut = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    let detail = match serde_json::from_str::<Errors>(&text) {
        Ok(errors) => errors
            .errors
            .into_iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e.code.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
                .trim()
                .to_owned()
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => text.trim().to_owned(),
    };
    if cut {
        format!("{detail} … (cut at {DETAIL_LIMIT} bytes)")
    } else {
        detail
    }
}

/// Passes a successful response through; turns 404 into `NotFound` and others into `Status`.
pub(crate) async fn check_status(
    response: Response,
    method: &Method,
    url: &str,
    what: &str,
) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(OciError::NotFound {
            what: what.to_owned(),
        });
    }
    let detail = error_detail(response).await;
    Err(OciError::Status {
        method: method.to_string(),
        url: url.to_owned(),
        status: status.as_u16(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_read_from_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            "</v2/a/tags/list?n=2&last=b>; rel=\"next\""
                .parse()
                .expect("header"),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:5000",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
