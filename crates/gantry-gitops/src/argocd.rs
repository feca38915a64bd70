//! Argo CD over its REST API: trigger the sync of an application (for applications with manual
//! sync) and wait until it runs the commit gantry wrote — its sync revision is that commit, its
//! sync status `Synced`, its health `Healthy` (unless only `Synced` is asked for), and the
//! operation that applied the commit `Succeeded`. A failed or errored operation on the commit,
//! or `Degraded` health at the commit, ends the wait at once; anything else not proven by the
//! deadline is a failure naming what was last seen.
//!
//! Reads: `GET /api/v1/applications/{name}` (with `refresh=normal` on the first read and every
//! few after, so Argo CD looks at the repository now instead of at its next poll, 3 minutes by
//! default). The sync: `POST /api/v1/applications/{name}/sync` with the revision. Bodies are
//! bounded; the token is sent as a bearer token and never printed.

use std::time::{Duration, Instant};

use gantry_secret::Secret;
use serde::Deserialize;
use serde_json::json;

/// The largest application document read (an application with many resources is large).
const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Every how many reads the application is refreshed.
const REFRESH_EVERY: u32 = 6;

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Synced to the commit, the operation succeeded.
    Synced,
    /// That, and healthy.
    SyncedHealthy,
}

/// A wait for one application.
#[derive(Debug, Clone)]
pub struct Wait<'a> {
    /// The application's name.
    pub application: &'a str,
    /// The commit it must run.
    pub revision: &'a str,
    /// What to wait for; `None`: only the sync is asked for.
    pub until: Option<Until>,
    /// Trigger the sync first (applications with manual sync).
    pub sync: bool,
    /// How long to wait in all.
    pub timeout: Duration,
    /// How long between reads.
    pub interval: Duration,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    /// The application runs the commit.
    Ready {
        /// Its health (`Healthy`, or what it was when only `Synced` was asked for).
        health: String,
        /// Reads it took.
        reads: u32,
        /// How long it took.
        elapsed: Duration,
    },
    /// Argo CD says the commit failed: the operation failed, or the application is degraded.
    Failed {
        /// What it said.
        why: String,
    },
    /// The sync was asked for; nothing waited for.
    Requested,
    /// Not proven by the deadline.
    TimedOut {
        /// What was last seen.
        last: String,
    },
}

/// Why a wait could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ArgoError {
    /// The request failed.
    #[error("Argo CD at {server}: {message}")]
    Request {
        /// The server.
        server: String,
        /// What failed.
        message: String,
    },
    /// Argo CD answered with an error.
    #[error("Argo CD at {server}: {what} answered {status}: {message}")]
    Answer {
        /// The server.
        server: String,
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// Argo CD's message.
        message: String,
    },
}

/// An Argo CD server.
pub struct ArgoCd {
    http: reqwest::Client,
    server: String,
    token: Secret,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Application {
    status: Status,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    sync: SyncStatus,
    health: Health,
    operation_state: Option<OperationState>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SyncStatus {
    status: String,
    revision: String,
    revisions: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Health {
    status: String,
    message: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct OperationState {
    phase: String,
    message: String,
    sync_result: Option<SyncResult>,
    operation: Option<Operation>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SyncResult {
    revision: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Operation {
    sync: Option<SyncResult>,
}

impl OperationState {
    /// The revision the operation applies (its result's, else its request's).
    fn revision(&self) -> &str {
        self.sync_result
            .as_ref()
            .map(|r| r.revision.as_str())
            .filter(|r| !r.is_empty())
            .or_else(|| {
                self.operation
                    .as_ref()
                    .and_then(|o| o.sync.as_ref())
                    .map(|s| s.revision.as_str())
            })
            .unwrap_or_default()
    }
}

/// What one read of the application says.
enum Seen {
    Ready(String),
    Failed(String),
    Waiting(String),
}

fn judge(app: &Application, revision: &str, until: Until) -> Seen {
    let status = &app.status;
    let at_revision =
        status.sync.revision == revision || status.sync.revisions.iter().any(|r| r == revision);
    let operation = status
        .operation_state
        .as_ref()
        .filter(|o| o.revision() == revision);
    if let Some(o) = operation
        && matches!(o.phase.as_str(), "Failed" | "Error")
    {
        return Seen::Failed(format!(
            "the sync of {revision} ended {}: {}",
            o.phase, o.message
        ));
    }
    if at_revision && status.health.status == "Degraded" {
        return Seen::Failed(format!(
            "the application is Degraded at {revision}: {}",
            status.health.message
        ));
    }
    let operation_done = operation.is_none_or(|o| o.phase == "Succeeded");
    let healthy = until == Until::Synced || status.health.status == "Healthy";
    let seen = format!(
        "sync {} at {}, health {}, operation {}",
        or_none(&status.sync.status),
        or_none(&status.sync.revision),
        or_none(&status.health.status),
        status.operation_state.as_ref().map_or_else(
            || "none".to_owned(),
            |o| format!("{} for {}", o.phase, or_none(o.revision()))
        )
    );
    if at_revision && status.sync.status == "Synced" && operation_done && healthy {
        Seen::Ready(status.health.status.clone())
    } else {
        Seen::Waiting(seen)
    }
}

fn or_none(text: &str) -> &str {
    if text.is_empty() { "(none)" } else { text }
}

/// An application name as a URL segment.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl ArgoCd {
    /// A client for `server` (`https://argocd.example`), trusting `roots`.
    pub fn new(
        server: &str,
        token: Secret,
        roots: &gantry_http::Roots,
    ) -> Result<Self, gantry_http::HttpError> {
        Ok(Self {
            http: gantry_http::client(roots, Duration::from_secs(30))?,
            server: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn request_error(&self, error: &reqwest::Error) -> ArgoError {
        ArgoError::Request {
            server: self.server.clone(),
            message: gantry_http::explain(error),
        }
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, ArgoError> {
        let mut response = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| self.request_error(&e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.request_error(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > BODY_LIMIT {
                return Err(ArgoError::Answer {
                    server: self.server.clone(),
                    what: what.to_owned(),
                    status: status.as_u16(),
                    message: format!("an answer over {BODY_LIMIT} bytes"),
                });
            }
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            return Err(ArgoError::Answer {
                server: self.server.clone(),
                what: what.to_owned(),
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }

    async fn application(&self, name: &str, refresh: bool) -> Result<Application, ArgoError> {
        let mut url = format!("{}/api/v1/applications/{}", self.server, segment(name));
        if refresh {
            url.push_str("?refresh=normal");
        }
        let what = format!("GET application {name}");
        let body = self.send(&what, self.http.get(url)).await?;
        serde_json::from_slice(&body).map_err(|e| ArgoError::Answer {
            server: self.server.clone(),
            what,
            status: 200,
            message: format!("not an application: {e}"),
        })
    }

    /// Asks Argo CD to sync `name` to `revision`.
    pub async fn sync(&self, name: &str, revision: &str) -> Result<(), ArgoError> {
        let url = format!("{}/api/v1/applications/{}/sync", self.server, segment(name));
        let body = json!({"name": name, "revision": revision, "prune": false, "dryRun": false});
        self.send(&format!("sync of {name}"), self.http.post(url).json(&body))
            .await
            .map(|_| ())
    }

    /// Triggers the sync when asked, then waits as `wait` says.
    pub async fn wait(&self, wait: &Wait<'_>) -> Result<Deployed, ArgoError> {
        let started = Instant::now();
        if wait.sync {
            self.sync(wait.application, wait.revision).await?;
        }
        let Some(until) = wait.until else {
            return Ok(Deployed::Requested);
        };
        let mut reads = 0;
        loop {
            let app = self
                .application(wait.application, reads % REFRESH_EVERY == 0)
                .await?;
            reads += 1;
            match judge(&app, wait.revision, until) {
                Seen::Ready(health) => {
                    return Ok(Deployed::Ready {
                        health,
                        reads,
                        elapsed: started.elapsed(),
                    });
                }
                Seen::Failed(why) => return Ok(Deployed::Failed { why }),
                Seen::Waiting(last) => {
                    if started.elapsed() + wait.interval > wait.timeout {
                        return Ok(Deployed::TimedOut { last });
                    }
                }
            }
            tokio::time::sleep(wait.interval).await;
        }
    }
}

/// An application to sync and wait for, as a policy names it.
pub struct Deployer {
    /// The server's client.
    pub client: ArgoCd,
    /// The application.
    pub application: String,
    /// What to wait for (`None`: only the sync).
    pub until: Option<Until>,
    /// Trigger the sync.
    pub sync: bool,
    /// How long to wait.
    pub timeout: Duration,
    /// How often to read.
    pub interval: Duration,
}

impl Deployer {
    /// Syncs (when asked) and waits for the application to run `revision`.
    pub async fn deploy(&self, revision: &str) -> Result<Deployed, ArgoError> {
        self.client
            .wait(&Wait {
                application: &self.application,
                revision,
                until: self.until,
                sync: self.sync,
                timeout: self.timeout,
                interval: self.interval,
            })
            .await
    }
}
