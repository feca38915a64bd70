//! The registry client: one request engine (auth challenges, retries, accounting) and the
//! distribution-spec operations on top of it. Every body read is checked against its digest.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use gantry_secret::Secret;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use crate::auth::{Challenge, Credential, Credentials, parse_challenge};
use crate::digest::Digest;
use crate::error::{OciError, Result};
use crate::manifest::{ACCEPT, Descriptor, MANIFEST_LIMIT, Manifest, media_type_of};
use crate::reference::Reference;

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Hosts (`host:port`) spoken to over plain HTTP; every other host gets HTTPS.
    pub plain_http: Vec<String>,
    /// Extra CA certificates to trust (PEM files).
    pub ca_files: Vec<PathBuf>,
    /// Time limit of one request.
    pub timeout: Duration,
    /// Tries of one request that fails with 429, 5xx or a broken connection.
    pub max_attempts: u32,
    /// First back-off delay; doubled on every retry, with jitter.
    pub backoff: Duration,
    /// Blob transfers at once in a copy.
    pub concurrency: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            plain_http: Vec::new(),
            ca_files: Vec::new(),
            timeout: Duration::from_mins(5),
            max_attempts: 4,
            backoff: Duration::from_millis(200),
            concurrency: 4,
        }
    }
}

/// Requests and bytes, for summaries, tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub requests: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
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
    pub method: String,
    /// Path and query, without scheme and host.
    pub path: String,
    pub status: u16,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    retries: AtomicU64,
}

/// Access a request needs: pull, or pull and push, on one repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub repository: String,
    pub push: bool,
}

impl Scope {
    pub fn pull(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            push: false,
        }
    }
    pub fn push(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            push: true,
        }
    }
    fn token_scope(&self) -> String {
        format!(
            "repository:{}:{}",
            self.repository,
            if self.push { "pull,push" } else { "pull" }
        )
    }
}

#[derive(Default)]
struct AuthState {
    basic_hosts: HashSet<String>,
    tokens: HashMap<(String, String), Secret>,
    services: HashMap<String, (String, Option<String>)>,
}

/// A registry client shared by every operation of a run.
pub struct Client {
    http: reqwest::Client,
    options: ClientOptions,
    credentials: Credentials,
    auth: Mutex<AuthState>,
    stats: Stats,
    log: Mutex<Vec<RequestRecord>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The body of a request, kept so that the request can be sent again.
#[derive(Clone, Default)]
pub(crate) struct Body {
    pub(crate) bytes: Option<Bytes>,
    pub(crate) content_type: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Client {
    pub fn new(options: ClientOptions, credentials: Credentials) -> Result<Self> {
        let roots = gantry_http::roots(&options.ca_files)?;
        let http = gantry_http::client_builder(&roots, options.timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| OciError::Protocol(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            http,
            options,
            credentials,
            auth: Mutex::default(),
            stats: Stats::default(),
            log: Mutex::default(),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Requests and bytes so far.
    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.stats.requests.load(Ordering::Relaxed),
            bytes_up: self.stats.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.stats.bytes_down.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).clone()
    }

    pub(crate) fn count_up(&self, bytes: u64) {
        self.stats.bytes_up.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn count_down(&self, bytes: u64) {
        self.stats.bytes_down.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn base_url(&self, host: &str) -> String {
        let scheme = if self.options.plain_http.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    pub(crate) fn url(&self, reference: &Reference, path: &str) -> Result<Url> {
        let text = format!(
            "{}/v2/{}/{path}",
            self.base_url(reference.api_host()),
            reference.repository()
        );
        Url::parse(&text).map_err(|e| OciError::Protocol(format!("bad URL {text}: {e}")))
    }

    /// Sends a request that can be repeated, answering auth challenges and retrying 429, 5xx and
    /// broken connections with jittered exponential back-off (honouring `Retry-After`).
    pub(crate) async fn send(
        &self,
        reference: &Reference,
        scopes: &[Scope],
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response> {
        let host = reference.api_host().to_owned();
        let mut authenticated_again = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(bytes) = &body.bytes {
                request = request.body(bytes.clone());
                self.count_up(bytes.len() as u64);
            }
            if let Some(content_type) = &body.content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            request = self.authorize(request, reference, scopes)?;
            let result = request.send().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    lock(&self.log).push(RequestRecord {
                        method: method.to_string(),
                        path: path_of(&url),
                        status: 0,
                    });
                    if attempt < self.options.max_attempts
                        && (error.is_connect() || error.is_timeout() || error.is_request())
                    {
                        tracing::debug!("{method} {url}: {error}; retrying");
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.backoff(attempt, None)).await;
                        continue;
                    }
                    return Err(OciError::Http {
                        method: method.to_string(),
                        url: url.to_string(),
                        source: error,
                    });
                }
            };
            let status = response.status();
            lock(&self.log).push(RequestRecord {
                method: method.to_string(),
                path: path_of(&url),
                status: status.as_u16(),
            });
            if status == StatusCode::UNAUTHORIZED && !authenticated_again {
                authenticated_again = true;
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if self
                    .answer_challenge(&host, reference, scopes, challenge)
                    .await?
                {
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let detail = error_detail(response).await;
                return Err(OciError::Unauthorized {
                    registry: reference.registry().to_owned(),
                    repository: reference.repository().to_owned(),
                    action: if scopes.iter().any(|s| s.push) {
                        "push to"
                    } else {
                        "pull from"
                    },
                    status: status.as_u16(),
                    detail,
                });
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || matches!(status.as_u16(), 500 | 502 | 503 | 504);
            if retryable && attempt < self.options.max_attempts {
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                tracing::debug!("{method} {url} answered {status}; retrying");
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.backoff(attempt, retry_after)).await;
                continue;
            }
            return Ok(response);
        }
    }

    /// Sends a request whose body is a stream: once, since a stream cannot be replayed. Callers
    /// make an authenticated request first (the upload's POST), so the token is cached.
    pub(crate) async fn send_stream(
        &self,
        reference: &Reference,
        scopes: &[Scope],
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<Response> {
        let request = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body);
        let request = self.authorize(request, reference, scopes)?;
        let result = request.send().await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let response = result.map_err(|source| OciError::Http {
            method: method.to_string(),
            url: url.to_string(),
            source,
        })?;
        lock(&self.log).push(RequestRecord {
            method: method.to_string(),
            path: path_of(&url),
            status: response.status().as_u16(),
        });
        Ok(response)
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(Duration::from_mins(1));
        }
        let base = self
            .options
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(10));
        let mut byte = [0u8; 1];
        let _ = getrandom::fill(&mut byte);
        // Jitter between 50 % and 150 % of the exponential delay.
        let factor = 0.5 + f64::from(byte[0]) / 255.0;
        base.mul_f64(factor).min(Duration::from_secs(30))
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
        match self.credentials.for_registry(reference.registry())? {
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
        host: &str,
        reference: &Reference,
        scopes: &[Scope],
        challenge: Option<Challenge>,
    ) -> Result<bool> {
        let credential = self.credentials.for_registry(reference.registry())?;
        match challenge {
            Some(Challenge::Basic) => {
                if matches!(credential, Credential::Basic { .. })
                    && lock(&self.auth).basic_hosts.insert(host.to_owned())
                {
                    return Ok(true);
                }
                Ok(false)
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                if matches!(credential, Credential::Bearer(_)) {
                    return Ok(false);
                }
                lock(&self.auth)
                    .services
                    .insert(host.to_owned(), (realm.clone(), service.clone()));
                let token = self
                    .fetch_token(&realm, service.as_deref(), scopes, &credential)
                    .await?;
                lock(&self.auth)
                    .tokens
                    .insert((host.to_owned(), Self::scopes_key(scopes)), token);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn fetch_token(
        &self,
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
        let request = if let Credential::IdentityToken(refresh) = credential {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("client_id", "gantry".to_owned()),
                ("refresh_token", refresh.expose().to_owned()),
            ];
            if let Some(service) = service {
                form.push(("service", service.to_owned()));
            }
            let scope = scopes
                .iter()
                .map(Scope::token_scope)
                .collect::<Vec<_>>()
                .join(" ");
            form.push(("scope", scope));
            let encoded: String = form
                .iter()
                .map(|(k, v)| format!("{k}={}", url_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            self.http
                .post(url)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encoded)
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
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let status = response.status();
        lock(&self.log).push(RequestRecord {
            method: "GET".to_owned(),
            path: format!("{realm} (token)"),
            status: status.as_u16(),
        });
        if !status.is_success() {
            let detail = error_detail(response).await;
            return Err(OciError::Unauthorized {
                registry: realm.to_owned(),
                repository: scopes
                    .iter()
                    .map(|s| s.repository.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                action: if scopes.iter().any(|s| s.push) {
                    "push to"
                } else {
                    "pull from"
                },
                status: status.as_u16(),
                detail,
            });
        }
        let answer: TokenAnswer = response
            .json()
            .await
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

    /// Reads a body of at most `limit` bytes.
    pub(crate) async fn read_limited(
        &self,
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
            let chunk = chunk.map_err(|source| OciError::Http {
                method: "GET".to_owned(),
                url: url.clone(),
                source,
            })?;
            self.count_down(chunk.len() as u64);
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

    /// Fetches a manifest by tag or digest and checks its digest: against the reference's digest,
    /// else against the registry's `Docker-Content-Digest` when it sends one.
    pub async fn manifest(&self, reference: &Reference) -> Result<Manifest> {
        self.manifest_with_scopes(reference, &[Scope::pull(reference.repository())])
            .await
    }

    pub(crate) async fn manifest_with_scopes(
        &self,
        reference: &Reference,
        scopes: &[Scope],
    ) -> Result<Manifest> {
        let url = self.url(
            reference,
            &format!("manifests/{}", reference.manifest_reference()),
        )?;
        let response = self
            .send(
                reference,
                scopes,
                Method::GET,
                url.clone(),
                accept_headers(),
                Body::default(),
            )
            .await?;
        let response =
            check_status(response, "GET", &url, &format!("manifest {reference}")).await?;
        let content_type = header_str(response.headers(), header::CONTENT_TYPE);
        let claimed = header_str(response.headers(), "docker-content-digest");
        let bytes = self
            .read_limited(response, MANIFEST_LIMIT, &format!("manifest {reference}"))
            .await?;
        let expected = match reference.digest() {
            Some(digest) => Some(digest.clone()),
            None => claimed.as_deref().and_then(|c| c.parse::<Digest>().ok()),
        };
        let actual = expected.as_ref().map_or_else(
            || Digest::sha256(&bytes),
            |e| {
                let mut hasher = e.hasher();
                hasher.update(&bytes);
                hasher.finish()
            },
        );
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(OciError::DigestMismatch {
                what: format!("manifest {reference}"),
                expected,
                actual,
            });
        }
        let media_type = media_type_of(&bytes, content_type.as_deref());
        Ok(Manifest {
            bytes,
            media_type,
            digest: actual,
        })
    }

    /// What a tag or digest points at, by HEAD (GET when the registry sends no digest header).
    pub async fn resolve(&self, reference: &Reference) -> Result<Descriptor> {
        match self.head_manifest(reference).await? {
            Some(descriptor) => Ok(descriptor),
            None => Err(OciError::NotFound {
                what: format!("manifest {reference}"),
            }),
        }
    }

    /// Like [`Self::resolve`], with `None` for a manifest that does not exist.
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Option<Descriptor>> {
        self.head_manifest_with_scopes(reference, &[Scope::pull(reference.repository())])
            .await
    }

    pub(crate) async fn head_manifest_with_scopes(
        &self,
        reference: &Reference,
        scopes: &[Scope],
    ) -> Result<Option<Descriptor>> {
        let url = self.url(
            reference,
            &format!("manifests/{}", reference.manifest_reference()),
        )?;
        let response = self
            .send(
                reference,
                scopes,
                Method::HEAD,
                url.clone(),
                accept_headers(),
                Body::default(),
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response =
            check_status(response, "HEAD", &url, &format!("manifest {reference}")).await?;
        let digest = header_str(response.headers(), "docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok());
        let media_type = header_str(response.headers(), header::CONTENT_TYPE);
        let size = content_length(response.headers());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size))
                if reference.digest().is_none_or(|d| *d == digest)
                    && media_type != "application/json" =>
            {
                let media_type = media_type
                    .split(';')
                    .next()
                    .unwrap_or(&media_type)
                    .trim()
                    .to_owned();
                Ok(Some(Descriptor {
                    media_type,
                    digest,
                    size,
                    artifact_type: None,
                    annotations: None,
                    platform: None,
                }))
            }
            _ => Ok(Some(
                self.manifest_with_scopes(reference, scopes)
                    .await?
                    .descriptor(),
            )),
        }
    }

    /// Pushes manifest bytes unchanged at `reference` (tag or digest). Returns whether the
    /// registry handled a `subject` itself (`OCI-Subject` header).
    pub async fn put_manifest(&self, reference: &Reference, manifest: &Manifest) -> Result<bool> {
        let url = self.url(
            reference,
            &format!("manifests/{}", reference.manifest_reference()),
        )?;
        let body = Body {
            bytes: Some(manifest.bytes.clone()),
            content_type: Some(manifest.media_type.clone()),
        };
        let scopes = [Scope::push(reference.repository())];
        let response = self
            .send(
                reference,
                &scopes,
                Method::PUT,
                url.clone(),
                HeaderMap::new(),
                body,
            )
            .await?;
        let response =
            check_status(response, "PUT", &url, &format!("manifest {reference}")).await?;
        if let Some(claimed) = header_str(response.headers(), "docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok())
            && claimed != manifest.digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("manifest pushed to {reference} (as the registry stored it)"),
                expected: manifest.digest.clone(),
                actual: claimed,
            });
        }
        Ok(response.headers().contains_key("oci-subject"))
    }

    /// The size of a blob, or `None` when the repository does not have it.
    pub async fn blob_exists(
        &self,
        reference: &Reference,
        digest: &Digest,
        scopes: &[Scope],
    ) -> Result<Option<u64>> {
        let url = self.url(reference, &format!("blobs/{digest}"))?;
        let response = self
            .send(
                reference,
                scopes,
                Method::HEAD,
                url.clone(),
                HeaderMap::new(),
                Body::default(),
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check_status(response, "HEAD", &url, &format!("blob {digest}")).await?;
        Ok(Some(content_length(response.headers()).unwrap_or(0)))
    }

    /// Fetches a whole blob of at most `limit` bytes and checks it against `digest`.
    pub async fn blob(&self, reference: &Reference, digest: &Digest, limit: u64) -> Result<Bytes> {
        let url = self.url(reference, &format!("blobs/{digest}"))?;
        let scopes = [Scope::pull(reference.repository())];
        let response = self
            .send(
                reference,
                &scopes,
                Method::GET,
                url.clone(),
                HeaderMap::new(),
                Body::default(),
            )
            .await?;
        let what = format!("blob {digest} in {}", reference.name());
        let response = check_status(response, "GET", &url, &what).await?;
        let bytes = self.read_limited(response, limit, &what).await?;
        let mut hasher = digest.hasher();
        hasher.update(&bytes);
        let actual = hasher.finish();
        if actual != *digest {
            return Err(OciError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Opens a blob download for streaming (the caller checks the digest as it reads).
    pub(crate) async fn blob_response(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Response> {
        let url = self.url(reference, &format!("blobs/{digest}"))?;
        let scopes = [Scope::pull(reference.repository())];
        let response = self
            .send(
                reference,
                &scopes,
                Method::GET,
                url.clone(),
                HeaderMap::new(),
                Body::default(),
            )
            .await?;
        check_status(
            response,
            "GET",
            &url,
            &format!("blob {digest} in {}", reference.name()),
        )
        .await
    }

    /// Starts an upload session; returns its location.
    pub(crate) async fn start_upload(
        &self,
        reference: &Reference,
        scopes: &[Scope],
    ) -> Result<Url> {
        let url = self.url(reference, "blobs/uploads/")?;
        let response = self
            .send(
                reference,
                scopes,
                Method::POST,
                url.clone(),
                HeaderMap::new(),
                Body::default(),
            )
            .await?;
        let response = check_status(
            response,
            "POST",
            &url,
            &format!("upload to {}", reference.name()),
        )
        .await?;
        self.location(reference, &response)
    }

    pub(crate) fn location(&self, reference: &Reference, response: &Response) -> Result<Url> {
        let location = header_str(response.headers(), header::LOCATION).ok_or_else(|| {
            OciError::Protocol(format!(
                "{} answered {} without a Location",
                response.url(),
                response.status()
            ))
        })?;
        let base = Url::parse(&self.base_url(reference.api_host()))
            .map_err(|e| OciError::Protocol(e.to_string()))?;
        base.join(&location)
            .map_err(|e| OciError::Protocol(format!("bad Location {location:?}: {e}")))
    }

    /// Uploads a blob held in memory (config blobs, small artifacts): POST, then PUT with the digest.
    pub async fn upload_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<()> {
        let scopes = [Scope::push(reference.repository())];
        let location = self.start_upload(reference, &scopes).await?;
        let url = with_digest(location, digest);
        let body = Body {
            bytes: Some(bytes),
            content_type: Some("application/octet-stream".to_owned()),
        };
        let response = self
            .send(
                reference,
                &scopes,
                Method::PUT,
                url.clone(),
                HeaderMap::new(),
                body,
            )
            .await?;
        check_status(
            response,
            "PUT",
            &url,
            &format!("blob {digest} to {}", reference.name()),
        )
        .await?;
        Ok(())
    }

    /// Tries to mount a blob from another repository of the same registry. `Ok(None)` when it was
    /// mounted; `Ok(Some(location))` when the registry opened a normal upload instead (202).
    pub async fn mount_blob(
        &self,
        target: &Reference,
        from: &Reference,
        digest: &Digest,
    ) -> Result<Option<Url>> {
        let mut url = self.url(target, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from.repository());
        let scopes = [
            Scope::push(target.repository()),
            Scope::pull(from.repository()),
        ];
        let response = self
            .send(
                target,
                &scopes,
                Method::POST,
                url.clone(),
                HeaderMap::new(),
                Body::default(),
            )
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => Ok(Some(self.location(target, &response)?)),
            _ => {
                check_status(response, "POST", &url, &format!("mount of {digest}")).await?;
                Err(OciError::Protocol(format!(
                    "POST {url} answered neither 201 nor 202"
                )))
            }
        }
    }

    /// All tags of a repository, following `Link` pagination.
    pub async fn tags(&self, reference: &Reference) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let scopes = [Scope::pull(reference.repository())];
        let mut url = self.url(reference, "tags/list")?;
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let response = self
                .send(
                    reference,
                    &scopes,
                    Method::GET,
                    url.clone(),
                    HeaderMap::new(),
                    Body::default(),
                )
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            let response = check_status(
                response,
                "GET",
                &url,
                &format!("tags of {}", reference.name()),
            )
            .await?;
            let next = next_link(response.headers());
            let page = self
                .read_limited(response, MANIFEST_LIMIT, "tag list")
                .await?;
            let list: TagList = serde_json::from_slice(&page)
                .map_err(|e| OciError::Protocol(format!("tag list is not JSON: {e}")))?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(link) => {
                    let base = Url::parse(&self.base_url(reference.api_host()))
                        .map_err(|e| OciError::Protocol(e.to_string()))?;
                    url = base
                        .join(&link)
                        .map_err(|e| OciError::Protocol(format!("bad Link {link:?}: {e}")))?;
                }
                None => return Ok(tags),
            }
        }
        Err(OciError::Protocol(
            "more than 1000 pages of tags".to_owned(),
        ))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

pub(crate) fn accept_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, header::HeaderValue::from_static(ACCEPT));
    headers
}

pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `Content-Length` header. (`Response::content_length` is the body's size hint, which is 0
/// for every HEAD response over HTTP/1.1.)
fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

pub(crate) fn with_digest(mut location: Url, digest: &Digest) -> Url {
    location
        .query_pairs_mut()
        .append_pair("digest", digest.as_str());
    location
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

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The distribution error body, flattened for a message.
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
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Errors>(&text) {
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
        Err(_) => text.chars().take(300).collect::<String>().trim().to_owned(),
    }
}

/// Passes a successful response through; turns 404 into `NotFound` and others into `Status`.
pub(crate) async fn check_status(
    response: Response,
    method: &str,
    url: &Url,
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
        method: method.to_owned(),
        url: url.to_string(),
        status: status.as_u16(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = std::time::SystemTime::now() + Duration::from_mins(2);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).expect("date");
        assert!(
            parsed <= Duration::from_mins(2) && parsed >= Duration::from_secs(115),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

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
}
