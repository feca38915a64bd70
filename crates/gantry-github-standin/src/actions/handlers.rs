//! The HTTP side of the Actions stand-in: the handlers, and the JSON shapes GitHub's description
//! gives workflow runs, jobs, artifacts and commit statuses.

use std::io::Write as _;
use std::time::Instant;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::{Shared, error, repository, rfc3339, user};
use super::{FakeWorkflow, Run, create_run};

fn run_json(run: &Run, now: Instant) -> Value {
    let current = run.now(now);
    let api = format!(
        "https://api.github.com/repos/{}/actions/runs/{}",
        run.repository, run.id
    );
    let created = rfc3339(run.created_at);
    let repo = repository(&run.repository, 77);
    json!({
        "id": run.id,
        "name": run.name,
        "node_id": format!("WFR_kwLO{:08}", run.id),
        "check_suite_id": run.id + 1,
        "check_suite_node_id": format!("CS_kwDO{:08}", run.id + 1),
        "head_branch": "main",
        "head_sha": run.head_sha,
        "path": run.path,
        "display_title": run.display_title,
        "run_number": run.id % 10_000,
        "run_attempt": run.attempt,
        "event": run.event,
        "status": current.status,
        "conclusion": current.conclusion,
        "workflow_id": run.workflow_id,
        "url": api,
        "html_url": format!("https://github.com/{}/actions/runs/{}", run.repository, run.id),
        "pull_requests": [],
        "created_at": created,
        "updated_at": rfc3339(run.at(current.changed)),
        "run_started_at": rfc3339(run.at(run.start().min(current.changed.max(run.created)))),
        "jobs_url": format!("{api}/jobs"),
        "logs_url": format!("{api}/logs"),
        "check_suite_url": format!("https://api.github.com/repos/{}/check-suites/{}", run.repository, run.id + 1),
        "artifacts_url": format!("{api}/artifacts"),
        "cancel_url": format!("{api}/cancel"),
        "rerun_url": format!("{api}/rerun"),
        "previous_attempt_url": null,
        "workflow_url": format!("https://api.github.com/repos/{}/actions/workflows/{}", run.repository, run.workflow_id),
        "head_commit": {
            "id": run.head_sha,
            "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "message": "Integration tests",
            "timestamp": created,
            "author": {"name": "Octo Cat", "email": "octocat@example.com"},
            "committer": {"name": "Octo Cat", "email": "octocat@example.com"},
        },
        "repository": repo,
        "head_repository": repo,
    })
}

/// The body, with an `ETag` of its content; 304 when `If-None-Match` names it.
fn conditional(headers: &HeaderMap, body: &Value) -> Response {
    use std::hash::{Hash as _, Hasher as _};
    let text = body.to_string();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let etag = format!("W/\"{:016x}\"", hasher.finish());
    let matches = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [("content-type", "application/json; charset=utf-8")],
            text,
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert("etag", etag.parse().expect("etag header"));
    response
}

fn find_workflow(
    state: &crate::FakeState,
    repository: &str,
    workflow: &str,
) -> Option<(u64, FakeWorkflow)> {
    state
        .actions
        .workflows
        .iter()
        .find(|(id, w)| {
            w.repository == repository && (w.file == workflow || id.to_string() == workflow)
        })
        .cloned()
}

pub(crate) async fn dispatch_workflow(
    State(state): State<Shared>,
    UrlPath((owner, repo, workflow)): UrlPath<(String, String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let (id, hold) = {
        let mut state = state.lock().expect("fake state");
        let Some(found) = find_workflow(&state, &repository, &workflow) else {
            return error(StatusCode::NOT_FOUND, "Not Found");
        };
        let asks_details = body.get("return_run_details") == Some(&Value::Bool(true));
        if state.actions.ghes && body.get("return_run_details").is_some() {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid request.\n\n\"return_run_details\" is not a permitted key.",
            );
        }
        let inputs = body
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let unexpected: Vec<&String> = inputs
            .keys()
            .filter(|k| !found.1.inputs.contains(k))
            .collect();
        if !unexpected.is_empty() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Unexpected inputs provided: {unexpected:?}"),
            );
        }
        if inputs.values().any(|v| !v.is_string()) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid value for inputs: values must be strings",
            );
        }
        let id = create_run(&mut state, &found, "workflow_dispatch", &inputs, "inputs");
        let hold =
            (!state.actions.hold_answers.is_empty()).then(|| state.actions.hold_answers.remove(0));
        (asks_details.then_some(id), hold)
    };
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    match id {
        Some(id) => axum::Json(json!({
            "workflow_run_id": id,
            "run_url": format!("https://api.github.com/repos/{repository}/actions/runs/{id}"),
            "html_url": format!("https://github.com/{repository}/actions/runs/{id}"),
        }))
        .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

pub(crate) async fn repository_dispatch(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let mut state = state.lock().expect("fake state");
    let event_type = body["event_type"].as_str().unwrap_or_default().to_owned();
    let payload = body
        .get("client_payload")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let workflows: Vec<(u64, FakeWorkflow)> = state
        .actions
        .workflows
        .iter()
        .filter(|(_, w)| w.repository == repository && w.dispatch_types.contains(&event_type))
        .cloned()
        .collect();
    for workflow in &workflows {
        create_run(
            &mut state,
            workflow,
            "repository_dispatch",
            &payload,
            "github.event.client_payload",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct RunsQuery {
    event: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

fn list_runs(
    state: &Shared,
    repository: &str,
    workflow: Option<&str>,
    query: &RunsQuery,
    headers: &HeaderMap,
) -> Response {
    let state = state.lock().expect("fake state");
    let workflow_id = match workflow {
        Some(workflow) => match find_workflow(&state, repository, workflow) {
            Some((id, _)) => Some(id),
            None => return error(StatusCode::NOT_FOUND, "Not Found"),
        },
        None => None,
    };
    let now = Instant::now();
    let matching: Vec<&Run> = state
        .actions
        .runs
        .iter()
        .rev()
        .filter(|r| r.repository == repository)
        .filter(|r| workflow_id.is_none_or(|id| r.workflow_id == id))
        .filter(|r| query.event.as_deref().is_none_or(|e| r.event == e))
        .collect();
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let page = query.page.unwrap_or(1).max(1);
    let runs: Vec<Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|r| run_json(r, now))
        .collect();
    conditional(
        headers,
        &json!({"total_count": matching.len(), "workflow_runs": runs}),
    )
}

pub(crate) async fn workflow_runs(
    State(state): State<Shared>,
    UrlPath((owner, repo, workflow)): UrlPath<(String, String, String)>,
    Query(query): Query<RunsQuery>,
    headers: HeaderMap,
) -> Response {
    list_runs(
        &state,
        &format!("{owner}/{repo}"),
        Some(&workflow),
        &query,
        &headers,
    )
}

pub(crate) async fn repository_runs(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(query): Query<RunsQuery>,
    headers: HeaderMap,
) -> Response {
    list_runs(&state, &format!("{owner}/{repo}"), None, &query, &headers)
}

pub(crate) async fn get_run(
    State(state): State<Shared>,
    UrlPath((owner, repo, id)): UrlPath<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let state = state.lock().expect("fake state");
    let repository = format!("{owner}/{repo}");
    match state
        .actions
        .runs
        .iter()
        .find(|r| r.id == id && r.repository == repository)
    {
        Some(run) => conditional(&headers, &run_json(run, Instant::now())),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

pub(crate) async fn cancel_run(
    State(state): State<Shared>,
    UrlPath((owner, repo, id)): UrlPath<(String, String, u64)>,
) -> Response {
    let mut state = state.lock().expect("fake state");
    let repository = format!("{owner}/{repo}");
    let now = Instant::now();
    let Some(run) = state
        .actions
        .runs
        .iter_mut()
        .find(|r| r.id == id && r.repository == repository)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    if run.now(now).status == "completed" {
        return error(
            StatusCode::CONFLICT,
            "Cannot cancel a workflow run that is completed.",
        );
    }
    run.cancelled = Some(now);
    state.actions.cancels.push((id, now));
    (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
}

pub(crate) async fn concurrency_groups(
    State(state): State<Shared>,
    UrlPath((owner, repo, id)): UrlPath<(String, String, u64)>,
) -> Response {
    let state = state.lock().expect("fake state");
    let repository = format!("{owner}/{repo}");
    let Some(run) = state
        .actions
        .runs
        .iter()
        .find(|r| r.id == id && r.repository == repository)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let groups: Vec<Value> = run
        .group
        .iter()
        .map(|group| {
            json!({
                "group_name": group,
                "group_url": format!("https://api.github.com/repos/{repository}/actions/concurrency_groups/{group}"),
                "group_members": [],
            })
        })
        .collect();
    axum::Json(json!({"total_count": groups.len(), "concurrency_groups": groups})).into_response()
}

fn job_json(run: &Run, index: usize, job: &(String, String, String), now: Instant) -> Value {
    let current = run.now(now);
    let id = run.id * 100 + index as u64;
    let (status, conclusion) = match (current.status, current.conclusion.as_deref()) {
        ("completed", Some("cancelled")) => ("completed", Some("cancelled".to_owned())),
        ("completed", _) => ("completed", Some(job.1.clone())),
        _ if run.ended_jobs.contains(&job.0) => ("completed", Some(job.1.clone())),
        _ => ("in_progress", None),
    };
    json!({
        "id": id,
        "run_id": run.id,
        "run_url": format!("https://api.github.com/repos/{}/actions/runs/{}", run.repository, run.id),
        "run_attempt": run.attempt,
        "node_id": format!("CR_kwDO{id:08}"),
        "head_sha": run.head_sha,
        "url": format!("https://api.github.com/repos/{}/actions/jobs/{id}", run.repository),
        "html_url": format!("https://github.com/{}/actions/runs/{}/job/{id}", run.repository, run.id),
        "status": status,
        "conclusion": conclusion,
        "created_at": rfc3339(run.created_at),
        "started_at": rfc3339(run.at(run.start())),
        "completed_at": (status == "completed").then(|| rfc3339(run.at(current.changed))),
        "name": job.0,
        "steps": [],
        "check_run_url": format!("https://api.github.com/repos/{}/check-runs/{id}", run.repository),
        "labels": ["ubuntu-latest"],
        "runner_id": 1,
        "runner_name": "GitHub Actions 1",
        "runner_group_id": 1,
        "runner_group_name": "GitHub Actions",
        "workflow_name": run.name,
        "head_branch": "main",
    })
}

pub(crate) async fn run_jobs(
    State(state): State<Shared>,
    UrlPath((owner, repo, id, attempt)): UrlPath<(String, String, u64, u32)>,
) -> Response {
    let state = state.lock().expect("fake state");
    let repository = format!("{owner}/{repo}");
    let Some(run) = state
        .actions
        .runs
        .iter()
        .find(|r| r.id == id && r.repository == repository && r.attempt >= attempt)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let now = Instant::now();
    let current = run.now(now);
    let jobs: Vec<Value> = if current.started {
        run.plan
            .jobs
            .iter()
            .enumerate()
            .map(|(i, job)| job_json(run, i, job, now))
            .collect()
    } else {
        Vec::new()
    };
    axum::Json(json!({"total_count": jobs.len(), "jobs": jobs})).into_response()
}

pub(crate) async fn job_logs(
    State(state): State<Shared>,
    UrlPath((_owner, _repo, id)): UrlPath<(String, String, u64)>,
) -> Response {
    let state = state.lock().expect("fake state");
    if !state.actions.runs.iter().any(|r| r.id == id / 100) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    redirect(&format!("{}/_storage/logs/{id}", state.actions.upstream))
}

pub(crate) async fn stored_log(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<u64>,
    headers: HeaderMap,
) -> Response {
    let state = storage(&state, &headers);
    let log = state
        .actions
        .runs
        .iter()
        .find(|r| r.id == id / 100)
        .and_then(|r| {
            r.plan
                .jobs
                .get(usize::try_from(id % 100).unwrap_or(usize::MAX))
        })
        .map(|job| job.2.clone());
    match log {
        Some(log) => (StatusCode::OK, [("content-type", "text/plain")], log).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The state, for a storage request: whether it carried a token is recorded first (GitHub's
/// token must never reach the storage).
fn storage<'a>(
    state: &'a Shared,
    headers: &HeaderMap,
) -> std::sync::MutexGuard<'a, crate::FakeState> {
    let mut state = state.lock().expect("fake state");
    state
        .actions
        .storage_auth
        .push(headers.contains_key("authorization"));
    state
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    response
        .headers_mut()
        .insert("location", location.parse().expect("location header"));
    response
}

fn artifact_json(run: &Run, size: usize) -> Value {
    let id = run.id * 10 + 1;
    let api = format!(
        "https://api.github.com/repos/{}/actions/artifacts/{id}",
        run.repository
    );
    let created = rfc3339(run.at(run.end()));
    json!({
        "id": id,
        "node_id": format!("MDg6QXJ0aWZhY3Qx{id}"),
        "name": "gantry-verdict",
        "size_in_bytes": size,
        "url": api,
        "archive_download_url": format!("{api}/zip"),
        "expired": false,
        "created_at": created,
        "expires_at": "2027-03-01T00:00:00Z",
        "updated_at": created,
        "workflow_run": {
            "id": run.id,
            "repository_id": 77,
            "head_repository_id": 77,
            "head_branch": "main",
            "head_sha": run.head_sha,
        },
    })
}

fn verdict_zip(verdict: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(
        "gantry-verdict.json",
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated),
    )
    .expect("zip entry");
    zip.write_all(verdict).expect("zip write");
    zip.finish().expect("zip").into_inner()
}

pub(crate) async fn run_artifacts(
    State(state): State<Shared>,
    UrlPath((owner, repo, id)): UrlPath<(String, String, u64)>,
) -> Response {
    let state = state.lock().expect("fake state");
    let repository = format!("{owner}/{repo}");
    let Some(run) = state
        .actions
        .runs
        .iter()
        .find(|r| r.id == id && r.repository == repository)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let current = run.now(Instant::now());
    let artifacts: Vec<Value> = match (&run.plan.verdict, current.status) {
        (Some(verdict), "completed") if current.started => {
            vec![artifact_json(run, verdict_zip(verdict).len())]
        }
        _ => Vec::new(),
    };
    axum::Json(json!({"total_count": artifacts.len(), "artifacts": artifacts})).into_response()
}

pub(crate) async fn artifact_download(
    State(state): State<Shared>,
    UrlPath((_owner, _repo, id, format)): UrlPath<(String, String, u64, String)>,
) -> Response {
    let state = state.lock().expect("fake state");
    if format != "zip" || !state.actions.runs.iter().any(|r| r.id == id / 10) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    redirect(&format!(
        "{}/_storage/artifacts/{id}",
        state.actions.upstream
    ))
}

pub(crate) async fn stored_artifact(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<u64>,
    headers: HeaderMap,
) -> Response {
    let state = storage(&state, &headers);
    let verdict = state
        .actions
        .runs
        .iter()
        .find(|r| r.id == id / 10)
        .and_then(|r| r.plan.verdict.clone());
    match verdict {
        Some(verdict) => (
            StatusCode::OK,
            [("content-type", "application/zip")],
            verdict_zip(&verdict),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) async fn create_commit_status(
    State(state): State<Shared>,
    UrlPath((owner, repo, sha)): UrlPath<(String, String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = state.lock().expect("fake state");
    state.next_id += 1;
    let id = state.next_id;
    let repository = format!("{owner}/{repo}");
    let now = rfc3339(jiff::Timestamp::now());
    let status = json!({
        "url": format!("https://api.github.com/repos/{repository}/statuses/{sha}"),
        "avatar_url": "https://avatars.githubusercontent.com/u/41898282?v=4",
        "id": id,
        "node_id": format!("SC_kwDO{id:08}"),
        "state": body["state"],
        "description": body.get("description").cloned().unwrap_or(Value::Null),
        "target_url": body.get("target_url").cloned().unwrap_or(Value::Null),
        "context": body.get("context").cloned().unwrap_or_else(|| json!("default")),
        "created_at": now,
        "updated_at": now,
        "creator": user("github-actions[bot]", 41_898_282),
    });
    state
        .actions
        .commit_statuses
        .entry((repository, sha))
        .or_default()
        .push(status.clone());
    (StatusCode::CREATED, axum::Json(status)).into_response()
}
