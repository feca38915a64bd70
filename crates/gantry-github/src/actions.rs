//! GitHub Actions: dispatching a workflow, finding and watching its run, cancelling it, reading
//! its jobs, log tails and artifacts.
//!
//! Reads that are polled take the `ETag` of the previous answer: GitHub answers 304 when nothing
//! changed, and a 304 does not count against the primary rate limit.

use std::io::Read as _;

use http::StatusCode;
use http::header::{ETAG, IF_NONE_MATCH, RANGE};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::request::{Call, Keep};
use crate::{GitHub, GitHubError, Repository, form_query, segment};

/// What a workflow dispatch answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// GitHub named the run it created (200, since 2026-02-19).
    Run {
        /// The run's id.
        id: u64,
        /// The run's API URL.
        url: String,
        /// The run's page.
        html_url: String,
    },
    /// Accepted without naming the run (204: an older GitHub Enterprise Server, or the field
    /// was refused and the dispatch sent again without it).
    Accepted,
}

/// A conditional read's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched<T> {
    /// 304: nothing changed since the `ETag` given.
    Unchanged,
    /// The current value and its `ETag`.
    Changed(T, Option<String>),
}

/// A workflow run's status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Finished; see the conclusion.
    Completed,
    /// Running.
    InProgress,
    /// Queued.
    Queued,
    /// Waiting (a concurrency group, or another run ahead).
    Pending,
    /// Waiting for an environment's reviewers.
    Waiting,
    /// Requested, not yet queued.
    Requested,
    /// Any other status GitHub may add.
    #[serde(other)]
    Other,
}

/// A workflow run, as far as gantry reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    /// Its id.
    pub id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The run's title: the workflow's `run-name` when it sets one.
    #[serde(default)]
    pub display_title: String,
    /// The attempt (1 for the first).
    #[serde(default = "first_attempt")]
    pub run_attempt: u32,
    /// Its status (`None`: GitHub did not say).
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// How it ended, once completed (`success`, `failure`, `cancelled`, `timed_out`, …).
    #[serde(default)]
    pub conclusion: Option<String>,
    /// The event that started it.
    pub event: String,
    /// The commit it ran on.
    pub head_sha: String,
    /// Its page.
    pub html_url: String,
    /// Its API URL.
    pub url: String,
    /// When it was created.
    pub created_at: String,
    /// When this attempt started.
    #[serde(default)]
    pub run_started_at: Option<String>,
}

fn first_attempt() -> u32 {
    1
}

/// A job of a run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// `queued`, `in_progress`, `completed`, …
    pub status: String,
    /// How it ended.
    #[serde(default)]
    pub conclusion: Option<String>,
    /// When it started (a job that never ran may carry its creation time).
    #[serde(default)]
    pub started_at: Option<String>,
    /// Its page.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// An artifact of a run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Artifact {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The zip's size.
    pub size_in_bytes: u64,
    /// Whether it expired.
    pub expired: bool,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this workflow (file name or id); all workflows when `None`.
    pub workflow: Option<String>,
    /// Only runs started by this event (`workflow_dispatch`, `repository_dispatch`).
    pub event: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    pub created_since: Option<String>,
    /// The page (from 1).
    pub page: u32,
}

/// What cancelling a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// GitHub accepted the cancellation (202).
    Requested,
    /// The run had already finished (409).
    AlreadyFinished,
}

#[derive(Deserialize)]
struct DispatchResponse {
    workflow_run_id: u64,
    run_url: String,
    html_url: String,
}

#[derive(Deserialize)]
struct RunList {
    workflow_runs: Vec<WorkflowRun>,
}

#[derive(Deserialize)]
struct JobList {
    total_count: u64,
    jobs: Vec<Job>,
}

#[derive(Deserialize)]
struct ArtifactList {
    artifacts: Vec<Artifact>,
}

#[derive(Deserialize)]
struct GroupList {
    concurrency_groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    group_name: String,
}

/// The most runs one page lists.
pub const RUNS_PER_PAGE: usize = 100;

impl GitHub {
    /// Dispatches `workflow` (file name or id) on `git_ref` with `inputs`, asking GitHub to name
    /// the run. A server that does not know the request for the run (GHES ≤ 3.20 answers 400:
    /// nothing was dispatched) gets the dispatch again without it.
    ///
    /// Never retried when the request may have reached GitHub: a [`GitHubError::is_ambiguous`]
    /// error means a run may exist, and only a search can tell.
    pub async fn dispatch_workflow(
        &self,
        repository: &Repository,
        workflow: &str,
        git_ref: &str,
        inputs: &Map<String, Value>,
    ) -> Result<Dispatched, GitHubError> {
        let path = format!(
            "/repos/{repository}/actions/workflows/{}/dispatches",
            segment(workflow)
        );
        let body = json!({"ref": git_ref, "inputs": inputs, "return_run_details": true});
        let answer = self.call(Call::post(path.clone(), &body)).await?;
        let answer = if answer.status == StatusCode::BAD_REQUEST {
            tracing::info!(
                "{path} refused return_run_details ({}): dispatching without it",
                answer.message()
            );
            let body = json!({"ref": git_ref, "inputs": inputs});
            self.call(Call::post(path, &body)).await?
        } else {
            answer
        };
        answer.expect(&[StatusCode::OK, StatusCode::NO_CONTENT])?;
        if answer.status == StatusCode::NO_CONTENT {
            return Ok(Dispatched::Accepted);
        }
        let run: DispatchResponse = answer.json("a workflow-dispatch-response")?;
        Ok(Dispatched::Run {
            id: run.workflow_run_id,
            url: run.run_url,
            html_url: run.html_url,
        })
    }

    /// Sends a `repository_dispatch` event (`event_type`, `client_payload`); GitHub names no run.
    pub async fn repository_dispatch(
        &self,
        repository: &Repository,
        event_type: &str,
        client_payload: &Map<String, Value>,
    ) -> Result<(), GitHubError> {
        let path = format!("/repos/{repository}/dispatches");
        let body = json!({"event_type": event_type, "client_payload": client_payload});
        let answer = self.post(&path, &body).await?;
        answer.expect(&[StatusCode::NO_CONTENT])
    }

    /// One page of runs, newest first, conditional on `etag`.
    pub async fn workflow_runs(
        &self,
        repository: &Repository,
        filter: &RunFilter,
        etag: Option<&str>,
    ) -> Result<Fetched<Vec<WorkflowRun>>, GitHubError> {
        let mut query: Vec<(&str, String)> = vec![
            ("per_page", RUNS_PER_PAGE.to_string()),
            ("page", filter.page.max(1).to_string()),
            ("exclude_pull_requests", "true".to_owned()),
        ];
        if let Some(event) = &filter.event {
            query.push(("event", event.clone()));
        }
        if let Some(since) = &filter.created_since {
            query.push(("created", format!(">={since}")));
        }
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let base = match &filter.workflow {
            Some(workflow) => format!(
                "/repos/{repository}/actions/workflows/{}/runs",
                segment(workflow)
            ),
            None => format!("/repos/{repository}/actions/runs"),
        };
        let path = format!("{base}?{}", form_query(&pairs));
        let fetched = self
            .conditional(path, etag, "a list of workflow runs")
            .await?;
        Ok(match fetched {
            Fetched::Unchanged => Fetched::Unchanged,
            Fetched::Changed(list, etag) => {
                let list: RunList = list;
                Fetched::Changed(list.workflow_runs, etag)
            }
        })
    }

    /// A run, conditional on `etag`.
    pub async fn workflow_run(
        &self,
        repository: &Repository,
        run_id: u64,
        etag: Option<&str>,
    ) -> Result<Fetched<WorkflowRun>, GitHubError> {
        let path = format!("/repos/{repository}/actions/runs/{run_id}");
        self.conditional(path, etag, "a workflow-run").await
    }

    async fn conditional<T: for<'de> Deserialize<'de>>(
        &self,
        path: String,
        etag: Option<&str>,
        expected: &'static str,
    ) -> Result<Fetched<T>, GitHubError> {
        let mut call = Call::get(path);
        if let Some(etag) = etag {
            call = call.header(IF_NONE_MATCH, etag);
        }
        let answer = self.call(call).await?;
        if answer.status == StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::Unchanged);
        }
        answer.expect(&[StatusCode::OK])?;
        let etag = answer.header(ETAG.as_str()).map(str::to_owned);
        Ok(Fetched::Changed(answer.json(expected)?, etag))
    }

    /// Asks GitHub to cancel a run.
    pub async fn cancel_run(
        &self,
        repository: &Repository,
        run_id: u64,
    ) -> Result<Cancel, GitHubError> {
        let path = format!("/repos/{repository}/actions/runs/{run_id}/cancel");
        let answer = self.call(Call::post_empty(path)).await?;
        if answer.status == StatusCode::CONFLICT {
            return Ok(Cancel::AlreadyFinished);
        }
        answer.expect(&[StatusCode::ACCEPTED])?;
        Ok(Cancel::Requested)
    }

    /// The jobs of a run's attempt (all of them: pages of 100).
    pub async fn run_jobs(
        &self,
        repository: &Repository,
        run_id: u64,
        attempt: u32,
    ) -> Result<Vec<Job>, GitHubError> {
        let mut jobs = Vec::new();
        for page in 1..=10u32 {
            let path = format!(
                "/repos/{repository}/actions/runs/{run_id}/attempts/{attempt}/jobs?per_page=100&page={page}"
            );
            let answer = self.get(&path).await?;
            answer.expect(&[StatusCode::OK])?;
            let list: JobList = answer.json("a list of jobs")?;
            let done = list.jobs.len() < 100;
            jobs.extend(list.jobs);
            if done || jobs.len() as u64 >= list.total_count {
                break;
            }
        }
        Ok(jobs)
    }

    /// The last `max_bytes` of a job's log (GitHub redirects to the log's storage; only the tail
    /// is kept while it streams).
    pub async fn job_log_tail(
        &self,
        repository: &Repository,
        job_id: u64,
        max_bytes: usize,
    ) -> Result<String, GitHubError> {
        let path = format!("/repos/{repository}/actions/jobs/{job_id}/logs");
        let call = Call::get(path)
            .header(RANGE, format!("bytes=-{max_bytes}"))
            .keep(Keep::Tail(max_bytes));
        let answer = self.call(call).await?;
        answer.expect(&[StatusCode::OK, StatusCode::PARTIAL_CONTENT])?;
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }

    /// The artifacts of a run.
    pub async fn run_artifacts(
        &self,
        repository: &Repository,
        run_id: u64,
    ) -> Result<Vec<Artifact>, GitHubError> {
        let path = format!("/repos/{repository}/actions/runs/{run_id}/artifacts?per_page=100");
        let answer = self.get(&path).await?;
        answer.expect(&[StatusCode::OK])?;
        let list: ArtifactList = answer.json("a list of artifacts")?;
        Ok(list.artifacts)
    }

    /// The file `name` inside artifact `artifact_id`'s zip, refused when the zip is larger than
    /// `max_zip` or the file larger than `max_file` bytes.
    pub async fn artifact_file(
        &self,
        repository: &Repository,
        artifact_id: u64,
        name: &str,
        max_zip: usize,
        max_file: u64,
    ) -> Result<Vec<u8>, GitHubError> {
        let path = format!("/repos/{repository}/actions/artifacts/{artifact_id}/zip");
        let answer = self
            .call(Call::get(path.clone()).keep(Keep::Whole(max_zip)))
            .await?;
        answer.expect(&[StatusCode::OK])?;
        let invalid = |why: String| GitHubError::Invalid(format!("artifact {artifact_id}: {why}"));
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(answer.body.as_ref()))
            .map_err(|e| invalid(format!("not a zip archive: {e}")))?;
        let file = archive
            .by_name(name)
            .map_err(|_| invalid(format!("holds no {name}")))?;
        let mut bytes = Vec::new();
        file.take(max_file + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("reading {name}: {e}")))?;
        if bytes.len() as u64 > max_file {
            return Err(invalid(format!("{name} is larger than {max_file} bytes")));
        }
        Ok(bytes)
    }

    /// The concurrency groups a run takes part in by its configuration; `None` where the API
    /// does not have the endpoint (older GHES).
    pub async fn run_concurrency_groups(
        &self,
        repository: &Repository,
        run_id: u64,
    ) -> Result<Option<Vec<String>>, GitHubError> {
        let path = format!("/repos/{repository}/actions/runs/{run_id}/concurrency_groups");
        let answer = self.get(&path).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        answer.expect(&[StatusCode::OK])?;
        let list: GroupList = answer.json("a concurrency-group-run-list")?;
        Ok(Some(
            list.concurrency_groups
                .into_iter()
                .map(|g| g.group_name)
                .collect(),
        ))
    }
}
