//! The one request path: every call is built here, counted, bounded in size and retried by
//! gantry-http's GitHub policy.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use gantry_http::retry::{Decision, Failure, Policy, Replay};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt as _;
use serde::Deserialize;
use serde_json::Value;

use crate::{GitHub, GitHubError};

/// The most a JSON answer may be (a page of 100 workflow runs is about 1 MiB).
pub(crate) const JSON_LIMIT: usize = 8 * 1024 * 1024;

/// The primary rate limit, as the last answer's `x-ratelimit-*` headers said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left in the window.
    pub remaining: u64,
    /// When the window resets (Unix seconds).
    pub reset: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Patch,
}

impl Method {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }
}

/// How much of an answer's body is kept.
#[derive(Clone, Copy)]
pub(crate) enum Keep {
    /// All of it, up to this many bytes; more is an error.
    Whole(usize),
    /// The last this many bytes (a log's tail); the rest is read and dropped.
    Tail(usize),
}

/// One request.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<&'a Value>,
    pub(crate) headers: Vec<(HeaderName, String)>,
    pub(crate) keep: Keep,
    /// Whether sending it twice is harmless (reads are; a dispatch is not).
    pub(crate) replay: Replay,
}

impl<'a> Call<'a> {
    pub(crate) fn get(path: String) -> Self {
        Self {
            method: Method::Get,
            path,
            body: None,
            headers: Vec::new(),
            keep: Keep::Whole(JSON_LIMIT),
            replay: Replay::Safe,
        }
    }

    pub(crate) fn post(path: String, body: &'a Value) -> Self {
        Self {
            method: Method::Post,
            path,
            body: Some(body),
            headers: Vec::new(),
            keep: Keep::Whole(JSON_LIMIT),
            replay: Replay::Unsafe,
        }
    }

    /// A PUT of `body`: never sent twice by the retry policy (a file write may have landed).
    pub(crate) fn put(path: String, body: &'a Value) -> Self {
        Self {
            method: Method::Put,
            ..Self::post(path, body)
        }
    }

    /// A PATCH of `body`: never sent twice by the retry policy.
    pub(crate) fn patch(path: String, body: &'a Value) -> Self {
        Self {
            method: Method::Patch,
            ..Self::post(path, body)
        }
    }

    /// A POST without a body (cancel).
    pub(crate) fn post_empty(path: String) -> Self {
        Self {
            body: None,
            ..Self::get(path)
        }
        .method(Method::Post)
    }

    fn method(mut self, method: Method) -> Self {
        self.method = method;
        self.replay = match method {
            Method::Get => Replay::Safe,
            Method::Post | Method::Put | Method::Patch => Replay::Unsafe,
        };
        self
    }

    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn keep(mut self, keep: Keep) -> Self {
        self.keep = keep;
        self
    }
}

/// An answer: status, headers and the body kept.
pub(crate) struct Answer {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl GitHub {
    pub(crate) async fn get(&self, path: &str) -> Result<Answer, GitHubError> {
        self.call(Call::get(path.to_owned())).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Answer, GitHubError> {
        self.call(Call::post(path.to_owned(), body)).await
    }

    /// Sends `call`, retrying by the policy; a non-success answer the policy does not retry is
    /// returned for the caller to judge.
    pub(crate) async fn call(&self, call: Call<'_>) -> Result<Answer, GitHubError> {
        let policy = Policy {
            max_wait: self.max_wait,
            ..Policy::github()
        };
        let method = call.method.name();
        let mut attempts = policy.attempts();
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let answer = match self.send_once(&call).await {
                Ok(answer) => answer,
                Err(GitHubError::Transport {
                    method,
                    path,
                    reason,
                    sent,
                }) => {
                    let failure = if sent {
                        Failure::Interrupted
                    } else {
                        Failure::Connect
                    };
                    match attempts.after(call.replay, failure) {
                        Decision::Retry(wait) => {
                            tracing::info!(
                                "{method} {path}: {reason}; waiting {} ms before attempt {}",
                                wait.as_millis(),
                                attempts.number()
                            );
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        Decision::Stop | Decision::TooLong(_) => {
                            return Err(GitHubError::Transport {
                                method,
                                path,
                                reason,
                                sent,
                            });
                        }
                    }
                }
                Err(other) => return Err(other),
            };
            if answer.status != StatusCode::NOT_MODIFIED {
                self.counted.fetch_add(1, Ordering::Relaxed);
            }
            self.note_rate_limit(&answer.headers);
            tracing::debug!("{method} {} -> {}", call.path, answer.status);
            if answer.status.is_success() || answer.status.is_redirection() {
                return Ok(answer);
            }
            let text = String::from_utf8_lossy(&answer.body);
            let failure = Failure::Status {
                status: answer.status,
                headers: &answer.headers,
                body: Some(&text),
            };
            match attempts.after(call.replay, failure) {
                Decision::Stop => return Ok(answer),
                Decision::TooLong(wait) => {
                    return Err(GitHubError::RateLimited {
                        method,
                        path: call.path.clone(),
                        wait,
                        limit: self.max_wait,
                    });
                }
                Decision::Retry(wait) => {
                    tracing::info!(
                        "{method} {} answered {}; waiting {} s before attempt {}",
                        call.path,
                        answer.status,
                        wait.as_secs(),
                        attempts.number()
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Answer, GitHubError> {
        let method = call.method.name();
        let transport = |error: &(dyn std::error::Error + 'static)| GitHubError::Transport {
            method,
            path: call.path.clone(),
            reason: one_line(error),
            sent: was_sent(error),
        };
        let mut builder = http::Request::builder()
            .method(match call.method {
                Method::Get => http::Method::GET,
                Method::Post => http::Method::POST,
                Method::Put => http::Method::PUT,
                Method::Patch => http::Method::PATCH,
            })
            .uri(call.path.as_str());
        for (name, value) in &call.headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| GitHubError::Invalid(format!("header {name} is not valid")))?;
            builder = builder.header(name, value);
        }
        let request = self
            .octo
            .build_request(builder, call.body)
            .map_err(|e| transport(&e))?;
        let response = self
            .octo
            .execute(request)
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        let mut kept: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| transport(&e))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            kept.extend_from_slice(&data);
            match call.keep {
                Keep::Whole(limit) if kept.len() > limit => {
                    return Err(GitHubError::TooLarge {
                        method,
                        path: call.path.clone(),
                        limit,
                    });
                }
                Keep::Tail(limit) if kept.len() > 2 * limit => {
                    kept.drain(..kept.len() - limit);
                }
                Keep::Whole(_) | Keep::Tail(_) => {}
            }
        }
        if let Keep::Tail(limit) = call.keep
            && kept.len() > limit
        {
            kept.drain(..kept.len() - limit);
        }
        Ok(Answer {
            method,
            path: call.path.clone(),
            status,
            headers,
            body: Bytes::from(kept),
        })
    }

    fn note_rate_limit(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(remaining), Some(reset)) =
            (number("x-ratelimit-remaining"), number("x-ratelimit-reset"))
        {
            *self
                .rate
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(RateLimit { remaining, reset });
        }
    }
}

/// An error and its causes on one line, each said once.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(reqwest) = e.downcast_ref::<reqwest::Error>() {
            parts.push(gantry_http::explain(reqwest));
            break;
        }
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Whether a failed request may have reached the server: only a connection that never opened
/// proves it did not.
fn was_sent(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(reqwest) = e.downcast_ref::<reqwest::Error>() {
            return !reqwest.is_connect() && !reqwest.is_builder();
        }
        source = e.source();
    }
    true
}

impl Answer {
    pub(crate) fn expect(&self, wanted: &[StatusCode]) -> Result<(), GitHubError> {
        if wanted.contains(&self.status) {
            return Ok(());
        }
        Err(GitHubError::Api {
            method: self.method,
            path: self.path.clone(),
            status: self.status.as_u16(),
            expected: wanted
                .iter()
                .map(|s| s.as_u16().to_string())
                .collect::<Vec<_>>()
                .join(" or "),
            message: self.message(),
        })
    }

    /// GitHub's `message`, else the start of the body.
    pub(crate) fn message(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(2000).collect());
        if message.is_empty() {
            "(no message)".to_owned()
        } else {
            message
        }
    }

    pub(crate) fn json<T: for<'de> Deserialize<'de>>(
        &self,
        expected: &'static str,
    ) -> Result<T, GitHubError> {
        serde_json::from_slice(&self.body).map_err(|e| GitHubError::Decode {
            method: self.method,
            path: self.path.clone(),
            status: self.status.as_u16(),
            expected,
            reason: e.to_string(),
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
