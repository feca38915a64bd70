//! The tool: check the path and the source, run the gates, copy by digest, move the tag last,
//! re-read it.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use gantry_actions::Secret;
use gantry_actions::{Annotation, Branding, Context, Level, Outcome, OutputSpec, Tool, ToolSpec};
use gantry_args::{GitHubApiArgs, RegistryArgs};
use gantry_github::DeploymentState;
use gantry_oci::{Client, CopyOptions, Digest, Reference};

use crate::gates;
use crate::github::{GitHubSide, Inputs};
use gantry_sigstore::policy::SignaturePolicy;

use crate::policy::{Allowed, DEFAULT_PATH, Gate, Policy, PolicyError};

/// Point an environment at a digest that passed the environment before it, without rebuilding.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The image's repository, e.g. ghcr.io/acme/billing (environments without a repository of
    /// their own live here).
    #[arg(long, required = true, value_name = "REPOSITORY")]
    pub image: Reference,

    /// The digest to promote (sha256:…). The source environment must point at exactly it.
    #[arg(long, required = true)]
    pub digest: Digest,

    /// The environment the digest passed.
    #[arg(long, required = true, value_name = "ENV")]
    pub source_env: String,

    /// The environment to point at the digest.
    #[arg(long, required = true, value_name = "ENV")]
    pub target_env: String,

    /// The promotion policy; without it, .github/gantry.yml or else the default chain
    /// dev -> staging -> canary -> production.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// Record the promotion as a GitHub Deployment of the target environment (needs a token).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub deployment: bool,

    /// The repository (owner/name) whose roles and deployments count; default `GITHUB_REPOSITORY`.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repository: Option<String>,

    /// The commit the deployment records; default `GITHUB_SHA`.
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,

    /// Who is promoting (a GitHub login); default `GITHUB_TRIGGERING_ACTOR`, then `GITHUB_ACTOR`.
    #[arg(long, value_name = "LOGIN")]
    pub actor: Option<String>,

    /// Check everything and report what would happen; change nothing and run no gate.
    #[arg(long)]
    pub dry_run: bool,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// GitHub's API: roles, teams and deployments.
    #[command(flatten)]
    pub github: GitHubApiArgs,
}

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
        outputs: &[
            OutputSpec {
                name: "digest",
                description: "The digest promoted.",
            },
            OutputSpec {
                name: "target-ref",
                description: "The reference the target environment now points at.",
            },
            OutputSpec {
                name: "previous-digest",
                description: "What the target pointed at before (empty if nothing): the rollback target.",
            },
            OutputSpec {
                name: "promoted",
                description: "`true` when the target moved, `false` when it already pointed at the digest.",
            },
            OutputSpec {
                name: "requests",
                description: "Registry requests the promotion made.",
            },
            OutputSpec {
                name: "deployment-id",
                description: "The GitHub Deployment recording the promotion (empty when none was recorded).",
            },
        ],
        secret_inputs: &["github-token", "registry-password"],
        action_defaults: &[("github-token", "${{ github.token }}")],
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
    gates: Vec<Gate>,
    allowed: Option<Allowed>,
    require_signature: Option<SignaturePolicy>,
    /// The target is the last environment: GitHub marks its deployments as production.
    production: bool,
}

/// Reads the policy and the inputs; `Ok(Err(message))` when the policy forbids the path.
fn plan(args: &Args) -> anyhow::Result<Result<Plan, String>> {
    let (path, explicit) = match &args.policy {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let policy = Policy::load(&path, explicit)?;
    let (digest, image) = (args.digest.clone(), args.image.clone());
    let promotion = match policy.promotion(&args.source_env, &args.target_env) {
        Ok(promotion) => promotion,
        Err(forbidden @ PolicyError::Forbidden { .. }) => return Ok(Err(forbidden.to_string())),
        Err(other) => return Err(other.into()),
    };
    let source = policy.reference(&args.source_env, &image, &digest)?;
    let target = policy.reference(&args.target_env, &image, &digest)?;
    Ok(Ok(Plan {
        digest,
        source,
        target,
        gates: promotion.gates.clone(),
        allowed: promotion.allowed.clone(),
        require_signature: promotion.require_signature.clone(),
        production: policy
            .environments
            .last()
            .is_some_and(|last| last.name == args.target_env),
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

async fn promote(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
    let plan = match plan(&args)? {
        Ok(plan) => plan,
        Err(forbidden) => return Ok(Outcome::failed(forbidden)),
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
    let who = match (&plan.allowed, &github) {
        (None, _) => None,
        (Some(allowed), None) => anyhow::bail!(
            "promotion {path} is restricted to {allowed}; give --github-token (with --repository and --actor outside Actions) so gantry can check it: refusing to promote unchecked"
        ),
        (Some(allowed), Some(github)) => match github.check(allowed, &path).await? {
            Ok(answer) => Some(answer),
            Err(refusal) => return Ok(Outcome::failed(refusal)),
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
    };
    match run.check_source_and_target(who.as_deref()).await? {
        Next::Proceed => {}
        Next::NothingToDo => return Ok(run.finish(false, None)),
        Next::Refused(refusal) => return Ok(refusal),
    }
    let Some(recorder) = recorder else {
        let outcome = run
            .gate_and_copy()
            .await?
            .unwrap_or_else(|| run.finish(true, None));
        return Ok(if args.deployment && !args.dry_run && github.is_none() {
            outcome.annotate(Annotation::new(
                Level::Notice,
                "not recorded as a GitHub Deployment: no GitHub token was given (pass github-token, or deployment: false to say you want none)",
            ))
        } else {
            outcome
        });
    };
    let deployment = recorder
        .start(
            &args.target_env,
            format!("gantry promote-digest {path} {}", plan.digest),
            serde_json::json!({
                "image": args.image.name(),
                "digest": plan.digest.as_str(),
                "previous_digest": run.previous_digest,
                "source_env": args.source_env,
                "target_ref": plan.target.to_string(),
            }),
            plan.production,
        )
        .await?;
    let result = run.gate_and_copy().await;
    let (state, description) = match &result {
        Ok(None) => (
            DeploymentState::Success,
            format!("{} now points at {}", plan.target, plan.digest),
        ),
        Ok(Some(failed)) => (
            DeploymentState::Failure,
            failed.failure_message().unwrap_or_default().to_owned(),
        ),
        Err(error) => (DeploymentState::Error, format!("{error:#}")),
    };
    let status_written = recorder.finish(&deployment, state, &description).await;
    let mut outcome = match result? {
        Some(failed) => failed,
        None => run.finish(true, Some(deployment.id)),
    };
    if let Err(error) = status_written {
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
    /// A failed outcome: the source does not hold the digest.
    Refused(Outcome),
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
        let at_source = self.client.resolve(source).await.with_context(|| {
            format!(
                "resolving the source environment {} ({source})",
                args.source_env
            )
        })?;
        if at_source.digest != *digest {
            return Ok(Next::Refused(Outcome::failed(format!(
                "source environment {} ({source}) points at {}, not {digest}; promote the digest that passed {}",
                args.source_env, at_source.digest, args.source_env
            ))));
        }
        let previous = self
            .client
            .head_manifest(target)
            .await
            .with_context(|| format!("reading the target {target}"))?;
        self.previous_digest = previous
            .as_ref()
            .map(|d| d.digest.to_string())
            .unwrap_or_default();
        let _ = write!(
            self.summary,
            "## gantry promote-digest\n\n`{digest}`: **{}** → **{}**\n\n| | |\n|---|---|\n| source | `{source}` |\n| target | `{target}` |\n| before | {} |\n",
            args.source_env,
            args.target_env,
            if self.previous_digest.is_empty() {
                "(nothing)".to_owned()
            } else {
                format!("`{}`", self.previous_digest)
            }
        );
        if let Some(who) = who {
            let _ = writeln!(self.summary, "| allowed | {who} |");
        }
        if previous.is_some_and(|p| p.digest == *digest) {
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

    /// Runs the gates, copies, re-reads. `Ok(None)` when the target now points at the digest;
    /// `Ok(Some(outcome))` with a failed outcome otherwise.
    async fn gate_and_copy(&mut self) -> anyhow::Result<Option<Outcome>> {
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
        if let Some(wanted) = &self.plan.require_signature
            && let Some(refusal) = self.check_signature(wanted).await?
        {
            return Ok(Some(
                Outcome::failed(format!("{refusal}; {target} was not changed"))
                    .summary(self.summary.clone()),
            ));
        }
        if let Some(failure) = gates::run_all(self.ctx, gates, &variables, &mut self.summary).await
        {
            return Ok(Some(
                Outcome::failed(format!("{failure}; {target} was not changed"))
                    .summary(self.summary.clone()),
            ));
        }
        if let Some(moved) = self.moved_meanwhile().await? {
            return Ok(Some(
                Outcome::failed(format!("{moved}; {target} was not changed"))
                    .summary(self.summary.clone()),
            ));
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
            return Ok(Some(Outcome::failed(format!(
                "{target} points at {} right after the promotion of {digest}: someone else moved it concurrently",
                now.digest
            ))));
        }
        self.summary
            .push_str(&carried(&report, self.client.counts().requests));
        Ok(None)
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
                let _ = writeln!(
                    self.summary,
                    "- ✅ signed by {who} ({}, {})",
                    verified.format, verified.signature
                );
                self.signed_by = Some(who);
                Ok(None)
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

    /// The sentence that says what happened.
    fn headline(&self, promoted: bool) -> String {
        let Plan {
            digest,
            target,
            gates,
            ..
        } = self.plan;
        let (from, to) = (&self.args.source_env, &self.args.target_env);
        if promoted {
            let signed = self
                .signed_by
                .as_ref()
                .map(|who| format!(" (signature by {who} verified)"))
                .unwrap_or_default();
            return format!(
                "promoted {digest} from {from} to {to}: {target} points at it now{signed}"
            );
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
        Outcome::success()
            .headline(self.headline(promoted))
            .output("digest", self.plan.digest.to_string())
            .output(
                "target-ref",
                format!("{}@{}", self.plan.target, self.plan.digest),
            )
            .output("previous-digest", self.previous_digest.clone())
            .output("promoted", promoted.to_string())
            .output("requests", self.client.counts().requests.to_string())
            .output(
                "deployment-id",
                deployment.map(|id| id.to_string()).unwrap_or_default(),
            )
            .summary(self.summary.clone())
    }
}

fn carried(report: &gantry_oci::CopyReport, requests: u64) -> String {
    const LISTED: usize = 20;
    let mut out = format!(
        "\n### Carried along\n\n{} referrer(s), {} legacy cosign tag(s); {} blob(s) mounted, {} uploaded, {} already there; {requests} request(s).\n",
        report.referrers.len(),
        report.legacy_tags.len(),
        report.blobs_mounted,
        report.blobs_uploaded,
        report.blobs_present,
    );
    for digest in report.referrers.iter().take(LISTED) {
        let _ = writeln!(out, "- referrer `{digest}`");
    }
    for tag in report.legacy_tags.iter().take(LISTED) {
        let _ = writeln!(out, "- tag `{tag}`");
    }
    let hidden = report.referrers.len().saturating_sub(LISTED)
        + report.legacy_tags.len().saturating_sub(LISTED);
    if hidden > 0 {
        let _ = writeln!(out, "- … and {hidden} more");
    }
    out
}
