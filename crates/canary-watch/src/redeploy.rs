//! After the tag moved back: a moved tag is not yet a running pod. An optional `on-rollback` hook
//! triggers the redeploy — a command on the runner (isolated: it sees `GANTRY_*` and what
//! `on-rollback-env` names, never gantry's tokens), an HTTP call (a `CloudEvents` event of type
//! `dev.gantry.canary.redeploy`, signed like the webhook), or a `workflow_dispatch` — and an
//! optional `recovered-when` condition on the health endpoint says when the previous digest is
//! really serving again. The times are reported apart: decide, re-point, recover.

use std::time::{Duration, Instant};

use gantry_actions::isolated::{self, Isolated};
use gantry_github::{GitHub, Repository};
use serde_json::{Map, Value};

use crate::http::JsonCondition;
use crate::notify::{Notice, Webhook};

/// How the redeploy is triggered.
pub enum Hook {
    /// A command on the runner.
    Run(Isolated),
    /// An HTTP call.
    Call(Webhook),
    /// A `workflow_dispatch`.
    Dispatch {
        /// The client.
        github: GitHub,
        /// The repository holding the workflow.
        repository: Repository,
        /// The workflow file or id.
        workflow: String,
        /// The branch or tag it runs on.
        git_ref: String,
    },
}

impl Hook {
    /// Triggers the redeploy of `notice.previous_digest`; `Err` says why it failed.
    pub async fn trigger(&self, notice: &Notice) -> Result<String, String> {
        match self {
            Self::Run(command) => {
                let variables = [
                    ("GANTRY_DIGEST", notice.previous_digest.clone()),
                    ("GANTRY_ROLLED_BACK_FROM", notice.digest.clone()),
                    ("GANTRY_ENVIRONMENT", notice.environment.clone()),
                    ("GANTRY_IMAGE", notice.image.clone()),
                    ("GANTRY_REASON", notice.reason.clone()),
                ];
                isolated::run(command, &variables)
                    .await
                    .map(|()| format!("`{}` succeeded", command.run))
            }
            Self::Call(webhook) => {
                let mut redeploy = notice.clone();
                "redeploy".clone_into(&mut redeploy.outcome);
                webhook
                    .send(&redeploy)
                    .await
                    .map(|status| format!("the redeploy call answered HTTP {status}"))
            }
            Self::Dispatch {
                github,
                repository,
                workflow,
                git_ref,
            } => {
                let mut inputs = Map::new();
                for (key, value) in [
                    ("digest", &notice.previous_digest),
                    ("rolled_back_from", &notice.digest),
                    ("environment", &notice.environment),
                ] {
                    inputs.insert(key.to_owned(), Value::String(value.clone()));
                }
                github
                    .dispatch_workflow(repository, workflow, git_ref, &inputs)
                    .await
                    .map(|dispatched| match dispatched {
                        gantry_github::Dispatched::Run { id, .. } => {
                            format!("{workflow} dispatched in {repository}: run {id}")
                        }
                        gantry_github::Dispatched::Accepted => {
                            format!("{workflow} dispatched in {repository}")
                        }
                    })
                    .map_err(|e| format!("dispatching {workflow} in {repository}: {e}"))
            }
        }
    }
}

/// Polls `url` every `interval` until its body satisfies `condition`, for at most `timeout`:
/// `Ok(elapsed)` once it does, `Err` with the last thing seen.
pub async fn recovered(
    client: &reqwest::Client,
    url: &str,
    condition: &JsonCondition,
    interval: Duration,
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = String::from("no answer yet");
    while started.elapsed() < timeout {
        ticker.tick().await;
        match client.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match crate::http::read_bounded(response).await {
                    Ok(body) => {
                        let (verdict, found) = condition.judge(&body);
                        if verdict == crate::decide::Verdict::Pass {
                            return Ok(started.elapsed());
                        }
                        last = format!("HTTP {status}, {found}");
                    }
                    Err(error) => last = gantry_http::explain(&error),
                }
            }
            Err(error) => last = gantry_http::explain(&error),
        }
    }
    Err(format!(
        "{condition} did not hold within {} s (last: {last})",
        timeout.as_secs()
    ))
}
