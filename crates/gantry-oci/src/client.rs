//! The registry client: one request engine (auth challenges, retries, accounting) and the
//! distribution-spec operations on top of it. Every body read is checked against its digest.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gantry_secret::Secret;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;

use crate::auth::Credentials;
use crate::digest::Digest;
use crate::engine::{
    accept_headers, check_status, content_length, header_str, next_link, with_digest,
};
use crate::error::{OciError, Result};
use crate::manifest::{Descriptor, MANIFEST_LIMIT, Manifest, media_type_of};
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
pub(crate) struct Stats {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes_up: AtomicU64,
    pub(crate) bytes_down: AtomicU64,
    pub(crate) retries: AtomicU64,
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
    pub(crate) fn token_scope(&self) -> String {
        format!(
            "repository:{}:{}",
            self.repository,
            if self.push { "pull,push" } else { "pull" }
        )
    }
}

#[derive(Default)]
pub(crate) struct AuthState {
    pub(crate) basic_hosts: HashSet<String>,
    pub(crate) tokens: HashMap<(String, String), Secret>,
}

/// A registry client shared by every operation of a run.
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) options: ClientOptions,
    pub(crate) credentials: Credentials,
    pub(crate) auth: Mutex<AuthState>,
    pub(crate) stats: Stats,
    pub(crate) log: Mutex<Vec<RequestRecord>>,
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

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Client {
    /// An anonymous client speaking plain HTTP to `host`: a loopback registry (the demo's
    /// embedded one, test and benchmark registries).
    pub fn plain_http(host: &str) -> Result<Self> {
        Self::new(
            ClientOptions {
                plain_http: vec![host.to_owned()],
                ..ClientOptions::default()
            },
            Credentials::anonymous(),
        )
    }

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
        let actual = expected
            .as_ref()
            .map_or_else(|| Digest::sha256(&bytes), |e| e.hash_like(&bytes));
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

    /// `image` pinned to the digest it names now (read once, checked), and with `platforms` the
    /// manifests of an index as well: what a tool signs or verifies "by digest".
    pub async fn pinned(&self, image: &Reference, platforms: bool) -> Result<Vec<Reference>> {
        let manifest = self.manifest(image).await?;
        let top = image.with_digest(manifest.digest.clone());
        let mut out = vec![top.clone()];
        if platforms {
            for child in manifest.fields()?.manifests {
                out.push(top.with_digest(child.digest.clone()));
            }
        }
        Ok(out)
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
            .send_empty(reference, scopes, Method::HEAD, url.clone())
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check_status(response, "HEAD", &url, &format!("blob {digest}")).await?;
        Ok(Some(content_length(response.headers()).unwrap_or(0)))
    }

    /// Fetches a whole blob of at most `limit` bytes and checks it against `digest`.
    pub async fn blob(&self, reference: &Reference, digest: &Digest, limit: u64) -> Result<Bytes> {
        let what = format!("blob {digest} in {}", reference.name());
        let response = self.blob_response(reference, digest).await?;
        let bytes = self.read_limited(response, limit, &what).await?;
        let actual = digest.hash_like(&bytes);
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
            .send_empty(reference, &scopes, Method::GET, url.clone())
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
            .send_empty(reference, scopes, Method::POST, url.clone())
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
            .send_empty(target, &scopes, Method::POST, url.clone())
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => Ok(Some(self.location(target, &response)?)),
            other => {
                check_status(response, "POST", &url, &format!("mount of {digest}")).await?;
                Err(OciError::Protocol(format!(
                    "POST {url} answered {other}, expected 201 (mounted) or 202 (upload instead)"
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
                .send_empty(reference, &scopes, Method::GET, url.clone())
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
