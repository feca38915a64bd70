//! The run: prepare (the rollback proven possible), watch (signals handled), act on the decision
//! (roll back first, then record and notify), report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gantry_actions::{Annotation, Branding, Context, Level, Outcome, Tool, ToolSpec};
use gantry_oci::Client;

use crate::args::{Args, OnCancel};
use crate::decide::{Cause, Decision};
use crate::notify::{Notice, Webhook};
use crate::plan::{self, GitHubSide, NOTIFY_BUDGET, Ready, TagGuard, Target};
use crate::record::{self, Rollback};
use crate::report::{self, Report};
use crate::rollback::{self, RolledBack};
use crate::watch::{Watched, watch_guarded};

/// The canary-watch tool.
pub struct CanaryWatch;

impl Tool for CanaryWatch {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "canary-watch",
        description: "Watch the canary on a fixed tick; after enough failing ticks roll the environment back to the previous digest on its own, record it and notify.",
        branding: Branding {
            icon: "activity",
            color: "orange",
        },
        outputs: Report::SPEC,
        secret_inputs: &[
            "github-token",
            "registry-password",
            "identity-token",
            "key-password",
            "header",
            "prometheus-token",
            "prometheus-password",
            "webhook-url",
            "webhook-secret",
            "gitops-token",
            "argocd-token",
        ],
        action_defaults: gantry_args::ACTION_DEFAULTS,
        publish_action: true,
    };

    async fn run(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
        Box::pin(run(args, ctx)).await
    }
}

/// What acting on a decision did.
#[derive(Default)]
struct Acted {
    rolled_back: bool,
    /// The rollback commit (a GitOps environment).
    commit: Option<String>,
    repoint: Option<Duration>,
    requests: u64,
    lines: Vec<String>,
    superseded: Option<String>,
}

/// Everything ready before the first tick.
struct Prepared {
    schedule: crate::watch::Schedule,
    checks: plan::Checks,
    target: Target,
    client: Client,
    github: Option<GitHubSide>,
    ready: Ready,
    sha: Option<String>,
    /// A key's signer, loaded before the watch (a keyless one is asked for after the decision,
    /// so that a long watch does not outlive its OIDC token).
    key_identity: Option<gantry_sigstore::sign::Identity>,
    started_at: String,
    /// How a rollback's redeploy is triggered.
    hook: Option<crate::redeploy::Hook>,
    /// When the previous digest serves again.
    recovered_when: Option<crate::http::JsonCondition>,
    /// A GitOps environment's files (its rollback is a commit) and its Argo CD application.
    files: Option<Files>,
}

/// A GitOps environment's files and the Argo CD application that deploys them.
struct Files {
    repo: gantry_gitops::repo::Repo,
    argocd: Option<gantry_gitops::argocd::Deployer>,
}

/// The environment's GitOps files, reached with the GitOps token (default the GitHub token),
/// and its Argo CD application when the policy syncs or waits for it.
fn files(args: &Args, target: &Target, ctx: &Context) -> anyhow::Result<Option<Files>> {
    let Some(gitops) = &target.gitops else {
        return Ok(None);
    };
    let github_token = args.github.token.token()?;
    let api_url = args
        .github
        .github_api_url
        .as_deref()
        .or(ctx.github.api_url.as_deref());
    let repo = gitops
        .open(&gantry_gitops::repo::Access {
            token: args.gitops.token(github_token.as_ref()),
            api_url,
            username: args.gitops.gitops_username.as_deref(),
            ca_files: &args.registry.ca_files,
        })
        .map_err(|e| anyhow::anyhow!("{e}: give gitops-token (or github-token)"))?;
    let argocd = args
        .gitops
        .deployer(gitops.argocd.as_ref(), &args.registry.ca_files)?;
    Ok(Some(Files { repo, argocd }))
}

/// What happened after the tag moved back.
#[derive(Default)]
struct Aftermath {
    redeploy: Option<Result<String, String>>,
    recovered: Option<Result<Duration, String>>,
    /// The signal that stopped the redeploy or the wait for recovery.
    cancelled: Option<&'static str>,
}

impl Aftermath {
    /// A warning for each step that failed: the rollback stands either way.
    fn warnings(&self) -> Vec<Annotation> {
        let mut warnings = Vec::new();
        if let Some(Err(why)) = &self.redeploy {
            warnings.push(Annotation::new(
                Level::Warning,
                format!("the redeploy hook failed: {why}"),
            ));
        }
        if let Some(signal) = self.cancelled {
            warnings.push(Annotation::new(
                Level::Warning,
                format!("{signal} received after the rollback: the redeploy and the wait for recovery were stopped; the rollback stands and is recorded"),
            ));
        }
        if let Some(Err(why)) = &self.recovered {
            warnings.push(Annotation::new(
                Level::Warning,
                format!("the previous digest is not serving yet: {why}"),
            ));
        }
        warnings
    }

    /// The summary's lines on the redeploy and the recovery.
    fn summary(&self, recovered_when: Option<&str>) -> String {
        let mut text = String::new();
        match &self.redeploy {
            Some(Ok(what)) => {
                let _ = writeln!(text, "- redeploy: {}", what.replace('|', "\\|"));
            }
            Some(Err(why)) => {
                let _ = writeln!(text, "- redeploy **failed**: {}", why.replace('|', "\\|"));
            }
            None => {}
        }
        match &self.recovered {
            Some(Ok(took)) => {
                let _ = writeln!(
                    text,
                    "- the previous digest serves again ({}) {} ms after the decision",
                    recovered_when.unwrap_or_default(),
                    took.as_millis()
                );
            }
            Some(Err(why)) => {
                let _ = writeln!(text, "- **not serving yet**: {why}");
            }
            None => {}
        }
        text
    }
}

/// Checks every input and proves the rollback possible; `Ok(Err(outcome))` when the environment
/// no longer holds the expected digest.
async fn prepare(args: &Args, ctx: &Context) -> anyhow::Result<Result<Prepared, Outcome>> {
    let schedule = plan::schedule(args)?;
    let checks = plan::checks(args)?;
    let target = plan::target(args)?;
    let token = args.github.token.token()?;
    let mut references = vec![&target.tag];
    references.extend(target.aliases.iter());
    let client = args.registry.client(&references, token.as_ref())?;
    let github = plan::github(args, ctx)?;
    let key_identity = match (args.attest, &args.signing.key) {
        (true, Some(_)) => Some(args.signing.identity(|| ctx.id_token("sigstore")).await?),
        (true, None) => {
            anyhow::ensure!(
                args.signing.identity_token.is_some()
                    || args.signing.identity_token_file.is_some()
                    || ctx.github.has_oidc(),
                "attest needs a signer: key, or keyless with identity-token or GitHub's OIDC (permissions: id-token: write)"
            );
            None
        }
        (false, _) => None,
    };
    let hook = plan::hook(args, ctx)?;
    let recovered_when = args
        .recovered_when
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| anyhow::anyhow!("recovered-when: {e}"))?;
    let files = files(args, &target, ctx)?;
    let ready = match plan::prepare(
        args,
        &target,
        &client,
        github.as_ref(),
        files.as_ref().map(|f| &f.repo),
    )
    .await?
    {
        Ok(ready) => ready,
        Err(superseded) => {
            return Ok(Err(Outcome::failed(superseded.clone())
                .headline(superseded)
                .output("outcome", "superseded")));
        }
    };
    let sha = args
        .sha
        .clone()
        .or_else(|| ready.previous_deployment.as_ref().map(|d| d.sha.clone()))
        .or_else(|| ctx.github.sha.clone());
    anyhow::ensure!(
        !(args.rollback && args.deployment && github.is_some() && sha.is_none()),
        "recording a rollback needs the commit: sha (GITHUB_SHA in Actions), or deployment: false"
    );
    Ok(Ok(Prepared {
        schedule,
        checks,
        target,
        client,
        github,
        ready,
        sha,
        key_identity,
        started_at: now(),
        hook,
        recovered_when,
        files,
    }))
}

/// Now, in UTC with milliseconds and a fixed width, so that verdicts order as text.
fn now() -> String {
    let now = jiff::Timestamp::now();
    let seconds = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    format!(
        "{}.{:03}Z",
        seconds.to_string().trim_end_matches('Z'),
        now.subsec_millisecond()
    )
}

async fn run(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
    // Handlers go in before anything can change, so a cancel is never lost.
    let mut signals = gantry_actions::Signals::new().context("handling SIGINT and SIGTERM")?;
    let p = match prepare(&args, ctx).await? {
        Ok(prepared) => prepared,
        Err(outcome) => return Ok(outcome),
    };
    let guard = TagGuard {
        client: &p.client,
        kept: &p.ready.kept,
        tag: (&p.target.tag, &p.ready.canary),
    };
    // A GitOps environment has no tag to watch: its rollback commit expects the canary in the
    // files, so someone else's digest there stops it as superseded.
    let guard = p.files.is_none().then_some(&guard);
    let control = p.checks.control.as_deref();
    let watched = tokio::select! {
        watched = watch_guarded(&p.checks.checks, control, guard.map(|g| g as _), args.limits(), p.schedule) => watched,
        name = signals.next() => {
            return Ok(cancelled(&args, &p, name, ctx).await);
        }
    };
    let decided_at = now();
    let decided = Instant::now();
    let mut reason = report::reason(&watched);
    let mut acted = Acted::default();
    let roll = matches!(watched.decision, Decision::RollBack { .. }) && args.rollback;
    if roll {
        acted = roll_back(&args, &p, ctx).await;
        if let Some(moved) = &acted.superseded {
            let _ = write!(reason, "; the rollback found {moved}");
        }
    }
    let outcome_word = if acted.superseded.is_some() {
        "superseded"
    } else {
        report::outcome_word(watched.decision, args.rollback)
    };
    // Recorded, signed and notified after the tag moved: none of it can delay the rollback.
    let previous = p
        .ready
        .previous
        .as_ref()
        .map(|(d, _)| d.to_string())
        .unwrap_or_default();
    let notice = Notice {
        outcome: outcome_word.to_owned(),
        headline: headline(&p.target, &p.ready, outcome_word, &previous),
        environment: args.env.clone(),
        image: p.target.tag.name(),
        digest: p.ready.canary.to_string(),
        previous_digest: previous.clone(),
        reason: reason.clone(),
        decided_at: decided_at.clone(),
        run_url: ctx.github.run_url(),
    };
    let facts = crate::verdict::Facts {
        args: &args,
        tag: &p.target.tag,
        previous: &previous,
        watched: &watched,
        outcome: outcome_word,
        reason: &reason,
        started_at: &p.started_at,
        decided_at: &decided_at,
        run_url: ctx.github.run_url(),
    };
    let (deployment, notified, attested, aftermath) = tokio::join!(
        record_rollback(&args, &p, acted.rolled_back, &reason, &decided_at, ctx),
        notify(&args, &notice),
        sign_verdict(&args, ctx, &p, &facts),
        async {
            // A cancel now stops the redeploy's wait, never the records of the rollback.
            tokio::select! {
                after = aftermath(&args, &p, &notice, &acted, decided) => after,
                name = signals.next() => Aftermath {
                    cancelled: Some(name),
                    ..Aftermath::default()
                },
            }
        },
    );
    Ok(Ended {
        args: &args,
        target: &p.target,
        ready: &p.ready,
        watched: &watched,
        acted: &acted,
        notice: &notice,
        roll,
        aftermath: &aftermath,
    }
    .outcome(deployment, notified.as_ref(), attested))
}

/// The redeploy hook, then the wait for `recovered-when`, once the tag moved back.
async fn aftermath(
    args: &Args,
    p: &Prepared,
    notice: &Notice,
    acted: &Acted,
    decided: Instant,
) -> Aftermath {
    if !acted.rolled_back {
        return Aftermath::default();
    }
    let mut after = Aftermath::default();
    // The rollback commit is deployed by Argo CD: synced (when the policy says) and waited for.
    if let (Some(deployer), Some(commit)) = (
        p.files.as_ref().and_then(|f| f.argocd.as_ref()),
        &acted.commit,
    ) {
        use gantry_gitops::argocd::Deployed;
        let application = &deployer.application;
        after.redeploy = Some(match deployer.deploy(commit).await {
            Ok(Deployed::Ready { health, .. }) => Ok(format!(
                "Argo CD application {application} runs the rollback commit {commit}: Synced, {health}"
            )),
            Ok(Deployed::Requested) => Ok(format!(
                "Argo CD application {application}: sync to {commit} requested"
            )),
            Ok(Deployed::Failed { why }) => Err(format!(
                "Argo CD application {application} did not run {commit}: {why}"
            )),
            Ok(Deployed::TimedOut { last }) => Err(format!(
                "Argo CD application {application} did not run {commit} in time: last seen {last}"
            )),
            Err(error) => Err(error.to_string()),
        });
    }
    if let Some(hook) = &p.hook {
        let triggered = hook.trigger(notice).await;
        after.redeploy = Some(match (after.redeploy.take(), triggered) {
            (None, hook) => hook,
            (Some(Ok(synced)), Ok(hook)) => Ok(format!("{synced}; {hook}")),
            (Some(Err(why)), _) | (Some(Ok(_)), Err(why)) => Err(why),
        });
    }
    if let (Some(condition), Some(url)) = (&p.recovered_when, &args.health_url) {
        let client = gantry_http::roots(&args.registry.ca_files)
            .and_then(|roots| gantry_http::client(&roots, args.probe_timeout));
        after.recovered = Some(match client {
            Ok(client) => crate::redeploy::recovered(
                &client,
                url,
                condition,
                args.interval,
                args.recover_timeout,
            )
            .await
            .map(|_| decided.elapsed()),
            Err(e) => Err(e.to_string()),
        });
    }
    after
}

/// Signs the verdict onto the canary digest, when asked and when the outcome says something.
async fn sign_verdict(
    args: &Args,
    ctx: &Context,
    p: &Prepared,
    facts: &crate::verdict::Facts<'_>,
) -> Option<anyhow::Result<gantry_oci::Digest>> {
    if !args.attest {
        return None;
    }
    let result = crate::verdict::result(facts.outcome)?;
    let signed = async {
        let keyless;
        let identity = if let Some(identity) = &p.key_identity {
            identity
        } else {
            keyless = args.signing.identity(|| ctx.id_token("sigstore")).await?;
            &keyless
        };
        let http = args.registry.http_client()?;
        crate::verdict::attest(
            &p.client,
            &http,
            identity,
            &p.target.tag,
            &p.ready.canary,
            &crate::verdict::predicate(facts, result),
        )
        .await
    };
    Some(signed.await)
}

/// A watch that decided and acted, to report.
struct Ended<'a> {
    args: &'a Args,
    target: &'a Target,
    ready: &'a Ready,
    watched: &'a Watched,
    acted: &'a Acted,
    notice: &'a Notice,
    roll: bool,
    aftermath: &'a Aftermath,
}

impl Ended<'_> {
    fn outcome(
        &self,
        deployment: anyhow::Result<Option<u64>>,
        notified: Option<&Result<u16, String>>,
        attested: Option<anyhow::Result<gantry_oci::Digest>>,
    ) -> Outcome {
        let Self {
            args,
            watched,
            acted,
            notice,
            ..
        } = self;
        let mut annotations = Vec::new();
        let deployment_id = match deployment {
            Ok(id) => id,
            Err(error) => {
                annotations.push(Annotation::new(Level::Warning, format!("{error:#}")));
                None
            }
        };
        if let Some(Err(why)) = notified {
            annotations.push(Annotation::new(
                Level::Warning,
                format!("the notification was not delivered: {why}"),
            ));
        }
        let attestation = match attested {
            Some(Ok(digest)) => digest.to_string(),
            Some(Err(error)) => {
                annotations.push(Annotation::new(
                    Level::Warning,
                    format!("the canary verdict was not signed: {error:#}"),
                ));
                String::new()
            }
            None => String::new(),
        };
        let after = self.aftermath;
        annotations.extend(after.warnings());
        let report = Report {
            redeploy: match &after.redeploy {
                Some(Ok(what)) => what.clone(),
                Some(Err(why)) => format!("failed: {why}"),
                None => String::new(),
            },
            recover_ms: match &after.recovered {
                Some(Ok(took)) => took.as_millis().to_string(),
                _ => String::new(),
            },
            attestation_digest: attestation,
            outcome: notice.outcome.clone(),
            digest: notice.digest.clone(),
            previous_digest: notice.previous_digest.clone(),
            rolled_back: acted.rolled_back.to_string(),
            reason: notice.reason.clone(),
            decide_ms: watched.decided_at.as_millis().to_string(),
            repoint_ms: acted
                .repoint
                .map(|d| d.as_millis().to_string())
                .unwrap_or_default(),
            rollback_requests: if self.roll {
                acted.requests.to_string()
            } else {
                String::new()
            },
            ticks: watched
                .ticks
                .iter()
                .filter(|t| t.counted)
                .count()
                .to_string(),
            failures: watched
                .ticks
                .iter()
                .rev()
                .find(|t| t.counted)
                .map_or(0, |t| t.streaks.total_failures)
                .to_string(),
            deployment_id: deployment_id.map(|id| id.to_string()).unwrap_or_default(),
            measurements: serde_json::to_string(&watched.ticks).unwrap_or_default(),
        };
        let summary = summary(self, deployment_id, notified);
        let headline = format!("{}: {}", notice.headline, notice.reason);
        let mut outcome = match (watched.decision, &acted.superseded) {
            (Decision::Healthy { .. }, None) => Outcome::success(),
            (Decision::Hold, None) => Outcome::undecided(headline.clone()),
            (
                Decision::RollBack {
                    cause: Cause::Errors,
                },
                None,
            ) if !args.rollback => Outcome::undecided(headline.clone()),
            _ => Outcome::failed(headline.clone()),
        }
        .headline(headline)
        .with_outputs(&report)
        .summary(summary);
        for annotation in annotations {
            outcome = outcome.annotate(annotation);
        }
        outcome
    }
}

fn headline(target: &Target, ready: &Ready, outcome: &str, previous: &str) -> String {
    let tag = &target.shown;
    let canary = &ready.canary;
    match outcome {
        "healthy" => format!("the canary {canary} at {tag} is healthy"),
        "rolled-back" => format!("rolled {tag} back from {canary} to {previous}"),
        "would-roll-back" => {
            format!("the canary {canary} at {tag} failed; rollback is off, so it was left")
        }
        "hold" => format!("the canary {canary} at {tag} could not be judged: held as it is"),
        "inconclusive" => {
            format!("the canary {canary} at {tag} gave nothing to judge by: left as it is")
        }
        "superseded" => format!(
            "{tag} was moved by someone else: the watch of {canary} stopped, nothing rolled back"
        ),
        other => format!("{tag}: {other}"),
    }
}

/// Rolls the environment back: its GitOps files, or its tag and aliases.
async fn roll_back(args: &Args, p: &Prepared, ctx: &Context) -> Acted {
    match &p.files {
        Some(files) => roll_back_files(args, p, &files.repo, ctx).await,
        None => roll_back_tags(&p.client, &p.ready).await,
    }
}

/// Writes the previous digest back into the GitOps files as one commit, over the canary: files
/// that hold another digest by now were superseded and are not touched.
async fn roll_back_files(
    args: &Args,
    p: &Prepared,
    repo: &gantry_gitops::repo::Repo,
    ctx: &Context,
) -> Acted {
    use gantry_gitops::github::Landed;
    let started = Instant::now();
    let mut acted = Acted::default();
    let Some((previous, _)) = &p.ready.previous else {
        return acted;
    };
    let (canary, previous) = (p.ready.canary.to_string(), previous.to_string());
    let image = p.target.tag.name();
    let run = ctx.github.run_url();
    let message = |_: Option<&str>| {
        gantry_gitops::message::Message {
            environment: &args.env,
            source_environment: None,
            image: &image,
            digest: &previous,
            previous: Some(&canary),
            run: run.as_deref(),
        }
        .rollback_text()
    };
    let committer = gantry_github::Person {
        name: "gantry".to_owned(),
        email: "gantry@users.noreply.github.com".to_owned(),
    };
    let landed = repo
        .commit(&gantry_gitops::repo::Commit {
            digest: &previous,
            expected: Some(&canary),
            message: &message,
            author: None,
            committer: &committer,
        })
        .await;
    match landed {
        Ok(Landed::Committed {
            commit, changes, ..
        }) => {
            acted.rolled_back = true;
            acted.repoint = Some(started.elapsed());
            acted.lines.push(format!(
                "`{}` → `{previous}` by commit `{commit}` ({} value(s)) in {} ms",
                repo.describe(),
                changes.len(),
                started.elapsed().as_millis()
            ));
            acted.commit = Some(commit);
        }
        Ok(Landed::Unchanged { .. }) => {
            acted.lines.push(format!(
                "`{}` holds `{previous}` already: nothing written",
                repo.describe()
            ));
        }
        Ok(Landed::Conflict { found, commit, .. }) => {
            let moved = format!(
                "{} holds {} by now{}",
                repo.describe(),
                found.as_deref().unwrap_or("no digest"),
                commit
                    .map(|c| format!(" (commit {}: {})", c.sha, c.subject))
                    .unwrap_or_default()
            );
            acted.lines.push(format!("left alone: {moved}"));
            acted.superseded = Some(moved);
        }
        Err(error) => {
            acted.lines.push(format!(
                "`{}` **not rolled back**: {error}",
                repo.describe()
            ));
        }
    }
    acted
}

/// Points the tag and every alias holding the canary back at the kept manifest.
async fn roll_back_tags(client: &Client, ready: &Ready) -> Acted {
    let started = Instant::now();
    let mut acted = Acted::default();
    for (index, kept) in ready.kept.iter().enumerate() {
        match rollback::roll_back(client, kept).await {
            Ok(RolledBack::Repointed { took, requests }) => {
                if index == 0 {
                    acted.repoint = Some(took);
                    acted.rolled_back = true;
                }
                acted.requests += requests;
                acted.lines.push(format!(
                    "`{}` → `{}` in {} ms ({requests} requests), read back",
                    kept.tag,
                    kept.previous.digest,
                    took.as_millis()
                ));
            }
            Ok(RolledBack::Superseded { now }) => {
                let moved = format!("{} moved to {now} by someone else", kept.tag);
                acted
                    .lines
                    .push(format!("`{}` left alone: {moved}", kept.tag));
                if index == 0 {
                    acted.superseded = Some(moved);
                    // The environment is someone else's now: its aliases are not ours to move.
                    break;
                }
            }
            Err(error) => {
                acted
                    .lines
                    .push(format!("`{}` **not rolled back**: {error}", kept.tag));
            }
        }
    }
    if acted.repoint.is_none() && acted.rolled_back {
        acted.repoint = Some(started.elapsed());
    }
    acted
}

async fn record_rollback(
    args: &Args,
    p: &Prepared,
    rolled_back: bool,
    reason: &str,
    decided_at: &str,
    ctx: &Context,
) -> anyhow::Result<Option<u64>> {
    let (target, ready) = (&p.target, &p.ready);
    let (Some(side), Some(sha), Some((previous, _)), true, true) = (
        p.github.as_ref(),
        p.sha.as_deref(),
        &ready.previous,
        rolled_back,
        args.deployment,
    ) else {
        return Ok(None);
    };
    let id = record::record(
        &side.github,
        &side.repository,
        &Rollback {
            environment: &args.env,
            failed: ready.current_deployment.as_ref(),
            sha,
            digest: previous,
            rolled_back_from: &ready.canary,
            reason,
            decided_at,
            log_url: ctx.github.run_url(),
            production: target.production,
        },
    )
    .await?;
    Ok(Some(id))
}

/// Sends the webhook within the budget; `None` when there is none.
async fn notify(args: &Args, notice: &Notice) -> Option<Result<u16, String>> {
    let url = args.webhook_url.clone()?;
    let roots = match gantry_http::roots(&args.registry.ca_files) {
        Ok(roots) => roots,
        Err(e) => return Some(Err(e.to_string())),
    };
    let client = match gantry_http::client(&roots, Duration::from_secs(3)) {
        Ok(client) => client,
        Err(e) => return Some(Err(e.to_string())),
    };
    let webhook = Webhook {
        url,
        format: args.webhook_format,
        secret: args.webhook_secret.clone(),
        client,
    };
    Some(
        tokio::time::timeout(NOTIFY_BUDGET, webhook.send(notice))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", NOTIFY_BUDGET.as_secs()))),
    )
}

/// A signal before the decision: leave the canary, or roll it back (`on-cancel`).
async fn cancelled(args: &Args, p: &Prepared, signal: &str, ctx: &Context) -> Outcome {
    let (target, ready) = (&p.target, &p.ready);
    let can_roll_back = !ready.kept.is_empty() || (p.files.is_some() && ready.previous.is_some());
    let (word, text) = if args.on_cancel == OnCancel::Rollback && can_roll_back {
        let acted = roll_back(args, p, ctx).await;
        (
            if acted.rolled_back {
                "rolled-back"
            } else {
                "cancelled"
            },
            format!(
                "{signal} received: the watch was cancelled and on-cancel rolled back: {}",
                acted.lines.join("; ")
            ),
        )
    } else {
        (
            "cancelled",
            format!(
                "{signal} received: the watch was cancelled before a decision; {} left at {}",
                target.shown, ready.canary
            ),
        )
    };
    Outcome::failed(text.clone())
        .headline(text)
        .output("outcome", word)
        .output("digest", ready.canary.to_string())
}

fn summary(
    ended: &Ended<'_>,
    deployment: Option<u64>,
    notified: Option<&Result<u16, String>>,
) -> String {
    let Ended {
        args,
        target,
        ready,
        watched,
        acted,
        notice,
        ..
    } = ended;
    let mut text = format!(
        "## gantry canary-watch\n\n**{}**: {}\n\n{}\n\n| | |\n|---|---|\n| environment | {} (`{}`) |\n| canary | `{}` |\n",
        notice.outcome,
        notice.headline,
        notice.reason.replace('|', "\\|"),
        args.env,
        target.shown,
        ready.canary
    );
    if let Some((previous, from)) = &ready.previous {
        let _ = writeln!(text, "| previous | `{previous}` (from {from}) |");
    }
    for who in &ready.previous_signed_by {
        let _ = writeln!(text, "| previous signed by | {who} |");
    }
    for (alias, at) in &ready.other_aliases {
        let _ = writeln!(
            text,
            "| alias left alone | `{alias}` holds {} |",
            at.as_ref()
                .map_or_else(|| "nothing".to_owned(), |d| format!("`{d}`"))
        );
    }
    let limits = args.limits();
    let _ = writeln!(
        text,
        "| schedule | every {} ms, probe timeout {} ms, {} counted ticks |\n| limits | {} failures in a row{}, {} errors in a row → {}, {} inconclusive in a row{}{} |\n| decided | after {} ms |",
        args.interval.as_millis(),
        args.probe_timeout.as_millis(),
        watched.ticks.iter().filter(|t| t.counted).count(),
        limits.consecutive_failures,
        limits
            .max_total_failures
            .map(|n| format!(", {n} in all"))
            .unwrap_or_default(),
        limits.consecutive_errors,
        if args.on_error == crate::args::OnErrorArg::Hold {
            "hold"
        } else {
            "rollback"
        },
        limits.consecutive_inconclusive,
        limits
            .consecutive_successes
            .map(|n| format!(", healthy after {n} passes in a row"))
            .unwrap_or_default(),
        if limits.strict { ", strict" } else { "" },
        watched.decided_at.as_millis()
    );
    if !acted.lines.is_empty() {
        text.push_str("\n### Rollback\n\n");
        for line in &acted.lines {
            let _ = writeln!(text, "- {line}");
        }
    }
    text.push_str(&ended.aftermath.summary(args.recovered_when.as_deref()));
    if let Some(id) = deployment {
        let _ = writeln!(text, "\nRecorded as GitHub Deployment {id}.");
    }
    match notified {
        Some(Ok(status)) => {
            let _ = writeln!(text, "\nWebhook delivered (HTTP {status}).");
        }
        Some(Err(why)) => {
            let _ = writeln!(text, "\nWebhook **not** delivered: {why}.");
        }
        None => {}
    }
    text.push_str(&report::ticks_table(watched));
    text
}
