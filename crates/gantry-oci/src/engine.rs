//! The request engine under every registry operation: auth challenges (basic, bearer tokens
//! cached per scope), retries with jittered exponential back-off honouring `Retry-After`, and the
//! accounting of requests and bytes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use gantry_secret::Secret;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use crate::auth::{Challenge, Credential, parse_challenge};
use crate::client::{Body, Client, RequestRecord, Scope, lock};
use crate::digest::Digest;
use crate::error::{OciError, Result};
use crate::manifest::ACCEPT;
use crate::reference::Reference;

impl Client {
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
                    action: action(scopes),
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

    /// [`Self::send`] with no extra headers and no body.
    pub(crate) async fn send_empty(
        &self,
        reference: &Reference,
        scopes: &[Scope],
        method: Method,
        url: Url,
    ) -> Result<Response> {
        self.send(
            reference,
            scopes,
            method,
            url,
            HeaderMap::new(),
            Body::default(),
        )
        .await
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
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
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
                action: action(scopes),
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
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
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

/// What a request with `scopes` tried to do, for an error message.
fn action(scopes: &[Scope]) -> &'static str {
    if scopes.iter().any(|s| s.push) {
        "push to"
    } else {
        "pull from"
    }
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
