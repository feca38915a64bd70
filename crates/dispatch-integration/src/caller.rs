//! The caller: dispatch once, find the run exactly, wait cheaply, end cleanly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gantry_github::{
    Cancel, Dispatched, Fetched, GitHub, Repository, RunFilter, RunStatus, WorkflowRun,
};
use serde_json::{Map, Value};

use crate::correlation::title_names;
use crate::report::FailedJob;
use crate::verdict::{VERDICT_ARTIFACT, VERDICT_FILE, Verdict};

/// The longest pause between polls.
const LONGEST_POLL: Duration = Duration::from_secs(10);
/// Below this many requests left, polls slow down to [`SCARCE_POLL`].
const SCARCE: u64 = 100;
const SCARCE_POLL: Duration = Duration::from_secs(30);
/// How long an ambiguous dispatch is searched for before it is sent again.
const AMBIGUOUS_SEARCH: Duration = Duration::from_mins(1);
/// Runs created this long before the dispatch are not searched (clock skew).
const SKEW: i64 = 300;
/// Pages of runs searched for one poll.
const SEARCH_PAGES: u32 = 10;
/// Failed jobs whose logs are read.
const MAX_FAILED_LOGS: usize = 10;
/// The zip of a verdict artifact.
const VERDICT_ZIP_LIMIT: usize = 1024 * 1024;

/// How to dispatch.
pub(crate) enum Target {
    Workflow {
        workflow: String,
        git_ref: String,
        inputs: Map<String, Value>,
    },
    Event {
        event_type: String,
        payload: Map<String, Value>,
    },
}

/// The run, once known: shared with the signal handler, which cancels it.
pub(crate) type Known = Arc<Mutex<Option<u64>>>;

pub(crate) struct Caller<'a> {
    pub(crate) github: &'a GitHub,
    pub(crate) repository: Repository,
    pub(crate) target: Target,
    pub(crate) correlation_id: String,
    pub(crate) digest: String,
    pub(crate) started: Instant,
    /// The first pause between polls (`poll-interval`): the verdict arrives within this (plus one
    /// request) of the run finishing.
    pub(crate) first_poll: Duration,
    pub(crate) started_at: jiff::Timestamp,
    pub(crate) known: Known,
}

/// How the wait ended.
pub(crate) enum Ended {
    /// Not waiting: the run was found, and that is all.
    Found(WorkflowRun),
    /// The run completed.
    Completed(WorkflowRun),
    /// The run did not start within the queue timeout.
    QueueTimeout(Option<WorkflowRun>),
    /// The run did not finish within the timeout.
    TimedOut(WorkflowRun),
}

fn remember(known: &Known, id: u64) {
    *known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id);
}

impl Caller<'_> {
    fn filter(&self, page: u32) -> RunFilter {
        match &self.target {
            Target::Workflow { workflow, .. } => RunFilter {
                workflow: Some(workflow.clone()),
                event: Some("workflow_dispatch".to_owned()),
                created_since: None,
                page,
            },
            Target::Event { .. } => RunFilter {
                workflow: None,
                event: Some("repository_dispatch".to_owned()),
                created_since: None,
                page,
            },
        }
    }

    /// Sends the dispatch once. Returns the run id when GitHub named it. A dispatch whose answer
    /// was lost is searched for (by correlation id) before it is sent again, so a run is never
    /// started twice.
    pub(crate) async fn dispatch(&self, queue_timeout: Duration) -> anyhow::Result<Option<u64>> {
        match self.send().await {
            Ok(id) => Ok(id),
            Err(error) if error.is_ambiguous() => {
                tracing::warn!(
                    "the dispatch's answer was lost ({error}); searching for run {} before sending it again",
                    self.correlation_id
                );
                let deadline = Instant::now() + AMBIGUOUS_SEARCH.min(queue_timeout);
                let mut etag = None;
                loop {
                    if let Some(run) = self.search(&mut etag).await? {
                        return Ok(Some(run.id));
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(self.first_poll).await;
                }
                tracing::warn!(
                    "no run carries {} after {} s: the dispatch did not arrive; sending it again",
                    self.correlation_id,
                    AMBIGUOUS_SEARCH.min(queue_timeout).as_secs()
                );
                Ok(self.send().await.context("dispatching again")?)
            }
            Err(error) => Err(error).context("dispatching the integration run"),
        }
    }

    async fn send(&self) -> Result<Option<u64>, gantry_github::GitHubError> {
        match &self.target {
            Target::Workflow {
                workflow,
                git_ref,
                inputs,
            } => {
                let answer = self
                    .github
                    .dispatch_workflow(&self.repository, workflow, git_ref, inputs)
                    .await?;
                Ok(match answer {
                    Dispatched::Run { id, .. } => Some(id),
                    Dispatched::Accepted => None,
                })
            }
            Target::Event {
                event_type,
                payload,
            } => {
                self.github
                    .repository_dispatch(&self.repository, event_type, payload)
                    .await?;
                Ok(None)
            }
        }
    }

    /// The newest run whose title names the correlation id, if one does yet.
    pub(crate) async fn search(
        &self,
        etag: &mut Option<String>,
    ) -> anyhow::Result<Option<WorkflowRun>> {
        let oldest = self.started_at.as_second() - SKEW;
        for page in 1..=SEARCH_PAGES {
            let conditional = if page == 1 { etag.as_deref() } else { None };
            let fetched = self
                .github
                .workflow_runs(&self.repository, &self.filter(page), conditional)
                .await
                .context("listing the integration repository's runs")?;
            let runs = match fetched {
                Fetched::Unchanged => return Ok(None),
                Fetched::Changed(runs, tag) => {
                    if page == 1 {
                        *etag = tag;
                    }
                    runs
                }
            };
            if let Some(run) = runs
                .iter()
                .find(|r| title_names(&r.display_title, &self.correlation_id))
            {
                return Ok(Some(run.clone()));
            }
            let older = runs.iter().any(|r| {
                r.created_at
                    .parse::<jiff::Timestamp>()
                    .is_ok_and(|t| t.as_second() < oldest)
            });
            if older || runs.len() < gantry_github::RUNS_PER_PAGE {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Finds the run (when GitHub did not name it) and waits for it to end.
    pub(crate) async fn wait(
        &self,
        named: Option<u64>,
        wait: bool,
        timeout: Duration,
        queue_timeout: Duration,
    ) -> anyhow::Result<Ended> {
        let mut pause = self.first_poll;
        let mut etag: Option<String> = None;
        let mut run: Option<WorkflowRun> = None;
        // Find it.
        let mut id = named;
        if let Some(id) = id {
            remember(&self.known, id);
        }
        while id.is_none() {
            if let Some(found) = self.search(&mut etag).await? {
                tracing::info!("found run {} ({})", found.id, found.html_url);
                remember(&self.known, found.id);
                id = Some(found.id);
                run = Some(found);
                break;
            }
            if self.started.elapsed() >= queue_timeout {
                return Ok(Ended::QueueTimeout(None));
            }
            tokio::time::sleep(self.pause(&mut pause)).await;
        }
        let id = id.context("the run is known")?;
        etag = None;
        // Watch it.
        loop {
            match self
                .github
                .workflow_run(&self.repository, id, etag.as_deref())
                .await
                .with_context(|| format!("reading run {id}"))?
            {
                Fetched::Unchanged => {}
                Fetched::Changed(current, tag) => {
                    etag = tag;
                    pause = self.first_poll;
                    run = Some(current);
                }
            }
            let current = run.as_ref().context("the run was read")?;
            if !wait {
                return Ok(Ended::Found(current.clone()));
            }
            match current.status {
                Some(RunStatus::Completed) => return Ok(Ended::Completed(current.clone())),
                Some(RunStatus::Queued | RunStatus::Pending | RunStatus::Requested)
                    if self.started.elapsed() >= queue_timeout =>
                {
                    return Ok(Ended::QueueTimeout(Some(current.clone())));
                }
                _ => {}
            }
            if self.started.elapsed() >= timeout {
                return Ok(Ended::TimedOut(current.clone()));
            }
            let left = timeout.saturating_sub(self.started.elapsed());
            tokio::time::sleep(self.pause(&mut pause).min(left)).await;
        }
    }

    /// The pause before the next poll: growing while nothing changes, slower when requests run
    /// short.
    fn pause(&self, pause: &mut Duration) -> Duration {
        let now = *pause;
        *pause = (*pause * 3 / 2).min(LONGEST_POLL);
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self.github.rate_limit() {
            // Only while the window the answer spoke of lasts.
            Some(limit) if limit.remaining < SCARCE && limit.reset > unix => now.max(SCARCE_POLL),
            _ => now,
        }
    }

    /// Cancels the run; `true` when GitHub accepted it.
    pub(crate) async fn cancel(&self, id: u64) -> bool {
        match self.github.cancel_run(&self.repository, id).await {
            Ok(Cancel::Requested) => true,
            Ok(Cancel::AlreadyFinished) => false,
            Err(error) => {
                tracing::warn!("cancelling run {id}: {error}");
                false
            }
        }
    }

    /// The concurrency groups of a run that was cancelled without gantry asking: a run in a
    /// group is cancelled when a newer run of the group arrives (pending runs, and running ones
    /// with `cancel-in-progress`). `None`: in no group (someone cancelled it).
    pub(crate) async fn superseded(&self, run: &WorkflowRun) -> anyhow::Result<Option<String>> {
        let groups = self
            .github
            .run_concurrency_groups(&self.repository, run.id)
            .await
            .context("reading the run's concurrency groups")?;
        Ok(groups.filter(|g| !g.is_empty()).map(|g| g.join(", ")))
    }

    /// The failed jobs of `run`, with the last `lines` lines of each log.
    pub(crate) async fn failed_jobs(
        &self,
        run: &WorkflowRun,
        lines: u32,
    ) -> anyhow::Result<Vec<FailedJob>> {
        let jobs = self
            .github
            .run_jobs(&self.repository, run.id, run.run_attempt)
            .await
            .context("reading the run's jobs")?;
        let mut failed = Vec::new();
        for job in jobs.into_iter().filter(|j| {
            matches!(
                j.conclusion.as_deref(),
                Some("failure" | "timed_out" | "cancelled" | "startup_failure")
            )
        }) {
            let tail = if lines == 0 || failed.len() >= MAX_FAILED_LOGS {
                None
            } else {
                let bytes = (lines as usize * 512).max(64 * 1024);
                match self
                    .github
                    .job_log_tail(&self.repository, job.id, bytes)
                    .await
                {
                    Ok(text) => Some(last_lines(&text, lines as usize)),
                    Err(error) => {
                        tracing::warn!("reading job {}'s log: {error}", job.name);
                        None
                    }
                }
            };
            failed.push(FailedJob {
                name: job.name,
                conclusion: job.conclusion.unwrap_or_default(),
                url: job.html_url,
                tail,
            });
        }
        Ok(failed)
    }

    /// The run's verdict artifact, read back and checked; `None` when the run uploaded none.
    pub(crate) async fn verdict(&self, run: &WorkflowRun) -> anyhow::Result<Option<Verdict>> {
        let artifacts = self
            .github
            .run_artifacts(&self.repository, run.id)
            .await
            .context("listing the run's artifacts")?;
        let Some(artifact) = artifacts
            .iter()
            .find(|a| a.name == VERDICT_ARTIFACT && !a.expired)
        else {
            return Ok(None);
        };
        let bytes = self
            .github
            .artifact_file(
                &self.repository,
                artifact.id,
                VERDICT_FILE,
                VERDICT_ZIP_LIMIT,
                crate::VERDICT_LIMIT,
            )
            .await
            .context("reading the verdict artifact")?;
        let verdict = Verdict::read(&bytes, &self.digest, &self.correlation_id)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Some(verdict))
    }
}

/// The last `n` lines of `text` (a first partial line, cut by the tail read, is dropped).
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}
