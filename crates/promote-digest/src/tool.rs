//! The run: check the path and the source, verify the signature, run the gates, copy by digest,
//! move the tag last, re-read it.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use gantry_actions::Secret;
use gantry_actions::{Annotation, Branding, Context, Level, Outcome, Tool, ToolSpec};
use gantry_github::DeploymentState;
use gantry_oci::{Client, CopyOptions, Digest, Reference};
use gantry_sigstore::policy::SignaturePolicy;

use crate::args::Args;
use crate::gates;
use crate::github::{GitHubSide, Inputs};
use crate::gitops::{GitOpsSide, Said, Wrote};
use crate::policy::{Allowed, DEFAULT_PATH, Gate, Policy, PolicyError};
use crate::report::{self, Refusal, Report};
use gantry_gitops::pull::Proposed;

/// The promote-digest tool.
pub struct PromoteDigest;

impl Tool for PromoteDigest {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "promote-digest",
        description: "Point an environment at a digest that passed the environment before it, without rebuilding.",
        branding: Branding {
            icon: "arrow-up-circle",
            color: "green",
        },
        outputs: Report::SPEC,
        secret_inputs: &[
            "github-token",
            "registry-password",
            "gitops-token",
            "argocd-token",
        ],
        action_defaults: gantry_args::ACTION_DEFAULTS,
        publish_action: true,
    };

    async fn run(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
        promote(args, ctx).await
    }
}

/// What a promotion will do, once the policy allows it.
struct Plan {
    digest: Digest,
    source: Reference,
    target: Reference,
    /// The target environment's alias tags, moved with it.
    aliases: Vec<Reference>,
    gates: Vec<Gate>,
    allowed: Option<Allowed>,
    require_signature: Option<SignaturePolicy>,
    require_attestations: Vec<String>,
    /// The target is the last environment: GitHub marks its deployments as production.
    production: bool,
    /// The target is a registry tag (else only GitOps files).
    registry: bool,
    /// The target's GitOps files.
    gitops: Option<gantry_policy::GitOps>,
    /// The source's GitOps files, when the source has no registry tag (read, never written).
    source_files: Option<gantry_policy::GitOps>,
}

/// Reads the policy and the inputs; `Ok(Err(refusal))` when the policy forbids the path.
fn plan(args: &Args) -> anyhow::Result<Result<Plan, Refusal>> {
    let (path, explicit) = match &args.policy {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let policy = Policy::load(&path, explicit)?;
    let (digest, image) = (args.digest.clone(), args.image.clone());
    let promotion = match policy.promotion(&args.source_env, &args.target_env) {
        Ok(promotion) => promotion,
        Err(forbidden @ PolicyError::Forbidden { .. }) => {
            return Ok(Err(Refusal::Forbidden(forbidden.to_string())));
        }
        Err(other) => return Err(other.into()),
    };
    // A source without a registry tag holds the digest in its GitOps files: read there.
    let source_files = {
        let source_env = policy.environment(&args.source_env)?;
        source_env
            .gitops
            .clone()
            .filter(|_| !source_env.registry)
            .map(|mut g| {
                g.argocd = None;
                g
            })
    };
    let source = policy.reference(&args.source_env, &image, &digest)?;
    let target = policy.reference(&args.target_env, &image, &digest)?;
    let aliases = policy.aliases(&args.target_env, &image, &digest)?;
    Ok(Ok(Plan {
        digest,
        source,
        target,
        aliases,
        gates: promotion.gates.clone(),
        allowed: promotion.allowed.clone(),
        require_signature: promotion.require_signature.clone(),
        require_attestations: promotion.require_attestations.clone(),
        production: policy
            .environments
            .last()
            .is_some_and(|last| last.name == args.target_env),
        registry: policy.environment(&args.target_env)?.registry,
        gitops: policy.environment(&args.target_env)?.gitops.clone(),
        source_files,
    }))
}

fn github_side(
    args: &Args,
    token: Option<&Secret>,
    ctx: &Context,
) -> anyhow::Result<Option<GitHubSide>> {
    let Some(token) = token else {
        return Ok(None);
    };
    let inputs = Inputs {
        token,
        api_url: args.github.github_api_url.as_deref(),
        repository: args.repository.as_deref(),
        actor: args.actor.as_deref(),
        sha: args.sha.as_deref(),
        ca_files: &args.registry.ca_files,
    };
    Ok(Some(GitHubSide::new(&inputs, &ctx.github)?))
}

/// The target's GitOps side, checked before anything moves (the GitOps token defaults to the
/// GitHub token).
fn gitops_side(
    args: &Args,
    gitops: Option<&gantry_policy::GitOps>,
    token: Option<&Secret>,
    ctx: &Context,
) -> anyhow::Result<Option<GitOpsSide>> {
    let token = args.gitops.token(token);
    gitops
        .map(|g| {
            GitOpsSide::new(
                g,
                token,
                args.github
                    .github_api_url
                    .as_deref()
                    .or(ctx.github.api_url.as_deref()),
                args.gitops.gitops_username.as_deref(),
                &args.registry.ca_files,
                args.actor
                    .as_deref()
                    .or(ctx.github.triggering_actor.as_deref())
                    .or(ctx.github.actor.as_deref()),
                &args.gitops,
            )
        })
        .transpose()
}

async fn promote(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
    let plan = match plan(&args)? {
        Ok(plan) => plan,
        Err(forbidden) => return Ok(forbidden.outcome(String::new())),
    };
    let path = format!("{} -> {}", args.source_env, args.target_env);
    let token = args.github.token.token()?;
    let github = github_side(&args, token.as_ref(), ctx)?;
    // Known before anything happens, so a missing input changes nothing.
    let recorder = github
        .as_ref()
        .filter(|_| args.deployment && !args.dry_run)
        .map(GitHubSide::recorder)
        .transpose()?;
    let gitops = gitops_side(&args, plan.gitops.as_ref(), token.as_ref(), ctx)?;
    let source_files = gitops_side(&args, plan.source_files.as_ref(), token.as_ref(), ctx)?;
    let who = match (&plan.allowed, &github) {
        (None, _) => None,
        (Some(allowed), None) => anyhow::bail!(
            "promotion {path} is restricted to {allowed}; give --github-token (with --repository and --actor outside Actions) so gantry can check it: refusing to promote unchecked"
        ),
        (Some(allowed), Some(github)) => match github.check(allowed, &path).await? {
            Ok(answer) => Some(answer),
            Err(refusal) => return Ok(Refusal::NotAllowed(refusal).outcome(String::new())),
        },
    };
    let client = args
        .registry
        .client(&[&plan.source, &plan.target], token.as_ref())?;
    let mut run = Run {
        args: &args,
        ctx,
        plan: &plan,
        client: &client,
        summary: String::new(),
        previous_digest: String::new(),
        signed_by: None,
        gitops: gitops.as_ref(),
        source_files: source_files.as_ref(),
        gitops_commit: None,
        gitops_previous: None,
        gitops_pull: None,
        gitops_head: None,
        argocd_revision: None,
        warnings: Vec::new(),
    };
    match run.check_source_and_target(who.as_deref()).await? {
        Next::Proceed => {}
        Next::NothingToDo => return run.nothing_to_do().await,
        Next::Refused(refusal) => return Ok(refusal.outcome(run.summary)),
    }
    let Some(recorder) = recorder else {
        let outcome = match run.gate_and_copy().await? {
            Ok(()) => run.finish(run.gitops_pull.is_none(), None),
            Err(refusal) => refusal.outcome(run.summary),
        };
        return Ok(if args.deployment && !args.dry_run && github.is_none() {
            outcome.annotate(Annotation::new(
                Level::Notice,
                "not recorded as a GitHub Deployment: no GitHub token was given (pass github-token, or deployment: false to say you want none)",
            ))
        } else {
            outcome
        });
    };
    record_and_promote(&mut run, &recorder, gitops.as_ref()).await
}

/// Records the promotion as a GitHub Deployment around the gates and the move. A registry target
/// is recorded first (`in_progress` while the gates run); a GitOps target once its commit exists,
/// so that the deployment's payload names the commit (and the pull request) with the files.
async fn record_and_promote(
    run: &mut Run<'_>,
    recorder: &crate::github::Recorder<'_>,
    gitops: Option<&GitOpsSide>,
) -> anyhow::Result<Outcome> {
    let (args, plan) = (run.args, run.plan);
    let path = format!("{} -> {}", args.source_env, args.target_env);
    let payload = |run: &Run<'_>| {
        serde_json::json!({
            "image": args.image.name(),
            "digest": plan.digest.as_str(),
            "previous_digest": run.previous_digest,
            "source_env": args.source_env,
            "target_ref": plan.target.to_string(),
            "gitops": gitops.map(|g| serde_json::json!({
                "target": g.describe(),
                "files": g.files(),
                "commit": run.gitops_commit,
                "pull_request": run.gitops_pull,
            })),
        })
    };
    let description = format!("gantry promote-digest {path} {}", plan.digest);
    let early = if gitops.is_none() {
        Some(
            recorder
                .start(
                    &args.target_env,
                    description.clone(),
                    payload(run),
                    plan.production,
                )
                .await?,
        )
    } else {
        None
    };
    let result = run.gate_and_copy().await;
    let deployment = match early {
        Some(deployment) => Ok(deployment),
        None => {
            recorder
                .start(&args.target_env, description, payload(run), plan.production)
                .await
        }
    };
    let (state, status) = run.deployment_state(&result);
    let deployment_id = match &deployment {
        Ok(deployment) => recorder
            .finish(deployment, state, &status)
            .await
            .map(|()| deployment.id),
        Err(error) => Err(anyhow::anyhow!("recording the deployment: {error:#}")),
    };
    let mut outcome = match result? {
        Err(refusal) => refusal.outcome(run.summary.clone()),
        Ok(()) => run.finish(
            run.gitops_pull.is_none(),
            deployment_id.as_ref().ok().copied(),
        ),
    };
    if let Err(error) = deployment_id {
        // The target has moved (or stayed) already; the missing record must not hide that.
        outcome = outcome.annotate(Annotation::new(Level::Warning, format!("{error:#}")));
    }
    Ok(outcome)
}

/// What the checks before any change decided.
enum Next {
    Proceed,
    /// Already there, or a dry run.
    NothingToDo,
    /// The source does not hold the digest.
    Refused(Refusal),
}

/// One promotion in progress: what it knows so far and the summary it writes.
struct Run<'a> {
    args: &'a Args,
    ctx: &'a Context,
    plan: &'a Plan,
    client: &'a Client,
    summary: String,
    previous_digest: String,
    /// Who signed the digest, when the path required a signature and it was verified.
    signed_by: Option<String>,
    /// The target's GitOps files.
    gitops: Option<&'a GitOpsSide>,
    /// The source's GitOps files, when it has no registry tag.
    source_files: Option<&'a GitOpsSide>,
    /// The commit that wrote the digest into them.
    gitops_commit: Option<String>,
    /// The digest the GitOps files held before the gates.
    gitops_previous: Option<String>,
    /// The pull request that proposes the digest (mode pull-request).
    gitops_pull: Option<String>,
    /// The GitOps branch's head when read before the gates (with an Argo CD application).
    gitops_head: Option<String>,
    /// The commit Argo CD was seen running.
    argocd_revision: Option<String>,
    /// Warnings for the job's log (the promotion stands).
    warnings: Vec<String>,
}

impl Run<'_> {
    /// Checks the source holds the digest and reads the target.
    async fn check_source_and_target(&mut self, who: Option<&str>) -> anyhow::Result<Next> {
        let Plan {
            digest,
            source,
            target,
            ..
        } = self.plan;
        let args = self.args;
        if let Some(files) = self.source_files {
            let held = files.current().await.with_context(|| {
                format!(
                    "reading the source environment {} ({})",
                    args.source_env,
                    files.describe()
                )
            })?;
            if held.digest.as_deref() != Some(digest.as_str()) {
                return Ok(Next::Refused(Refusal::SourceFiles(format!(
                    "source environment {} ({}) holds {}, not {digest}; promote the digest that passed {}",
                    args.source_env,
                    files.describe(),
                    held.digest.as_deref().unwrap_or("no digest"),
                    args.source_env
                ))));
            }
        } else {
            let at_source = self.client.resolve(source).await.with_context(|| {
                format!(
                    "resolving the source environment {} ({source})",
                    args.source_env
                )
            })?;
            if at_source.digest != *digest {
                return Ok(Next::Refused(Refusal::SourceElsewhere {
                    source_env: args.source_env.clone(),
                    source: source.clone(),
                    found: at_source.digest,
                    digest: digest.clone(),
                }));
            }
        }
        let previous = if self.plan.registry {
            self.client
                .head_manifest(target)
                .await
                .with_context(|| format!("reading the target {target}"))?
                .map(|d| d.digest.to_string())
        } else {
            None
        };
        // What the GitOps files hold now: what the write will expect to replace after the gates.
        let held = match self.gitops {
            Some(gitops) => Some(gitops.current().await?),
            None => None,
        };
        self.gitops_previous = held.as_ref().and_then(|h| h.digest.clone());
        self.gitops_head = held.as_ref().and_then(|h| h.head.clone());
        self.previous_digest = if self.plan.registry {
            previous.clone().unwrap_or_default()
        } else {
            self.gitops_previous.clone().unwrap_or_default()
        };
        let target_text = match self.gitops {
            Some(gitops) if !self.plan.registry => gitops.describe(),
            Some(gitops) => format!("{target}` and `{}", gitops.describe()),
            None => target.to_string(),
        };
        let _ = write!(
            self.summary,
            "## gantry promote-digest\n\n`{digest}`: **{}** → **{}**\n\n| | |\n|---|---|\n| source | `{}` |\n| target | `{target_text}` |\n| before | {} |\n",
            args.source_env,
            args.target_env,
            self.source_files
                .map_or_else(|| source.to_string(), GitOpsSide::describe),
            if self.previous_digest.is_empty() {
                "(nothing)".to_owned()
            } else {
                format!("`{}`", self.previous_digest)
            }
        );
        if let Some(who) = who {
            let _ = writeln!(self.summary, "| allowed | {who} |");
        }
        let there = |d: &Option<String>| d.as_deref() == Some(digest.as_str());
        let registry_there = !self.plan.registry || there(&previous);
        let gitops_there = held.as_ref().is_none_or(|h| there(&h.digest));
        if registry_there && gitops_there {
            self.summary.push_str("\nAlready there: nothing to do.\n");
            return Ok(Next::NothingToDo);
        }
        if args.dry_run {
            let _ = writeln!(
                self.summary,
                "\nDry run: {} gate(s) not run, nothing changed.",
                self.plan.gates.len()
            );
            return Ok(Next::NothingToDo);
        }
        Ok(Next::Proceed)
    }

    /// Checks the signature, runs the gates, copies, re-reads: `Ok(Ok(()))` when the target now
    /// points at the digest, `Ok(Err(refusal))` when a check refused it.
    async fn gate_and_copy(&mut self) -> anyhow::Result<Result<(), Refusal>> {
        let Plan {
            digest,
            source,
            target,
            gates,
            ..
        } = self.plan;
        let args = self.args;
        let variables = [
            ("GANTRY_DIGEST", digest.to_string()),
            ("GANTRY_SOURCE_ENV", args.source_env.clone()),
            ("GANTRY_TARGET_ENV", args.target_env.clone()),
            ("GANTRY_SOURCE_REF", source.to_string()),
            ("GANTRY_TARGET_REF", target.to_string()),
        ];
        let unchanged = |reason: String| Refusal::Unchanged {
            reason,
            target: target.clone(),
        };
        if let Some(wanted) = &self.plan.require_signature
            && let Some(refusal) = self.check_signature(wanted).await?
        {
            return Ok(Err(unchanged(refusal)));
        }
        if let Some(failure) = gates::run_all(self.ctx, gates, &variables, &mut self.summary).await
        {
            return Ok(Err(unchanged(failure)));
        }
        // The GitOps files first: they can conflict; a registry tag can only race.
        if let Some(gitops) = self.gitops
            && let Err(refusal) = self.write_gitops(gitops).await?
        {
            return Ok(Err(refusal));
        }
        if !self.plan.registry {
            return Ok(Ok(()));
        }
        if let Some(moved) = self.moved_meanwhile().await? {
            return Ok(Err(unchanged(moved)));
        }
        let report = self
            .client
            .copy(
                &source.with_digest(digest.clone()),
                target,
                CopyOptions::default(),
            )
            .await
            .with_context(|| format!("copying {digest} to {target}"))?;
        let now = self
            .client
            .resolve(target)
            .await
            .with_context(|| format!("re-reading {target}"))?;
        if now.digest != *digest {
            return Ok(Err(Refusal::Raced {
                target: target.clone(),
                found: now.digest,
                digest: digest.clone(),
            }));
        }
        self.point_aliases().await?;
        self.summary
            .push_str(&report::carried(&report, self.client.counts().requests));
        Ok(Ok(()))
    }

    /// Writes the digest into the GitOps files, over what they held before the gates.
    async fn write_gitops(&mut self, gitops: &GitOpsSide) -> anyhow::Result<Result<(), Refusal>> {
        use gantry_gitops::github::Landed;
        let image = self.args.image.name();
        let run = self.ctx.github.run_url();
        let verification = self.summary.clone();
        let (digest, target_env) = (self.plan.digest.as_str(), self.args.target_env.as_str());
        let body = |changes: &[gantry_gitops::Change], previous: Option<&str>| {
            report::pull_request_body(&image, digest, target_env, previous, changes, &verification)
        };
        let said = Said {
            environment: &self.args.target_env,
            source_environment: &self.args.source_env,
            image: &image,
            run: run.as_deref(),
            body: &body,
        };
        let wrote = gitops
            .write(
                self.plan.digest.as_str(),
                self.gitops_previous.as_deref(),
                &said,
            )
            .await
            .with_context(|| format!("writing {} into {}", self.plan.digest, gitops.describe()))?;
        self.summary.push_str("\n### GitOps\n\n");
        let landed = match wrote {
            Wrote::Landed(landed) => landed,
            Wrote::Proposed(proposed) => {
                return Ok(self.proposed(gitops, proposed).map_or(Ok(()), Err));
            }
        };
        match landed {
            Landed::Committed {
                commit,
                changes,
                attempts,
                ..
            } => {
                let _ = writeln!(
                    self.summary,
                    "Committed `{commit}` to `{}`{}:\n",
                    gitops.describe(),
                    if attempts > 1 {
                        format!(
                            " (after {} lost race(s), applied again on top)",
                            attempts - 1
                        )
                    } else {
                        String::new()
                    }
                );
                self.summary.push_str(&report::edits(&changes));
                if let Some(refusal) = self.deploy(gitops, &commit).await? {
                    self.gitops_commit = Some(commit);
                    return Ok(Err(refusal));
                }
                self.gitops_commit = Some(commit);
            }
            Landed::Unchanged { .. } => {
                let _ = writeln!(
                    self.summary,
                    "`{}` already holds the digest.",
                    gitops.describe()
                );
                if let Some(head) = self.gitops_head.clone()
                    && let Some(refusal) = self.deploy(gitops, &head).await?
                {
                    return Ok(Err(refusal));
                }
            }
            Landed::Conflict {
                expected,
                found,
                commit,
            } => {
                return Ok(Err(report::gitops_conflict(
                    &gitops.describe(),
                    expected,
                    found,
                    commit,
                )));
            }
        }
        Ok(Ok(()))
    }

    /// Already there (or a dry run). Already in the files (a merged pull request, a re-run):
    /// Argo CD may still need its sync, and the promotion is done only when it runs the commit.
    async fn nothing_to_do(&mut self) -> anyhow::Result<Outcome> {
        if let (Some(gitops), Some(head)) = (self.gitops, self.gitops_head.clone())
            && !self.args.dry_run
            && let Some(refusal) = self.deploy(gitops, &head).await?
        {
            return Ok(refusal.outcome(self.summary.clone()));
        }
        Ok(self.finish(false, None))
    }

    /// Syncs and waits for the Argo CD application as the policy says; `Some` when it did not
    /// run `revision`.
    async fn deploy(
        &mut self,
        gitops: &GitOpsSide,
        revision: &str,
    ) -> anyhow::Result<Option<Refusal>> {
        use gantry_gitops::argocd::Deployed;
        let Some(application) = gitops.application() else {
            return Ok(None);
        };
        let deployed = gitops
            .deploy(revision)
            .await
            .with_context(|| format!("Argo CD application {application}"))?;
        self.summary.push_str("\n### Argo CD\n\n");
        let refusal = match deployed {
            None => return Ok(None),
            Some(Deployed::Ready {
                health,
                reads,
                elapsed,
            }) => {
                let _ = writeln!(
                    self.summary,
                    "✅ `{application}` runs `{revision}`: Synced, {health} ({reads} read(s), {:.1} s).",
                    elapsed.as_secs_f64()
                );
                self.argocd_revision = Some(revision.to_owned());
                return Ok(None);
            }
            Some(Deployed::Requested) => {
                let _ = writeln!(
                    self.summary,
                    "Sync of `{application}` to `{revision}` requested; not waited for (wait: none)."
                );
                return Ok(None);
            }
            Some(Deployed::Failed { why }) => {
                format!("Argo CD application {application} did not run {revision}: {why}")
            }
            Some(Deployed::TimedOut { last }) => format!(
                "Argo CD application {application} did not run {revision} within {}: last seen {last}",
                humantime_like(self.args.gitops.argocd_timeout)
            ),
        };
        let _ = writeln!(self.summary, "❌ {refusal}");
        Ok(Some(Refusal::NotDeployed(refusal)))
    }

    /// The deployment status a promotion's result records.
    fn deployment_state(
        &self,
        result: &anyhow::Result<Result<(), Refusal>>,
    ) -> (DeploymentState, String) {
        match result {
            Ok(Ok(())) if self.gitops_pull.is_some() => (
                DeploymentState::Queued,
                format!(
                    "{} proposed in {}: deployed once merged",
                    self.plan.digest,
                    self.gitops_pull.as_deref().unwrap_or_default()
                ),
            ),
            Ok(Ok(())) => (
                DeploymentState::Success,
                match (&self.gitops_commit, self.plan.registry) {
                    (Some(commit), false) => format!("{} committed as {commit}", self.plan.digest),
                    _ => format!("{} now points at {}", self.plan.target, self.plan.digest),
                },
            ),
            Ok(Err(refusal)) => (DeploymentState::Failure, refusal.to_string()),
            Err(error) => (DeploymentState::Error, format!("{error:#}")),
        }
    }

    /// A pull request proposes the digest (or the base holds it, or it moved meanwhile).
    fn proposed(&mut self, gitops: &GitOpsSide, proposed: Proposed) -> Option<Refusal> {
        match proposed {
            Proposed::Proposed {
                pull,
                opened,
                commit,
                changes,
                superseded,
                auto_merge,
                ..
            } => {
                let _ = writeln!(
                    self.summary,
                    "Pull request [#{}]({}) {} on `{}` (commit `{commit}`, status `gantry/verified-digest`){}:\n",
                    pull.number,
                    pull.html_url,
                    if opened { "opened" } else { "updated" },
                    gitops.describe(),
                    superseded
                        .map(|d| format!(", superseding `{d}`"))
                        .unwrap_or_default()
                );
                self.summary.push_str(&report::edits(&changes));
                match auto_merge {
                    Some(Ok(())) => {
                        let _ = writeln!(
                            self.summary,
                            "\nAuto-merge is on for `{commit}`: GitHub merges it once the base's rules allow."
                        );
                    }
                    Some(Err(why)) => {
                        let _ = writeln!(
                            self.summary,
                            "\n⚠️ Auto-merge was not turned on ({why}): merge the pull request by hand."
                        );
                        self.warnings
                            .push(format!("auto-merge was not turned on: {why}"));
                    }
                    None => {}
                }
                self.gitops_commit = Some(commit);
                self.gitops_pull = Some(pull.html_url);
            }
            Proposed::Unchanged {
                pull: Some(pull), ..
            } => {
                let _ = writeln!(
                    self.summary,
                    "Pull request [#{}]({}) proposes the digest already: its body and status refreshed, no new commit.",
                    pull.number, pull.html_url
                );
                self.gitops_commit = Some(pull.head_sha);
                self.gitops_pull = Some(pull.html_url);
            }
            Proposed::Unchanged { pull: None, .. } => {
                let _ = writeln!(
                    self.summary,
                    "`{}` already holds the digest.",
                    gitops.describe()
                );
            }
            Proposed::Conflict {
                expected,
                found,
                commit,
            } => {
                return Some(report::gitops_conflict(
                    &gitops.describe(),
                    expected,
                    found,
                    commit,
                ));
            }
        }
        None
    }

    /// Moves the target environment's aliases to the digest, once the target holds it: the
    /// manifest is put at each alias (same repository, so nothing else moves) and read back.
    async fn point_aliases(&mut self) -> anyhow::Result<()> {
        let Plan {
            digest,
            target,
            aliases,
            ..
        } = self.plan;
        if aliases.is_empty() {
            return Ok(());
        }
        let manifest = self
            .client
            .manifest(&target.with_digest(digest.clone()))
            .await
            .with_context(|| format!("reading {digest} in {}", target.name()))?;
        for alias in aliases {
            self.client
                .put_manifest(alias, &manifest)
                .await
                .with_context(|| {
                    format!(
                        "pointing the alias {alias} at {digest} ({target} already points at it)"
                    )
                })?;
            let now = self
                .client
                .resolve(alias)
                .await
                .with_context(|| format!("re-reading the alias {alias}"))?;
            anyhow::ensure!(
                now.digest == *digest,
                "the alias {alias} was put at {digest} but reads back as {} ({target} already points at {digest})",
                now.digest
            );
            let _ = writeln!(self.summary, "| alias | `{alias}` → `{digest}` |");
        }
        Ok(())
    }

    /// Reads source and target again right before the copy: a gate (or anyone) that moved
    /// either while the checks ran voids them. `Some` says what moved.
    async fn moved_meanwhile(&self) -> anyhow::Result<Option<String>> {
        let Plan {
            digest,
            source,
            target,
            ..
        } = self.plan;
        let at_source = self
            .client
            .head_manifest(source)
            .await
            .with_context(|| format!("re-reading the source {source}"))?
            .map(|d| d.digest);
        if at_source.as_ref() != Some(digest) {
            return Ok(Some(format!(
                "the source {source} moved to {} while the checks ran (it held {digest})",
                at_source.map_or_else(|| "nothing".to_owned(), |d| d.to_string())
            )));
        }
        let at_target = self
            .client
            .head_manifest(target)
            .await
            .with_context(|| format!("re-reading the target {target}"))?
            .map_or_else(String::new, |d| d.digest.to_string());
        if at_target != self.previous_digest {
            let name = |d: &str| {
                if d.is_empty() {
                    "nothing".to_owned()
                } else {
                    d.to_owned()
                }
            };
            return Ok(Some(format!(
                "the target {target} moved from {} to {} while the checks ran",
                name(&self.previous_digest),
                name(&at_target)
            )));
        }
        Ok(None)
    }

    /// Verifies the digest at the source against the path's `require-signature`; `Some` says
    /// why it is refused. An unreadable registry is an error, not a refusal.
    async fn check_signature(
        &mut self,
        wanted: &SignaturePolicy,
    ) -> anyhow::Result<Option<String>> {
        use gantry_sigstore::oci::{ImageError, verify_image};
        let here = std::path::Path::new(".");
        let signer = wanted.signer(here)?;
        let http = self.args.registry.http_client()?;
        let root = wanted.root(here, &http).await?;
        let at = self.plan.source.with_digest(self.plan.digest.clone());
        self.summary.push_str("\n### Signature\n\n");
        match verify_image(self.client, &at, &signer, &root).await {
            Ok(verified) => {
                let who = verified
                    .verified
                    .identity
                    .clone()
                    .unwrap_or_else(|| "the required key".to_owned());
                let v = &verified.verified;
                let issuer = v
                    .issuer
                    .as_ref()
                    .map(|i| format!(", issuer {i}"))
                    .unwrap_or_default();
                let logged = v
                    .log_index
                    .map(|i| format!(", Rekor log index {i}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    self.summary,
                    "- ✅ signed by {who}{issuer}{logged} ({}, {})",
                    verified.format, verified.signature
                );
                self.signed_by = Some(who);
                self.check_attestations(&at, &signer, &root).await
            }
            Err(ImageError::Registry(error)) => {
                Err(anyhow::Error::new(error).context(format!("reading the signatures of {at}")))
            }
            Err(refusal) => {
                let _ = writeln!(self.summary, "- ❌ {refusal}");
                Ok(Some(format!(
                    "{} -> {} requires a signature: {refusal}",
                    self.args.source_env, self.args.target_env
                )))
            }
        }
    }

    /// Verifies each attestation the path requires, signed by the same signer; `Some` says why
    /// the promotion is refused.
    async fn check_attestations(
        &mut self,
        at: &Reference,
        signer: &gantry_sigstore::Signer,
        root: &gantry_sigstore::TrustedRoot,
    ) -> anyhow::Result<Option<String>> {
        use gantry_sigstore::oci::{
            CANARY_PREDICATE, ImageError, add_legacy_attestations, discover, passing,
            verify_attestations,
        };
        let read = |error: ImageError| match error {
            ImageError::Registry(error) => {
                anyhow::Error::new(error).context(format!("reading the attestations of {at}"))
            }
            other => anyhow::anyhow!("{other}"),
        };
        let mut discovery = discover(self.client, at).await.map_err(read)?;
        add_legacy_attestations(self.client, at, &mut discovery)
            .await
            .map_err(read)?;
        // A digest that canary-watch rolled back (its newest canary verdict, signed as this path
        // requires, failed) goes nowhere again unless someone says so. Unsigned claims count
        // for nothing either way.
        if let Ok(found) = verify_attestations(at, &discovery, CANARY_PREDICATE, signer, root)
            && let Err(why) = passing(CANARY_PREDICATE, &found)
        {
            if self.args.allow_rolled_back {
                let _ = writeln!(
                    self.summary,
                    "- ⚠️ rolled back before ({why}); promoted again as allow-rolled-back says"
                );
            } else {
                let _ = writeln!(self.summary, "- ❌ rolled back before: {why}");
                return Ok(Some(format!(
                    "{} was rolled back by canary-watch ({why}); promote it again only with allow-rolled-back",
                    self.plan.digest
                )));
            }
        }
        for kind in &self.plan.require_attestations {
            let verified = verify_attestations(at, &discovery, kind, signer, root)
                .map_err(|e| e.to_string())
                .and_then(|found| {
                    passing(kind, &found)?;
                    Ok(found)
                });
            match verified {
                Ok(found) => {
                    let _ = writeln!(
                        self.summary,
                        "- ✅ attestation {kind} ({})",
                        found
                            .iter()
                            .map(|a| a.manifest.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                Err(refusal) => {
                    let _ = writeln!(self.summary, "- ❌ {refusal}");
                    return Ok(Some(format!(
                        "{} -> {} requires attestation {kind}: {refusal}",
                        self.args.source_env, self.args.target_env
                    )));
                }
            }
        }
        Ok(None)
    }

    /// The sentence that says what happened.
    fn headline(&self, promoted: bool) -> String {
        let Plan {
            digest,
            target,
            gates,
            ..
        } = self.plan;
        let (from, to) = (&self.args.source_env, &self.args.target_env);
        if let Some(pull) = &self.gitops_pull {
            return format!(
                "proposed {digest} from {from} for {to} in pull request {pull}: {to} holds it once that is merged"
            );
        }
        if promoted {
            let signed = self
                .signed_by
                .as_ref()
                .map(|who| format!(" (signature by {who} verified)"))
                .unwrap_or_default();
            let landed = match (self.gitops, &self.gitops_commit) {
                (Some(gitops), Some(commit)) if !self.plan.registry => {
                    format!("committed {commit} to {}", gitops.describe())
                }
                (Some(gitops), Some(commit)) => format!(
                    "{target} points at it now and {commit} wrote it to {}",
                    gitops.describe()
                ),
                _ => format!("{target} points at it now"),
            };
            return format!("promoted {digest} from {from} to {to}: {landed}{signed}");
        }
        if self.previous_digest == digest.as_str() {
            return format!("{to} ({target}) already points at {digest}: nothing to do");
        }
        format!(
            "dry run: {to} ({target}) would move from {} to {digest}; {} gate(s) not run, nothing changed",
            if self.previous_digest.is_empty() {
                "nothing"
            } else {
                &self.previous_digest
            },
            gates.len()
        )
    }

    fn finish(&mut self, promoted: bool, deployment: Option<u64>) -> Outcome {
        if let Some(id) = deployment {
            let _ = writeln!(self.summary, "\nRecorded as GitHub Deployment {id}.");
        }
        let report = Report {
            digest: self.plan.digest.to_string(),
            target_ref: match self.gitops {
                Some(gitops) if !self.plan.registry => gitops.describe(),
                _ => format!("{}@{}", self.plan.target, self.plan.digest),
            },
            previous_digest: self.previous_digest.clone(),
            promoted: promoted.to_string(),
            requests: self.client.counts().requests.to_string(),
            deployment_id: deployment.map(|id| id.to_string()).unwrap_or_default(),
            gitops_commit: self.gitops_commit.clone().unwrap_or_default(),
            gitops_pull_request: self.gitops_pull.clone().unwrap_or_default(),
            argocd_revision: self.argocd_revision.clone().unwrap_or_default(),
        };
        let mut outcome = Outcome::success()
            .headline(self.headline(promoted))
            .with_outputs(&report)
            .summary(self.summary.clone());
        for warning in &self.warnings {
            outcome = outcome.annotate(Annotation::new(Level::Warning, warning.clone()));
        }
        outcome
    }
}

/// A duration as the arguments take it (`10m`, `90s`, `250ms`).
fn humantime_like(duration: std::time::Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
