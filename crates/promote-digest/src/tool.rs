//! The tool: check the path and the source, run the gates, copy by digest, move the tag last,
//! re-read it.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use gantry_actions::{Branding, Context, Outcome, OutputSpec, Secret, Tool, ToolSpec};
use gantry_oci::{Client, ClientOptions, CopyOptions, Credential, Credentials, Digest, Reference};

use crate::policy::{DEFAULT_PATH, Gate, Policy, PolicyError};

/// Point an environment at a digest that passed the environment before it, without rebuilding.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The image's repository, e.g. ghcr.io/acme/billing (environments without a repository of
    /// their own live here).
    #[arg(long, required = true, value_name = "REPOSITORY")]
    pub image: String,

    /// The digest to promote (sha256:…). The source environment must point at exactly it.
    #[arg(long, required = true)]
    pub digest: String,

    /// The environment the digest passed.
    #[arg(long, required = true, value_name = "ENV")]
    pub source_env: String,

    /// The environment to point at the digest.
    #[arg(long, required = true, value_name = "ENV")]
    pub target_env: String,

    /// The promotion policy; without it, .github/gantry.yml or else the seed chain
    /// dev -> staging -> canary -> production.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// Token for ghcr.io (and, later, the GitHub role check and deployment record).
    #[arg(long, value_name = "TOKEN")]
    pub github_token: Option<Secret>,

    /// Check everything and report what would happen; change nothing and run no gate.
    #[arg(long)]
    pub dry_run: bool,

    /// Registries spoken to over plain HTTP (host:port), one per line.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Extra CA certificates (PEM files) to trust, one per line.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub ca_files: Vec<PathBuf>,
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
        ],
        secret_inputs: &["github-token"],
        action_defaults: &[("github-token", "${{ github.token }}")],
        publish_action: false,
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
}

/// Reads the policy and the inputs; `Ok(Err(message))` when the policy forbids the path.
fn plan(args: &Args) -> anyhow::Result<Result<Plan, String>> {
    let (path, explicit) = match &args.policy {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let policy = Policy::load(&path, explicit)?;
    let digest: Digest = args.digest.parse().context("--digest")?;
    let image: Reference = args.image.parse().context("--image")?;
    let promotion = match policy.promotion(&args.source_env, &args.target_env) {
        Ok(promotion) => promotion,
        Err(forbidden @ PolicyError::Forbidden { .. }) => return Ok(Err(forbidden.to_string())),
        Err(other) => return Err(other.into()),
    };
    let source = policy.reference(&args.source_env, &image, &digest)?;
    let target = policy.reference(&args.target_env, &image, &digest)?;
    // Fail closed: a path restricted to roles or teams is never taken unchecked while a token
    // says the run could check it. (The check through the GitHub API arrives with gantry-github.)
    if let (Some(allowed), Some(_)) = (&promotion.allowed, &args.github_token) {
        anyhow::bail!(
            "promotion {} -> {} is restricted to roles {:?} and teams {:?}, and this build cannot check them through the GitHub API yet; refusing to promote unchecked",
            args.source_env,
            args.target_env,
            allowed.roles,
            allowed.teams
        );
    }
    let gates = promotion.gates.clone();
    Ok(Ok(Plan {
        digest,
        source,
        target,
        gates,
    }))
}

async fn promote(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
    let Plan {
        digest,
        source,
        target,
        gates,
    } = match plan(&args)? {
        Ok(plan) => plan,
        Err(forbidden) => return Ok(Outcome::failed(forbidden)),
    };
    let client = client(&args, &[&source, &target])?;

    let at_source = client.resolve(&source).await.with_context(|| {
        format!(
            "resolving the source environment {} ({source})",
            args.source_env
        )
    })?;
    if at_source.digest != digest {
        return Ok(Outcome::failed(format!(
            "source environment {} ({source}) points at {}, not {digest}; promote the digest that passed {}",
            args.source_env, at_source.digest, args.source_env
        )));
    }
    let previous = client
        .head_manifest(&target)
        .await
        .with_context(|| format!("reading the target {target}"))?;
    let previous_digest = previous
        .as_ref()
        .map(|d| d.digest.to_string())
        .unwrap_or_default();
    let mut summary = format!(
        "## gantry promote-digest\n\n`{digest}`: **{}** → **{}**\n\n| | |\n|---|---|\n| source | `{source}` |\n| target | `{target}` |\n| before | {} |\n",
        args.source_env,
        args.target_env,
        if previous_digest.is_empty() {
            "(nothing)".to_owned()
        } else {
            format!("`{previous_digest}`")
        }
    );
    let outcome = |promoted: bool, summary: String, client: &Client| {
        Outcome::success()
            .output("digest", digest.to_string())
            .output("target-ref", format!("{target}@{digest}"))
            .output("previous-digest", previous_digest.clone())
            .output("promoted", promoted.to_string())
            .output("requests", client.counts().requests.to_string())
            .summary(summary)
    };
    if previous.as_ref().is_some_and(|p| p.digest == digest) {
        summary.push_str("\nAlready there: nothing to do.\n");
        return Ok(outcome(false, summary, &client));
    }
    if args.dry_run {
        let _ = writeln!(
            summary,
            "\nDry run: {} gate(s) not run, nothing changed.",
            gates.len()
        );
        return Ok(outcome(false, summary, &client));
    }
    let variables = [
        ("GANTRY_DIGEST", digest.to_string()),
        ("GANTRY_SOURCE_ENV", args.source_env.clone()),
        ("GANTRY_TARGET_ENV", args.target_env.clone()),
        ("GANTRY_SOURCE_REF", source.to_string()),
        ("GANTRY_TARGET_REF", target.to_string()),
    ];
    if let Some(failure) = run_gates(ctx, &gates, &variables, &mut summary).await {
        return Ok(
            Outcome::failed(format!("{failure}; {target} was not changed")).summary(summary),
        );
    }
    let report = client
        .copy(
            &source.with_digest(digest.clone()),
            &target,
            CopyOptions::default(),
        )
        .await
        .with_context(|| format!("copying {digest} to {target}"))?;
    let now = client
        .resolve(&target)
        .await
        .with_context(|| format!("re-reading {target}"))?;
    if now.digest != digest {
        return Ok(Outcome::failed(format!(
            "{target} points at {} right after the promotion of {digest}: someone else moved it concurrently",
            now.digest
        )));
    }
    summary.push_str(&carried(&report, client.counts().requests));
    Ok(outcome(true, summary, &client))
}

fn carried(report: &gantry_oci::CopyReport, requests: u64) -> String {
    format!(
        "\n### Carried along\n\n{} referrer(s), {} legacy cosign tag(s); {} blob(s) mounted, {} uploaded, {} already there; {requests} request(s).\n",
        report.referrers.len(),
        report.legacy_tags.len(),
        report.blobs_mounted,
        report.blobs_uploaded,
        report.blobs_present,
    )
}

fn client(args: &Args, references: &[&Reference]) -> anyhow::Result<Client> {
    let mut credentials = Credentials::anonymous().with_docker_config(None)?;
    if let Some(token) = &args.github_token
        && references.iter().any(|r| r.registry() == "ghcr.io")
    {
        credentials = credentials.with("ghcr.io", Credential::github_token(token.clone()));
    }
    let options = ClientOptions {
        plain_http: args.insecure_registries.clone(),
        ca_files: args.ca_files.clone(),
        ..ClientOptions::default()
    };
    Ok(Client::new(options, credentials)?)
}

/// Runs the gates in order, noting each in the summary; the first failure stops them.
async fn run_gates(
    ctx: &Context,
    gates: &[Gate],
    variables: &[(&str, String)],
    summary: &mut String,
) -> Option<String> {
    summary.push_str("\n### Gates\n\n");
    if gates.is_empty() {
        summary.push_str("(none)\n");
    }
    for gate in gates {
        let _group = ctx.group(&format!("gate: {}", gate.name));
        if let Err(failure) = run_gate(gate, variables).await {
            let _ = writeln!(summary, "- ❌ {}: {failure}", gate.name);
            return Some(format!("gate {:?} failed: {failure}", gate.name));
        }
        let _ = writeln!(summary, "- ✅ {}", gate.name);
    }
    None
}

/// Runs one gate with `variables` in its environment; `Err` says why it failed.
async fn run_gate(gate: &Gate, variables: &[(&str, String)]) -> Result<(), String> {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&gate.run)
        .envs(variables.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(gate.timeout, command.output())
        .await
        .map_err(|_| format!("timed out after {} s", gate.timeout.as_secs()))?
        .map_err(|e| format!("could not start `sh -c {:?}`: {e}", gate.run))?;
    if output.status.success() {
        return Ok(());
    }
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    };
    Err(format!(
        "`{}` exited with {}: {}",
        gate.run,
        output.status,
        tail(&output.stderr)
    ))
}
