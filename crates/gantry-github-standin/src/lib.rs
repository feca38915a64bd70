//! A stand-in for the GitHub REST endpoints gantry uses: repository roles, team membership,
//! deployments and their statuses, commit statuses, and GitHub Actions (workflows that a dispatch
//! starts, runs moving through their states as time passes, jobs, logs, a verdict artifact,
//! cancellation, concurrency groups).
//!
//! It exists because GitHub cannot run on this machine. The tests run it behind prism with
//! GitHub's own OpenAPI description (`gantry-testkit`'s `GitHubFake`), which checks every request
//! gantry sends and every response this stand-in returns; `gantry demo` runs it directly as the
//! local GitHub of the integration step. The stand-in refuses requests without its token, and can
//! answer the next requests with a rate limit.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

mod actions;
mod contents;
mod pulls;

pub use actions::{FakeWorkflow, RunPlan, RunRecord};
pub use contents::{GitCommit, blob_sha};
pub use pulls::Pull;

/// The primary rate limit the stand-in reports (an installation token's).
const RATE_LIMIT: usize = 5000;

/// The token the stand-in accepts.
pub const TOKEN: &str = "ghs_fake-installation-token-0123456789";

/// How the next requests are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// 429 with `retry-after: 1`.
    RetryAfter,
    /// 403 with `x-ratelimit-remaining: 0` and a reset one second ahead.
    PrimaryExhausted,
}

#[derive(Default)]
struct FakeState {
    /// (`owner/repo`, user) → (permission, `role_name`).
    permissions: HashMap<(String, String), (String, String)>,
    /// (org, team) → (user, state).
    teams: HashMap<(String, String), Vec<(String, String)>>,
    deployments: Vec<Value>,
    statuses: HashMap<u64, Vec<Value>>,
    throttle: Vec<Throttle>,
    /// "METHOD path" of every request the fake saw.
    requests: Vec<String>,
    /// "METHOD path" and the status the fake answered, of every request.
    answers: Vec<(String, u16)>,
    next_id: u64,
    actions: actions::ActionsState,
    git: contents::GitState,
    pulls: pulls::PullState,
    graphql: Vec<(Value, Value)>,
}

type Shared = Arc<Mutex<FakeState>>;

/// The stand-in's state, shared by its handlers and its owner.
#[derive(Clone, Default)]
pub struct StandIn {
    state: Shared,
}

impl StandIn {
    /// A stand-in with nothing in it yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the stand-in its own base URL (`http://host:port`): logs and artifacts are
    /// redirected to its storage there.
    pub fn set_own_url(&self, url: &str) {
        url.trim_end_matches('/')
            .clone_into(&mut self.state().actions.upstream);
    }

    /// Whether each request to the log and artifact storage carried an `Authorization` header
    /// (GitHub's token must never reach the storage).
    pub fn storage_authorization(&self) -> Vec<bool> {
        self.state().actions.storage_auth.clone()
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }

    /// Gives `user` a role in `repository` (`owner/name`): `role_name` as GitHub reports it and
    /// the legacy `permission` (`admin`, `write`, `read`, `none`).
    pub fn set_permission(&self, repository: &str, user: &str, permission: &str, role_name: &str) {
        self.state().permissions.insert(
            (repository.to_owned(), user.to_owned()),
            (permission.to_owned(), role_name.to_owned()),
        );
    }

    /// Makes `user` a member of `org/team` in `state` (`active` or `pending`).
    pub fn add_team_member(&self, org: &str, team: &str, user: &str, state: &str) {
        self.state()
            .teams
            .entry((org.to_owned(), team.to_owned()))
            .or_default()
            .push((user.to_owned(), state.to_owned()));
    }

    /// Refuses the next requests, one per entry, with these rate limits.
    pub fn throttle(&self, throttles: &[Throttle]) {
        self.state().throttle.extend_from_slice(throttles);
    }

    /// The deployments recorded so far, oldest first.
    pub fn deployments(&self) -> Vec<Value> {
        self.state().deployments.clone()
    }

    /// Commits `files` (`path`, bytes) on `branch` of `repository` (`owner/name`), as someone
    /// pushing to it would.
    pub fn commit_files(
        &self,
        repository: &str,
        branch: &str,
        files: &[(&str, &[u8])],
        message: &str,
    ) -> GitCommit {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, b)| ((*p).to_owned(), b.to_vec()))
            .collect();
        let someone = ("someone".to_owned(), "someone@example.com".to_owned());
        self.state().git.commit(
            repository,
            branch,
            &files,
            message,
            someone.clone(),
            someone,
        )
    }

    /// The file at `path` on `branch`.
    pub fn file(&self, repository: &str, branch: &str, path: &str) -> Option<Vec<u8>> {
        self.state().git.file(repository, branch, path)
    }

    /// The commits of `branch`, newest first.
    pub fn log(&self, repository: &str, branch: &str) -> Vec<GitCommit> {
        self.state().git.log(repository, branch)
    }

    /// The pull requests of `repository`, oldest first.
    pub fn pulls(&self, repository: &str) -> Vec<Pull> {
        self.state()
            .pulls
            .pulls
            .iter()
            .filter(|p| p.repository == repository)
            .cloned()
            .collect()
    }

    /// Every GraphQL request and the answer it got, oldest first.
    pub fn graphql(&self) -> Vec<(Value, Value)> {
        self.state().graphql.clone()
    }

    /// The head commit of `branch`.
    pub fn head(&self, repository: &str, branch: &str) -> Option<String> {
        self.state().git.head(repository, branch)
    }

    /// The statuses recorded for a deployment, oldest first.
    pub fn statuses(&self, deployment_id: u64) -> Vec<Value> {
        self.state()
            .statuses
            .get(&deployment_id)
            .cloned()
            .unwrap_or_default()
    }

    /// `METHOD path` of every request that reached the fake (prism refuses invalid ones first).
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// `METHOD path` and the answer's status, of every request the fake answered.
    pub fn answers(&self) -> Vec<(String, u16)> {
        self.state().answers.clone()
    }

    /// Every endpoint, for serving directly (the demo).
    pub fn router(&self) -> Router {
        api(self.state.clone()).merge(redirecting(self.state.clone()))
    }

    /// Every endpoint but the two GitHub answers with a 302 to its storage (for prism, which
    /// cannot pass those on), and the storage itself.
    pub fn api_router(&self) -> Router {
        api(self.state.clone())
    }

    /// The two reads GitHub answers with a 302 to its storage (a job's log, an artifact's zip),
    /// with the same token check.
    pub fn redirecting_router(&self) -> Router {
        redirecting(self.state.clone())
    }
}

/// The two reads GitHub answers with a 302 to its storage, and GraphQL (which GitHub's OpenAPI
/// description does not describe: the tests check it against GitHub's GraphQL schema).
fn redirecting(state: Shared) -> Router {
    Router::new()
        .route("/graphql", post(pulls::graphql))
        .route(
            "/repos/{owner}/{repo}/actions/jobs/{id}/logs",
            get(actions::job_logs),
        )
        .route(
            "/repos/{owner}/{repo}/actions/artifacts/{id}/{format}",
            get(actions::artifact_download),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gatekeeper,
        ))
        .with_state(state)
}

/// Git references, commits and trees, and pull requests.
fn git_and_pulls() -> Router<Shared> {
    Router::new()
        .route("/repos/{owner}/{repo}/git/ref/{*name}", get(pulls::get_ref))
        .route(
            "/repos/{owner}/{repo}/git/commits/{sha}",
            get(contents::get_commit),
        )
        .route(
            "/repos/{owner}/{repo}/git/commits",
            post(contents::create_commit),
        )
        .route(
            "/repos/{owner}/{repo}/git/trees",
            post(contents::create_tree),
        )
        .route("/repos/{owner}/{repo}/git/refs", post(pulls::create_ref))
        .route(
            "/repos/{owner}/{repo}/git/refs/{*name}",
            axum::routing::patch(pulls::update_ref),
        )
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(pulls::list_pulls).post(pulls::create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}",
            axum::routing::patch(pulls::update_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
            post(pulls::request_reviewers),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/labels",
            post(pulls::add_labels),
        )
}

fn api(state: Shared) -> Router {
    Router::new()
        .route(
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
            get(permission),
        )
        .route(
            "/orgs/{org}/teams/{team}/memberships/{username}",
            get(membership),
        )
        .route(
            "/repos/{owner}/{repo}/deployments",
            post(create_deployment).get(list_deployments),
        )
        .route(
            "/repos/{owner}/{repo}/deployments/{id}/statuses",
            post(create_status).get(list_statuses),
        )
        .route(
            "/repos/{owner}/{repo}/contents/{*path}",
            get(contents::get_file).put(contents::put_file),
        )
        .route("/repos/{owner}/{repo}/commits", get(contents::list_commits))
        .merge(git_and_pulls())
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
            post(actions::dispatch_workflow),
        )
        .route(
            "/repos/{owner}/{repo}/dispatches",
            post(actions::repository_dispatch),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/runs",
            get(actions::workflow_runs),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs",
            get(actions::repository_runs),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{id}",
            get(actions::get_run),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{id}/cancel",
            post(actions::cancel_run),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{id}/concurrency_groups",
            get(actions::concurrency_groups),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{id}/attempts/{attempt}/jobs",
            get(actions::run_jobs),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{id}/artifacts",
            get(actions::run_artifacts),
        )
        .route(
            "/repos/{owner}/{repo}/statuses/{sha}",
            post(actions::create_commit_status),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gatekeeper,
        ))
        // Log and artifact storage: reached by a redirect, without the token (as GitHub's
        // signed storage URLs are).
        .merge(
            Router::new()
                .route("/_storage/logs/{id}", get(actions::stored_log))
                .route("/_storage/artifacts/{id}", get(actions::stored_artifact)),
        )
        .with_state(state)
}

/// Records the request, checks the token, applies a pending throttle.
async fn gatekeeper(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let throttle = {
        let mut state = state.lock().expect("fake state");
        let line = format!("{} {}", request.method(), request.uri());
        state.requests.push(line);
        (!state.throttle.is_empty()).then(|| state.throttle.remove(0))
    };
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "Requires authentication");
    }
    let line = format!("{} {}", request.method(), request.uri());
    match throttle {
        None => {
            let mut response = next.run(request).await;
            let status = response.status().as_u16();
            let used = {
                let mut state = state.lock().expect("fake state");
                state.answers.push((line, status));
                // As GitHub counts: a 304 is not charged to the primary limit.
                state.answers.iter().filter(|(_, s)| *s != 304).count()
            };
            // Every answer carries the primary rate limit, as GitHub's do.
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + 3600;
            let headers = response.headers_mut();
            for (name, value) in [
                ("x-ratelimit-limit", RATE_LIMIT.to_string()),
                (
                    "x-ratelimit-remaining",
                    RATE_LIMIT.saturating_sub(used).to_string(),
                ),
                ("x-ratelimit-used", used.to_string()),
                ("x-ratelimit-reset", reset.to_string()),
                ("x-ratelimit-resource", "core".to_owned()),
            ] {
                headers.insert(name, value.parse().expect("header"));
            }
            response
        }
        Some(Throttle::RetryAfter) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded");
            response
                .headers_mut()
                .insert("retry-after", "1".parse().expect("header"));
            response
        }
        Some(Throttle::PrimaryExhausted) => {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + 1;
            let mut response = error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for installation",
            );
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-remaining", "0".parse().expect("header"));
            headers.insert(
                "x-ratelimit-reset",
                reset.to_string().parse().expect("header"),
            );
            response
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

/// A repository as GitHub's `minimal-repository` schema has it (every field it requires).
fn repository(full_name: &str, id: u64) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    let api = format!("https://api.github.com/repos/{full_name}");
    let mut repo = json!({
        "id": id,
        "node_id": format!("R_kgDO{id:08}"),
        "name": name,
        "full_name": full_name,
        "owner": user(owner, 9000 + id),
        "private": true,
        "html_url": format!("https://github.com/{full_name}"),
        "description": null,
        "fork": false,
        "url": api,
    });
    for (key, suffix) in [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ] {
        repo[key] = Value::from(format!("{api}{suffix}"));
    }
    repo
}

fn user(login: &str, id: u64) -> Value {
    // As GitHub writes them: `github-actions%5Bbot%5D` in URLs.
    let escaped = login.replace('[', "%5B").replace(']', "%5D");
    let base = format!("https://api.github.com/users/{escaped}");
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_kgDO{id:08}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": base,
        "html_url": format!("https://github.com/{escaped}"),
        "followers_url": format!("{base}/followers"),
        "following_url": format!("{base}/following{{/other_user}}"),
        "gists_url": format!("{base}/gists{{/gist_id}}"),
        "starred_url": format!("{base}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{base}/subscriptions"),
        "organizations_url": format!("{base}/orgs"),
        "repos_url": format!("{base}/repos"),
        "events_url": format!("{base}/events{{/privacy}}"),
        "received_events_url": format!("{base}/received_events"),
        "type": "User",
        "site_admin": false,
    })
}

fn timestamp() -> String {
    rfc3339(jiff::Timestamp::now())
}

/// RFC 3339 in UTC, whole seconds, as GitHub writes it.
fn rfc3339(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn permission(
    State(state): State<Shared>,
    UrlPath((owner, repo, username)): UrlPath<(String, String, String)>,
) -> Response {
    let found = state
        .lock()
        .expect("fake state")
        .permissions
        .get(&(format!("{owner}/{repo}"), username.clone()))
        .cloned();
    let Some((permission, role_name)) = found else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut collaborator = user(&username, 1001);
    collaborator["role_name"] = Value::from(role_name.clone());
    Json(json!({
        "permission": permission,
        "role_name": role_name,
        "user": collaborator,
    }))
    .into_response()
}

async fn membership(
    State(state): State<Shared>,
    UrlPath((org, team, username)): UrlPath<(String, String, String)>,
) -> Response {
    let found = state
        .lock()
        .expect("fake state")
        .teams
        .get(&(org.clone(), team.clone()))
        .and_then(|members| members.iter().find(|(u, _)| *u == username).cloned());
    let Some((_, member_state)) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    Json(json!({
        "url": format!("https://api.github.com/organizations/1/team/1/memberships/{username}"),
        "role": "member",
        "state": member_state,
    }))
    .into_response()
}

async fn create_deployment(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let mut state = state.lock().expect("fake state");
    state.next_id += 1;
    let id = state.next_id;
    let repo_url = format!("https://api.github.com/repos/{owner}/{repo}");
    let now = timestamp();
    let environment = body["environment"]
        .as_str()
        .unwrap_or("production")
        .to_owned();
    let deployment = json!({
        "url": format!("{repo_url}/deployments/{id}"),
        "id": id,
        "node_id": format!("DE_kwDO{id:08}"),
        "sha": body["ref"],
        "ref": body["ref"],
        "task": body.get("task").cloned().unwrap_or_else(|| json!("deploy")),
        "payload": body.get("payload").cloned().unwrap_or_else(|| json!({})),
        "original_environment": environment,
        "environment": environment,
        "description": body.get("description").cloned().unwrap_or(Value::Null),
        "creator": user("github-actions[bot]", 41_898_282),
        "created_at": now,
        "updated_at": now,
        "statuses_url": format!("{repo_url}/deployments/{id}/statuses"),
        "repository_url": repo_url,
        "transient_environment": body.get("transient_environment").cloned().unwrap_or(json!(false)),
        "production_environment": body.get("production_environment").cloned().unwrap_or(json!(false)),
        "_request": body,
    });
    state.deployments.push(deployment.clone());
    let mut answer = deployment;
    if let Some(map) = answer.as_object_mut() {
        map.remove("_request");
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

#[derive(serde::Deserialize)]
struct ListQuery {
    environment: Option<String>,
    per_page: Option<usize>,
}

async fn list_deployments(State(state): State<Shared>, Query(query): Query<ListQuery>) -> Response {
    let state = state.lock().expect("fake state");
    let list: Vec<Value> = state
        .deployments
        .iter()
        .rev()
        .filter(|d| {
            query
                .environment
                .as_deref()
                .is_none_or(|env| d["environment"] == env)
        })
        .take(query.per_page.unwrap_or(30))
        .map(|d| {
            let mut d = d.clone();
            if let Some(map) = d.as_object_mut() {
                map.remove("_request");
            }
            d
        })
        .collect();
    Json(list).into_response()
}

async fn list_statuses(
    State(state): State<Shared>,
    UrlPath((_owner, _repo, id)): UrlPath<(String, String, u64)>,
) -> Response {
    let state = state.lock().expect("fake state");
    if !state.deployments.iter().any(|d| d["id"] == id) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let list: Vec<Value> = state
        .statuses
        .get(&id)
        .into_iter()
        .flatten()
        .rev()
        .map(|s| {
            let mut s = s.clone();
            if let Some(map) = s.as_object_mut() {
                map.remove("_request");
            }
            s
        })
        .collect();
    Json(list).into_response()
}

async fn create_status(
    State(state): State<Shared>,
    UrlPath((owner, repo, id)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let mut state = state.lock().expect("fake state");
    if !state.deployments.iter().any(|d| d["id"] == id) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    state.next_id += 1;
    let status_id = state.next_id;
    let repo_url = format!("https://api.github.com/repos/{owner}/{repo}");
    let now = timestamp();
    // GitHub answers "" without a log URL, but its description demands a URI here.
    let log_url = body
        .get("log_url")
        .cloned()
        .unwrap_or_else(|| json!(format!("https://github.com/{owner}/{repo}/deployments")));
    let mut status = json!({
        "url": format!("{repo_url}/deployments/{id}/statuses/{status_id}"),
        "id": status_id,
        "node_id": format!("DES_kwDO{status_id:08}"),
        "state": body["state"],
        "creator": user("github-actions[bot]", 41_898_282),
        "description": body.get("description").cloned().unwrap_or_else(|| json!("")),
        "environment": body.get("environment").cloned().unwrap_or_else(|| json!("")),
        "target_url": log_url,
        "log_url": log_url,
        "created_at": now,
        "updated_at": now,
        "deployment_url": format!("{repo_url}/deployments/{id}"),
        "repository_url": repo_url,
    });
    if let Some(url) = body.get("environment_url") {
        status["environment_url"] = url.clone();
    }
    let mut recorded = status.clone();
    recorded["_request"] = body;
    state.statuses.entry(id).or_default().push(recorded);
    (StatusCode::CREATED, Json(status)).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339() {
        let t = jiff::Timestamp::from_second(1_795_305_600 + 3_723).expect("timestamp");
        assert_eq!(super::rfc3339(t), "2026-11-22T01:02:03Z");
    }
}
