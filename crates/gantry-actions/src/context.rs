//! The GitHub context a tool runs in, and the OIDC token request.

use std::time::Duration;

use serde::Deserialize;

use crate::env;
use gantry_secret::Secret;

/// What the runner tells a step about its run. Every field is optional: outside Actions (Azure
/// DevOps, GitLab, a laptop) they are all `None`, and tools that need one say which.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitHubContext {
    /// `owner/name`.
    pub repository: Option<String>,
    /// The commit the run is for (`GITHUB_SHA`).
    pub sha: Option<String>,
    /// The ref the run is for (`GITHUB_REF`).
    pub git_ref: Option<String>,
    /// The run's id (`GITHUB_RUN_ID`).
    pub run_id: Option<u64>,
    /// The attempt of the run (`GITHUB_RUN_ATTEMPT`).
    pub run_attempt: Option<u32>,
    /// `https://github.com` or the GHES host (`GITHUB_SERVER_URL`).
    pub server_url: Option<String>,
    /// The REST API (`GITHUB_API_URL`).
    pub api_url: Option<String>,
    /// Who started the workflow (`GITHUB_ACTOR`).
    pub actor: Option<String>,
    /// Who started this attempt (`GITHUB_TRIGGERING_ACTOR`).
    pub triggering_actor: Option<String>,
    /// The workflow file and ref (`GITHUB_WORKFLOW_REF`).
    pub workflow_ref: Option<String>,
    /// The event that triggered the run (`GITHUB_EVENT_NAME`).
    pub event_name: Option<String>,
    oidc: Option<(String, Secret)>,
}

impl GitHubContext {
    /// Reads the context through `lookup` (normally the process environment); empty means unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Self {
            repository: get(env::GITHUB_REPOSITORY),
            sha: get(env::GITHUB_SHA),
            git_ref: get(env::GITHUB_REF),
            run_id: get(env::GITHUB_RUN_ID).and_then(|v| v.parse().ok()),
            run_attempt: get(env::GITHUB_RUN_ATTEMPT).and_then(|v| v.parse().ok()),
            server_url: get(env::GITHUB_SERVER_URL),
            api_url: get(env::GITHUB_API_URL),
            actor: get(env::GITHUB_ACTOR),
            triggering_actor: get(env::GITHUB_TRIGGERING_ACTOR),
            workflow_ref: get(env::GITHUB_WORKFLOW_REF),
            event_name: get(env::GITHUB_EVENT_NAME),
            oidc: get(env::ACTIONS_ID_TOKEN_REQUEST_URL)
                .zip(get(env::ACTIONS_ID_TOKEN_REQUEST_TOKEN).map(Secret::new)),
        }
    }

    /// Reads the context from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `owner` and `name` of the repository.
    pub fn owner_and_name(&self) -> Option<(&str, &str)> {
        self.repository.as_deref()?.split_once('/')
    }

    /// The URL of this run's page.
    pub fn run_url(&self) -> Option<String> {
        Some(format!(
            "{}/{}/actions/runs/{}",
            self.server_url.as_deref()?.trim_end_matches('/'),
            self.repository.as_deref()?,
            self.run_id?
        ))
    }

    /// Whether an OIDC token can be requested (the job has `id-token: write`).
    pub fn has_oidc(&self) -> bool {
        self.oidc.is_some()
    }

    /// Requests a GitHub Actions OIDC token for `audience` (`sigstore` for Fulcio).
    pub async fn request_id_token(&self, audience: &str) -> Result<Secret, OidcError> {
        let (url, bearer) = self.oidc.as_ref().ok_or(OidcError::Unavailable)?;
        let mut url = reqwest::Url::parse(url).map_err(|e| OidcError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        url.query_pairs_mut().append_pair("audience", audience);
        // gantry-http's client, like every other: in a scratch image the roots come from the
        // bundle it ships (or are compiled in), and names resolve without glibc.
        let roots = gantry_http::roots(&[]).map_err(OidcError::Setup)?;
        let client =
            gantry_http::client(&roots, Duration::from_secs(30)).map_err(OidcError::Setup)?;
        let response = client
            .get(url)
            .bearer_auth(bearer.expose())
            .header(reqwest::header::ACCEPT, "application/json; api-version=2.0")
            .send()
            .await
            .map_err(OidcError::Request)?;
        let status = response.status();
        if !status.is_success() {
            return Err(OidcError::Status {
                status: status.as_u16(),
            });
        }
        let body: TokenResponse = response.json().await.map_err(OidcError::Request)?;
        match body.value.filter(|v| !v.is_empty()) {
            Some(value) => Ok(Secret::new(value)),
            None => Err(OidcError::NoValue),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    value: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum OidcError {
    #[error(
        "no GitHub OIDC token available: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set\nhint: grant `permissions: id-token: write` to the job, or pass an identity token explicitly"
    )]
    Unavailable,
    #[error("ACTIONS_ID_TOKEN_REQUEST_URL {url:?} is not a URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("setting up the HTTP client for the OIDC token request")]
    Setup(#[source] gantry_http::HttpError),
    #[error("requesting the OIDC token")]
    Request(#[source] reqwest::Error),
    #[error(
        "the OIDC token endpoint answered HTTP {status}, expected 200 with {{\"value\": \"<jwt>\"}}"
    )]
    Status { status: u16 },
    #[error("the OIDC token endpoint answered 200 without a \"value\"")]
    NoValue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn context(vars: &[(&str, &str)]) -> GitHubContext {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        GitHubContext::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn reads_the_typed_context() {
        let ctx = context(&[
            ("GITHUB_REPOSITORY", "acme/billing"),
            ("GITHUB_SHA", "0123abcd"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_API_URL", "https://api.github.com"),
            ("GITHUB_ACTOR", "octocat"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/billing/.github/workflows/ci.yml@refs/heads/main",
            ),
            ("GITHUB_EVENT_NAME", "push"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", ""),
        ]);
        assert_eq!(ctx.owner_and_name(), Some(("acme", "billing")));
        assert_eq!(ctx.run_id, Some(42));
        assert_eq!(ctx.run_attempt, Some(2));
        assert_eq!(
            ctx.run_url().as_deref(),
            Some("https://github.com/acme/billing/actions/runs/42")
        );
        assert!(!ctx.has_oidc(), "an empty URL is no OIDC");
        assert_eq!(
            GitHubContext::from_lookup(|_| None),
            GitHubContext::default()
        );
    }

    #[tokio::test]
    async fn requests_an_id_token_with_audience_and_bearer() {
        use axum::extract::{Query, Request};
        let app = axum::Router::new().route(
            "/token",
            axum::routing::get(
                |Query(q): Query<HashMap<String, String>>, req: Request| async move {
                    let auth = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok());
                    if auth != Some("Bearer runner-bearer")
                        || q.get("api-version").map(String::as_str) != Some("2.0")
                    {
                        return axum::Json(serde_json::json!({}));
                    }
                    axum::Json(serde_json::json!({ "value": format!("jwt-for-{}", q["audience"]) }))
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}/token?api-version=2.0");
        let ctx = context(&[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-bearer"),
        ]);
        let token = ctx.request_id_token("sigstore").await.expect("token");
        assert_eq!(token.expose(), "jwt-for-sigstore");

        let wrong = context(&[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "other"),
        ]);
        assert!(matches!(
            wrong.request_id_token("sigstore").await,
            Err(OidcError::NoValue)
        ));
        let none = context(&[]);
        let err = none
            .request_id_token("sigstore")
            .await
            .expect_err("unavailable");
        assert!(err.to_string().contains("id-token: write"), "{err}");
    }
}
