//! [`Call`]: one request, described by an operation and sent by the [`Engine`](super::Engine):
//! auth challenges, retries by the one policy, loopback plain HTTP, status checks.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use gantry_http::retry::{Decision, Failure, Replay};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::{
    Engine, Scope, action, check_status, error_detail, header_str, is_loopback_host, lock, path_of,
};
use crate::auth::parse_challenge;
use crate::error::{OciError, Result};
use crate::manifest::ACCEPT;
use crate::reference::Reference;

enum Payload {
    Empty,
    /// Kept whole, so that the request can be sent again.
    Bytes(Bytes),
    /// Sent once: a stream cannot be replayed.
    Stream(Option<reqwest::Body>),
}

/// One request to a registry, described by an operation and sent by the engine.
pub(crate) struct Call<'a> {
    engine: &'a Engine,
    reference: &'a Reference,
    method: Method,
    url: Result<Url>,
    /// Whether the URL is the registry's own origin (credentials go along).
    own_origin: bool,
    scopes: Vec<Scope>,
    headers: HeaderMap,
    payload: Payload,
    what: Option<String>,
}

impl<'a> Call<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        method: Method,
        reference: &'a Reference,
        url: Result<Url>,
        own_origin: bool,
    ) -> Self {
        let scope = if matches!(method, Method::GET | Method::HEAD) {
            Scope::pull(reference.repository())
        } else {
            Scope::push(reference.repository())
        };
        Self {
            engine,
            reference,
            method,
            url,
            own_origin,
            scopes: vec![scope],
            headers: HeaderMap::new(),
            payload: Payload::Empty,
            what: None,
        }
    }

    /// The access the request needs (default: pull for reads, push for writes, on the
    /// reference's repository).
    pub(crate) fn scopes(mut self, scopes: &[Scope]) -> Self {
        self.scopes = scopes.to_vec();
        self
    }

    /// Accepts every manifest media type (FACTS: all four, always).
    pub(crate) fn accept_manifests(self) -> Self {
        self.header(header::ACCEPT, HeaderValue::from_static(ACCEPT))
    }

    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub(crate) fn query(mut self, key: &str, value: &str) -> Self {
        if let Ok(url) = &mut self.url {
            url.query_pairs_mut().append_pair(key, value);
        }
        self
    }

    pub(crate) fn bytes(mut self, bytes: Bytes, content_type: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(content_type) {
            self.headers.insert(header::CONTENT_TYPE, value);
        }
        self.payload = Payload::Bytes(bytes);
        self
    }

    /// A streamed body, sent once (callers authenticate first, so the token is cached).
    pub(crate) fn stream(mut self, body: reqwest::Body, content_type: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(content_type) {
            self.headers.insert(header::CONTENT_TYPE, value);
        }
        self.payload = Payload::Stream(Some(body));
        self
    }

    /// What the request is about, for messages ("manifest ghcr.io/a/b:v1").
    pub(crate) fn what(mut self, what: impl Into<String>) -> Self {
        self.what = Some(what.into());
        self
    }

    /// Sends the request: answers one auth challenge, retries what the policy retries, switches a
    /// loopback host to plain HTTP when it does not speak HTTPS. Returns any answer but 401 and
    /// 403, which are errors naming the registry and the access asked for.
    pub(crate) async fn send(mut self) -> Result<Response> {
        let engine = self.engine;
        let mut url = std::mem::replace(&mut self.url, Err(OciError::Protocol(String::new())))?;
        let replay = match self.payload {
            Payload::Stream(_) => Replay::Unsafe,
            _ => Replay::Safe,
        };
        let mut attempts = engine.options.retry.attempts();
        let mut challenged = false;
        loop {
            let request = self.build(&url)?;
            let result = request.send().await;
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    engine.record(&self.method, path_of(&url), 0);
                    if self.switch_to_plain_http(&mut url, &error) {
                        continue;
                    }
                    match attempts.after(replay, Failure::of(&error)) {
                        Decision::Retry(wait) if !matches!(self.payload, Payload::Stream(_)) => {
                            tracing::debug!("{} {url}: {error}; retrying", self.method);
                            engine.stats.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        _ => return Err(transport_error(&self.method, &url, &error)),
                    }
                }
            };
            let status = response.status();
            engine.record(&self.method, path_of(&url), status.as_u16());
            if status == StatusCode::UNAUTHORIZED && !challenged && self.own_origin {
                challenged = true;
                let challenge = header_str(response.headers(), header::WWW_AUTHENTICATE)
                    .as_deref()
                    .and_then(parse_challenge);
                if engine
                    .answer_challenge(self.reference, &self.scopes, challenge)
                    .await?
                {
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(OciError::Unauthorized {
                    registry: self.reference.registry().to_owned(),
                    repository: self.reference.repository().to_owned(),
                    action: action(&self.scopes),
                    status: status.as_u16(),
                    detail: error_detail(response).await,
                });
            }
            if status.is_success() || matches!(self.payload, Payload::Stream(_)) {
                return Ok(response);
            }
            let failure = Failure::Status {
                status,
                headers: response.headers(),
                body: None,
            };
            match attempts.after(replay, failure) {
                Decision::Retry(wait) => {
                    tracing::debug!("{} {url} answered {status}; retrying", self.method);
                    engine.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
                Decision::TooLong(wait) => {
                    return Err(OciError::Status {
                        method: self.method.to_string(),
                        url: url.to_string(),
                        status: status.as_u16(),
                        detail: format!(
                            "it asks to wait {} s, longer than gantry waits ({} s)",
                            wait.as_secs(),
                            engine.options.retry.max_wait.as_secs()
                        ),
                    });
                }
                Decision::Stop => return Ok(response),
            }
        }
    }

    /// The request for one attempt: headers, the body (a stream only once), credentials when the
    /// URL is the registry's own.
    fn build(&mut self, url: &Url) -> Result<RequestBuilder> {
        let engine = self.engine;
        let mut request = engine
            .http
            .request(self.method.clone(), url.clone())
            .headers(self.headers.clone());
        match &mut self.payload {
            Payload::Empty => {}
            Payload::Bytes(bytes) => {
                engine.count_up(bytes.len() as u64);
                request = request.body(bytes.clone());
            }
            Payload::Stream(body) => {
                let body = body.take().ok_or_else(|| {
                    OciError::Protocol(format!(
                        "{} {url}: a streamed body cannot be sent twice",
                        self.method
                    ))
                })?;
                request = request.body(body);
            }
        }
        if self.own_origin {
            request = engine.authorize(request, self.reference, &self.scopes)?;
        }
        Ok(request)
    }

    /// On loopback, a registry that answers HTTPS with plain HTTP is spoken to over plain HTTP
    /// from now on (as docker and crane do); `true` when `url` was switched.
    fn switch_to_plain_http(&self, url: &mut Url, error: &reqwest::Error) -> bool {
        let host = self.reference.api_host();
        if url.scheme() != "https"
            || !answered_in_plain_http(error)
            || !is_loopback_host(host)
            || !self.own_origin
            || matches!(self.payload, Payload::Stream(_))
        {
            return false;
        }
        if !lock(&self.engine.plain_loopback).insert(host.to_owned()) {
            return false;
        }
        tracing::debug!("{host} does not speak HTTPS; using plain HTTP on loopback");
        url.set_scheme("http").is_ok()
    }

    /// Sends, and turns anything but a success into an error (404: `NotFound`).
    pub(crate) async fn ok(self) -> Result<Response> {
        let what = self.describe();
        let method = self.method.clone();
        let response = self.send().await?;
        let url = response.url().to_string();
        check_status(response, &method, &url, &what).await
    }

    /// Like [`Self::ok`], with `None` for 404.
    pub(crate) async fn found(self) -> Result<Option<Response>> {
        match self.ok().await {
            Ok(response) => Ok(Some(response)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn describe(&self) -> String {
        self.what.clone().unwrap_or_else(|| self.url_text())
    }

    fn url_text(&self) -> String {
        self.url
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

/// Whether the TLS handshake failed because the server answered in plain HTTP (rustls reads the
/// `HTTP/1.1 400` as a record of an invalid content type).
fn answered_in_plain_http(error: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if text.contains("InvalidContentType") || text.contains("corrupt message") {
            return true;
        }
        source = e.source();
    }
    false
}

/// A transport failure, with a way out when an HTTPS request met a plain-HTTP server.
fn transport_error(method: &Method, url: &Url, error: &reqwest::Error) -> OciError {
    if answered_in_plain_http(error) && url.scheme() == "https" {
        return OciError::PlainHttp {
            host: url
                .host_str()
                .map(|h| match url.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_owned(),
                })
                .unwrap_or_default(),
        };
    }
    OciError::Http {
        method: method.to_string(),
        url: url.to_string(),
        reason: gantry_http::explain(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credentials;
    use crate::engine::ClientOptions;

    #[test]
    fn a_followed_url_keeps_https_and_credentials_stay_home() {
        let engine =
            Engine::new(ClientOptions::default(), Credentials::anonymous()).expect("engine");
        let image: Reference = "registry.example/team/app".parse().expect("reference");
        let relative = engine.follow(Method::GET, &image, "/v2/team/app/tags/list?last=a");
        assert!(relative.own_origin);
        assert_eq!(
            relative
                .url
                .as_ref()
                .map(ToString::to_string)
                .ok()
                .as_deref(),
            Some("https://registry.example/v2/team/app/tags/list?last=a")
        );
        let storage = engine.follow(Method::PUT, &image, "https://storage.example/upload?sig=x");
        assert!(!storage.own_origin, "another origin gets no credentials");
        let downgrade = engine.follow(Method::PUT, &image, "http://registry.example/upload");
        let err = downgrade.url.expect_err("refused");
        assert!(err.to_string().contains("refusing to leave HTTPS"), "{err}");
    }

    #[tokio::test]
    async fn https_to_a_plain_http_server_names_the_flag() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = [0u8; 512];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let url = Url::parse(&format!("https://{addr}/v2/")).expect("url");
        let error = reqwest::Client::new()
            .get(url.clone())
            .send()
            .await
            .expect_err("not TLS");
        let err = transport_error(&Method::GET, &url, &error);
        assert!(
            matches!(&err, OciError::PlainHttp { host } if *host == addr.to_string()),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("--insecure-registry {addr}")),
            "{err}"
        );
    }
}
