//! The run: the caller (dispatch, find, wait, end cleanly, cancel on a signal) or the reporter.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gantry_actions::{Branding, Context, Outcome, Tool, ToolSpec};
use gantry_github::{GitHub, Options, Repository, RunStatus};

use crate::args::{Args, Command};
use crate::caller::{Caller, Ended, Known, Target};
use crate::correlation::correlation_id;
use crate::payload::{Payload, parse_inputs};
use crate::report::{self, Seen};

/// The most the remote run's cancellation may take after a signal: the runner kills the step
/// 10 s after its SIGINT.
const CANCEL_BUDGET: Duration = Duration::from_secs(2);

/// The dispatch-integration tool.
pub struct DispatchIntegration;

impl Tool for DispatchIntegration {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "dispatch-integration",
        description: "Ask the integration repository to test this exact digest, find its run exactly, wait cheaply and bring the verdict back; or report an integration run's verdict to the service repository.",
        branding: Branding {
            icon: "git-pull-request",
            color: "blue",
        },
        outputs: report::Report::SPEC,
        secret_inputs: &[
            "github-token",
            "source-token",
            "registry-password",
            "identity-token",
            "key-password",
        ],
        action_defaults: gantry_args::ACTION_DEFAULTS,
        publish_action: true,
    };

    async fn run(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
        match args.command {
            Command::Dispatch => dispatch(&args, ctx).await,
            Command::Report => {
                let github = client(&args, ctx, args.token().token()?)?;
                let source = match &args.source_token {
                    Some(token) => client(&args, ctx, Some(token.clone()))?,
                    None => client(&args, ctx, args.token().token()?)?,
                };
                crate::reporter::report(&args, ctx, &github, &source).await
            }
        }
    }
}

fn client(
    args: &Args,
    ctx: &Context,
    token: Option<gantry_secret::Secret>,
) -> anyhow::Result<GitHub> {
    let token = token.context(
        "a GitHub token is needed: github-token (a PAT or GitHub App token with actions: write on the integration repository to dispatch; GITHUB_TOKEN cannot dispatch to another repository)",
    )?;
    let mut options = Options::new(token);
    options.api_url = args
        .github
        .github_api_url
        .clone()
        .or_else(|| ctx.github.api_url.clone());
    options.ca_files.clone_from(&args.registry.ca_files);
    options.timeout = args.request_timeout;
    Ok(GitHub::new(options)?)
}

async fn dispatch(args: &Args, ctx: &Context) -> anyhow::Result<Outcome> {
    // Everything is checked before the first request.
    let (repository, target, correlation, digest) = plan(args, ctx)?;
    let github = client(args, ctx, args.token().token()?)?;
    let known: Known = Arc::new(Mutex::new(None));
    let caller = Caller {
        github: &github,
        repository: repository.clone(),
        target,
        correlation_id: correlation.clone(),
        digest: digest.clone(),
        started: Instant::now(),
        first_poll: args.poll_interval,
        started_at: jiff::Timestamp::now(),
        known: known.clone(),
    };
    let mut seen = Seen {
        repository: repository.to_string(),
        run_id: None,
        run_url: None,
        run_attempt: None,
        conclusion: String::new(),
        correlation_id: correlation.clone(),
        digest,
        verdict: None,
        failed_jobs: Vec::new(),
        failure: None,
        notes: Vec::new(),
    };
    // Handlers go in before the dispatch, so a signal during it is not lost (in a container
    // action gantry is PID 1: without handlers, SIGINT and SIGTERM would be ignored).
    let mut signals = gantry_actions::Signals::new().context("handling SIGINT and SIGTERM")?;
    let work = async {
        let named = caller.dispatch(args.queue_timeout).await?;
        caller
            .wait(named, args.wait, args.timeout, args.queue_timeout)
            .await
    };
    let ended = tokio::select! {
        result = work => result?,
        name = signals.next() => {
            let started = Instant::now();
            let cancelled = tokio::time::timeout(CANCEL_BUDGET, cancel_known(&caller, &known)).await;
            let id = *known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.run_id = id;
            "cancelled".clone_into(&mut seen.conclusion);
            seen.failure = Some(match (id, cancelled) {
                (Some(id), Ok(true)) => format!(
                    "{name} received: integration run {id} cancelled ({} ms)",
                    started.elapsed().as_millis()
                ),
                (Some(id), _) => format!("{name} received: integration run {id} could not be cancelled in time"),
                (None, _) => format!("{name} received before the integration run was found: it may still run (correlation id {correlation})"),
            });
            return Ok(report::caller_outcome(&seen));
        }
    };
    finish(&caller, args, ended, &mut seen).await?;
    Ok(report::caller_outcome(&seen))
}

/// The dispatch, checked against GitHub's limits: repository, target, correlation id, digest.
fn plan(args: &Args, ctx: &Context) -> anyhow::Result<(Repository, Target, String, String)> {
    let repository: Repository = args
        .repository
        .as_deref()
        .context("repository is needed")?
        .parse()?;
    let image = args.image.clone().context("image is needed")?;
    let digest = args
        .digest
        .as_ref()
        .context("digest is needed")?
        .to_string();
    let source_repository = args
        .source_repository
        .clone()
        .or_else(|| ctx.github.repository.clone())
        .context("source-repository is needed outside GitHub Actions")?;
    let source_commit = args
        .source_commit
        .clone()
        .or_else(|| ctx.github.sha.clone())
        .context("source-commit is needed outside GitHub Actions")?;
    let correlation = correlation_id(
        &source_repository,
        &source_commit,
        &digest,
        ctx.github.run_id,
        ctx.github.run_attempt,
    );
    let payload = Payload {
        image,
        digest: digest.clone(),
        source_repository,
        source_commit,
        source_run_url: ctx.github.run_url().unwrap_or_default(),
        correlation_id: correlation.clone(),
    };
    let extra = parse_inputs(args.inputs.as_deref().unwrap_or_default())?;
    let target = match (&args.workflow, &args.event_type) {
        (Some(workflow), None) => Target::Workflow {
            workflow: workflow.clone(),
            git_ref: args.git_ref.clone(),
            inputs: payload.workflow_inputs(&extra)?,
        },
        (None, Some(event_type)) => Target::Event {
            event_type: event_type.clone(),
            payload: payload.client_payload(event_type, &extra)?,
        },
        _ => anyhow::bail!(
            "one of workflow (workflow_dispatch) or event-type (repository_dispatch) is needed"
        ),
    };
    Ok((repository, target, correlation, digest))
}

/// Cancels the run if it is known, or finds it first (one search) if it was dispatched.
async fn cancel_known(caller: &Caller<'_>, known: &Known) -> bool {
    let id = *known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = match id {
        Some(id) => Some(id),
        None => caller
            .search(&mut None)
            .await
            .ok()
            .flatten()
            .map(|run| run.id),
    };
    if let Some(id) = id {
        *known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id);
        caller.cancel(id).await
    } else {
        false
    }
}

async fn finish(
    caller: &Caller<'_>,
    args: &Args,
    ended: Ended,
    seen: &mut Seen,
) -> anyhow::Result<()> {
    let run = match ended {
        Ended::Found(run) => {
            note_run(seen, &run);
            return Ok(());
        }
        Ended::QueueTimeout(run) => {
            "queue_timeout".clone_into(&mut seen.conclusion);
            let Some(run) = run else {
                seen.failure = Some(format!(
                    "no integration run named {} within {} s: does the workflow's run-name carry the correlation id?",
                    caller.correlation_id,
                    args.queue_timeout.as_secs()
                ));
                return Ok(());
            };
            note_run(seen, &run);
            let cancelled = args.cancel_on_timeout && caller.cancel(run.id).await;
            seen.failure = Some(format!(
                "integration run {} did not start within {} s{}",
                run.id,
                args.queue_timeout.as_secs(),
                if cancelled { "; cancelled" } else { "" }
            ));
            return Ok(());
        }
        Ended::TimedOut(run) => {
            note_run(seen, &run);
            "timed_out".clone_into(&mut seen.conclusion);
            let cancelled = args.cancel_on_timeout && caller.cancel(run.id).await;
            seen.failure = Some(format!(
                "integration run {} did not finish within {} s{}",
                run.id,
                args.timeout.as_secs(),
                if cancelled {
                    "; cancelled"
                } else {
                    "; left running"
                }
            ));
            return Ok(());
        }
        Ended::Completed(run) => run,
    };
    note_run(seen, &run);
    debug_assert_eq!(run.status, Some(RunStatus::Completed));
    let conclusion = run.conclusion.clone().unwrap_or_default();
    seen.conclusion.clone_from(&conclusion);
    if conclusion == "cancelled"
        && let Some(groups) = caller.superseded(&run).await?
    {
        "superseded".clone_into(&mut seen.conclusion);
        seen.failure = Some(format!(
            "integration run {} was cancelled: a newer run in its concurrency group ({groups}) replaced it",
            run.id
        ));
        seen.notes.push("Give the integration workflow a concurrency group per service (`group: integration-${{ inputs.source_repository }}`) or `queue: max`, so that one service's dispatch never cancels another's.".to_owned());
        return Ok(());
    }
    if conclusion != "success" {
        seen.failed_jobs = caller.failed_jobs(&run, args.log_tail_lines).await?;
        seen.failure = Some(format!("integration run {} concluded {conclusion}", run.id));
    }
    match caller.verdict(&run).await {
        Ok(Some(verdict)) => {
            if conclusion == "success" && !verdict.passed() {
                seen.failure = Some(format!(
                    "integration run {} succeeded, but its verdict is {}",
                    run.id, verdict.verdict
                ));
            }
            seen.verdict = Some(verdict);
        }
        Ok(None) if conclusion == "success" => {
            seen.failure = Some(format!(
                "integration run {} succeeded without a verdict: no {} artifact (the integration workflow ends with `dispatch-integration report` and uploads {})",
                run.id,
                crate::verdict::VERDICT_ARTIFACT,
                crate::VERDICT_FILE
            ));
        }
        Ok(None) => {}
        Err(error) if conclusion == "success" => {
            seen.failure = Some(format!("{error:#}"));
        }
        Err(error) => seen.notes.push(format!("{error:#}")),
    }
    Ok(())
}

fn note_run(seen: &mut Seen, run: &gantry_github::WorkflowRun) {
    seen.run_id = Some(run.id);
    seen.run_url = Some(run.html_url.clone());
    seen.run_attempt = Some(run.run_attempt);
}
