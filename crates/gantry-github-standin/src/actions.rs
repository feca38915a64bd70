//! GitHub Actions in the fake: workflows that a dispatch starts, runs that move through queued,
//! in progress and completed as time passes (computed when read, so a run's `ETag` changes exactly
//! when its state does), concurrency groups that cancel a pending run when a newer one arrives,
//! jobs with logs, a verdict artifact, cancellation, and commit statuses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

mod handlers;

pub(crate) use handlers::*;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// How long it waits in the queue.
    pub queued: Duration,
    /// How long it runs.
    pub running: Duration,
    /// Its conclusion (`success`, `failure`, `timed_out`, …).
    pub conclusion: String,
    /// Its jobs: name, conclusion, log.
    pub jobs: Vec<(String, String, String)>,
    /// The `gantry-verdict.json` it uploads as artifact `gantry-verdict`, if any.
    pub verdict: Option<Vec<u8>>,
}

impl RunPlan {
    /// A run that queues for `queued`, runs for `running` and ends with `conclusion`, with one
    /// job `test` of that conclusion.
    pub fn new(queued: Duration, running: Duration, conclusion: &str) -> Self {
        Self {
            queued,
            running,
            conclusion: conclusion.to_owned(),
            jobs: vec![(
                "test".to_owned(),
                conclusion.to_owned(),
                "Run tests\nall done\n".to_owned(),
            )],
            verdict: None,
        }
    }
}

type Planner = Arc<dyn Fn(&Map<String, Value>) -> RunPlan + Send + Sync>;

/// A workflow the fake knows.
#[derive(Clone)]
pub struct FakeWorkflow {
    /// `owner/name`.
    pub repository: String,
    /// Its file name (`integration.yml`).
    pub file: String,
    /// The `workflow_dispatch` inputs it declares; others are refused (422).
    pub inputs: Vec<String>,
    /// Its `run-name`, with `${{ inputs.X }}` and `${{ github.event.client_payload.X }}`.
    pub run_name: String,
    /// Its `concurrency.group`, same placeholders; `None`: no group.
    pub concurrency: Option<String>,
    /// The `repository_dispatch` types it runs on.
    pub dispatch_types: Vec<String>,
    /// How a run with these inputs (or client payload) goes.
    pub plan: Planner,
}

impl FakeWorkflow {
    /// A workflow whose runs all follow `plan`.
    pub fn new(
        repository: &str,
        file: &str,
        inputs: &[&str],
        run_name: &str,
        plan: RunPlan,
    ) -> Self {
        Self {
            repository: repository.to_owned(),
            file: file.to_owned(),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            run_name: run_name.to_owned(),
            concurrency: None,
            dispatch_types: Vec::new(),
            plan: Arc::new(move |_| plan.clone()),
        }
    }
}

pub(super) struct Run {
    id: u64,
    workflow_id: u64,
    repository: String,
    path: String,
    name: String,
    event: String,
    display_title: String,
    head_sha: String,
    created: Instant,
    created_at: jiff::Timestamp,
    plan: RunPlan,
    attempt: u32,
    cancelled: Option<Instant>,
    group: Option<String>,
    inputs: Map<String, Value>,
    /// Jobs that ended while the run goes on (by name): listed as completed.
    ended_jobs: Vec<String>,
}

/// A run's state at an instant: status, conclusion, when it last changed.
struct Now {
    status: &'static str,
    conclusion: Option<String>,
    changed: Instant,
    started: bool,
}

impl Run {
    fn start(&self) -> Instant {
        self.created + self.plan.queued
    }

    fn end(&self) -> Instant {
        self.start() + self.plan.running
    }

    fn now(&self, now: Instant) -> Now {
        if let Some(at) = self.cancelled {
            return Now {
                status: "completed",
                conclusion: Some("cancelled".to_owned()),
                changed: at,
                started: at >= self.start(),
            };
        }
        if now < self.start() {
            Now {
                status: if self.group.is_some() {
                    "pending"
                } else {
                    "queued"
                },
                conclusion: None,
                changed: self.created,
                started: false,
            }
        } else if now < self.end() {
            Now {
                status: "in_progress",
                conclusion: None,
                changed: self.start(),
                started: true,
            }
        } else {
            Now {
                status: "completed",
                conclusion: Some(self.plan.conclusion.clone()),
                changed: self.end(),
                started: true,
            }
        }
    }

    fn at(&self, instant: Instant) -> jiff::Timestamp {
        let offset = instant.saturating_duration_since(self.created);
        self.created_at
            .checked_add(jiff::SignedDuration::try_from(offset).unwrap_or_default())
            .unwrap_or(self.created_at)
    }
}

/// The Actions part of the fake's state.
#[derive(Default)]
pub(super) struct ActionsState {
    workflows: Vec<(u64, FakeWorkflow)>,
    pub(super) runs: Vec<Run>,
    /// Answer `return_run_details` with 400, as GHES ≤ 3.20 does.
    pub(super) ghes: bool,
    /// Dispatches whose answer is held this long after the run is created (the caller's request
    /// times out: the answer is lost), one per entry.
    pub(super) hold_answers: Vec<Duration>,
    /// (`owner/repo`, sha) → statuses, oldest first.
    pub(super) commit_statuses: HashMap<(String, String), Vec<Value>>,
    /// The fake's own address (log and artifact downloads are redirected there).
    pub(super) upstream: String,
    /// Runs cancelled through the API: (run id, when).
    pub(super) cancels: Vec<(u64, Instant)>,
    /// Whether each storage request carried an `Authorization` header.
    pub(super) storage_auth: Vec<bool>,
}

impl ActionsState {
    /// Run `id`, which a test names: it exists.
    fn run_mut(&mut self, id: u64) -> &mut Run {
        self.runs
            .iter_mut()
            .find(|r| r.id == id)
            .expect("the run exists")
    }
}

/// What a run looks like to a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Its id.
    pub id: u64,
    /// `owner/repo`.
    pub repository: String,
    /// Its title (`run-name`).
    pub display_title: String,
    /// Its event.
    pub event: String,
    /// `queued`, `pending`, `in_progress` or `completed`.
    pub status: String,
    /// Its conclusion once completed.
    pub conclusion: Option<String>,
    /// The inputs (or client payload) it was started with.
    pub inputs: Map<String, Value>,
}

fn render(template: &str, values: &Map<String, Value>, prefix: &str) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for spacing in [" ", ""] {
            out = out.replace(&format!("${{{{{spacing}{prefix}.{key}{spacing}}}}}"), &text);
        }
    }
    out
}

impl super::StandIn {
    /// Adds a workflow.
    pub fn add_workflow(&self, workflow: FakeWorkflow) {
        let mut state = self.state();
        state.next_id += 1;
        let id = state.next_id;
        state.actions.workflows.push((id, workflow));
    }

    /// Starts a run of `file` in `repository` directly (not through the API), as another
    /// dispatcher would: the runs a caller must not mistake for its own.
    pub fn start_run(&self, repository: &str, file: &str, inputs: &Map<String, Value>) -> u64 {
        let mut state = self.state();
        let workflow = state
            .actions
            .workflows
            .iter()
            .find(|(_, w)| w.repository == repository && w.file == file)
            .cloned()
            .expect("the workflow is added");
        create_run(&mut state, &workflow, "workflow_dispatch", inputs, "inputs")
    }

    /// Makes the fake answer `return_run_details` with 400, as GHES ≤ 3.20 does.
    pub fn act_as_old_ghes(&self, on: bool) {
        self.state().actions.ghes = on;
    }

    /// Holds the answer of the next dispatch for `hold` after its run is created.
    pub fn hold_next_dispatch_answer(&self, hold: Duration) {
        self.state().actions.hold_answers.push(hold);
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        let state = self.state();
        let now = Instant::now();
        state
            .actions
            .runs
            .iter()
            .map(|run| {
                let current = run.now(now);
                RunRecord {
                    id: run.id,
                    repository: run.repository.clone(),
                    display_title: run.display_title.clone(),
                    event: run.event.clone(),
                    status: current.status.to_owned(),
                    conclusion: current.conclusion,
                    inputs: run.inputs.clone(),
                }
            })
            .collect()
    }

    /// Cancels run `id` as a person would in GitHub's web interface (not through the API, so
    /// [`Self::cancels`] does not list it).
    pub fn cancel_by_hand(&self, id: u64) {
        let mut state = self.state();
        let run = state.actions.run_mut(id);
        run.cancelled = Some(Instant::now());
    }

    /// Waits until at least `n` runs exist; whether they did within `limit`.
    pub fn wait_for_runs(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.state().actions.runs.len() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// When each run was cancelled through the API.
    pub fn cancels(&self) -> Vec<(u64, Instant)> {
        self.state().actions.cancels.clone()
    }

    /// Starts a new attempt of run `id` (a re-run) that follows `plan`.
    pub fn rerun(&self, id: u64, plan: RunPlan) {
        let mut state = self.state();
        let run = state.actions.run_mut(id);
        run.attempt += 1;
        run.plan = plan;
        run.created = Instant::now();
        run.created_at = jiff::Timestamp::now();
        run.cancelled = None;
    }

    /// Ends run `id` now (as the runner would when its last job ends), with `jobs` and the
    /// verdict artifact `verdict`: for a run whose plan leaves it running until told.
    pub fn finish_run(
        &self,
        id: u64,
        conclusion: &str,
        jobs: Vec<(String, String, String)>,
        verdict: Option<Vec<u8>>,
    ) {
        let mut state = self.state();
        let run = state.actions.run_mut(id);
        let ran = Instant::now().saturating_duration_since(run.start());
        run.plan.running = ran;
        conclusion.clone_into(&mut run.plan.conclusion);
        run.plan.jobs = jobs;
        run.plan.verdict = verdict;
    }

    /// Records that the jobs `jobs` (name, conclusion, log) of run `id` have ended while the run
    /// goes on, as the runner does job by job: the run's jobs list shows them completed, the
    /// rest in progress.
    pub fn end_jobs(&self, id: u64, jobs: Vec<(String, String, String)>) {
        let mut state = self.state();
        let run = state.actions.run_mut(id);
        run.ended_jobs = jobs.iter().map(|j| j.0.clone()).collect();
        run.plan.jobs = jobs;
    }

    /// The statuses set on `sha` in `repository`, oldest first.
    pub fn commit_statuses(&self, repository: &str, sha: &str) -> Vec<Value> {
        self.state()
            .actions
            .commit_statuses
            .get(&(repository.to_owned(), sha.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

fn create_run(
    state: &mut super::FakeState,
    (workflow_id, workflow): &(u64, FakeWorkflow),
    event: &str,
    values: &Map<String, Value>,
    prefix: &str,
) -> u64 {
    state.next_id += 1;
    let id = 9_000_000 + state.next_id;
    let group = workflow
        .concurrency
        .as_ref()
        .map(|g| render(g, values, prefix));
    let now = Instant::now();
    // A newer run in a group cancels the group's pending runs (GitHub's default, without
    // `queue: max`).
    if let Some(group) = &group {
        for run in &mut state.actions.runs {
            if run.group.as_ref() == Some(group)
                && run.repository == workflow.repository
                && run.cancelled.is_none()
                && now < run.start()
            {
                run.cancelled = Some(now);
            }
        }
    }
    let plan = (workflow.plan)(values);
    state.actions.runs.push(Run {
        id,
        workflow_id: *workflow_id,
        repository: workflow.repository.clone(),
        path: format!(".github/workflows/{}", workflow.file),
        name: workflow.file.trim_end_matches(".yml").to_owned(),
        event: event.to_owned(),
        display_title: render(&workflow.run_name, values, prefix),
        head_sha: "5f0c2d9e0c1b6a3b8f2e4d7c9a1b3c5d7e9f0a1b".to_owned(),
        created: now,
        created_at: jiff::Timestamp::now(),
        plan,
        attempt: 1,
        cancelled: None,
        group,
        inputs: values.clone(),
        ended_jobs: Vec::new(),
    });
    id
}
