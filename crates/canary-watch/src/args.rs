//! The command line and action inputs of canary-watch.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gantry_args::{GitHubApiArgs, RegistryArgs, SigningArgs, parse_duration};
use gantry_oci::{Digest, Reference};
use gantry_secret::Secret;

use crate::decide::{Limits, OnError, Verdict};
use crate::http::Statuses;
use crate::prometheus::Reduce;

/// What happens to the canary when the watch is cancelled (SIGINT, SIGTERM) before it decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnCancel {
    /// Leave the canary where it is (a cancelled watch proves nothing either way).
    Leave,
    /// Roll it back.
    Rollback,
}

/// What `on-error` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnErrorArg {
    /// Leave the canary as it is, stop, exit 2, notify.
    Hold,
    /// Roll back.
    Rollback,
}

/// What an empty result or NaN counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NoData {
    /// Neither a pass nor a fail (the default).
    Inconclusive,
    /// A failure.
    Fail,
    /// A pass.
    Pass,
    /// An error.
    Error,
}

impl From<NoData> for Verdict {
    fn from(value: NoData) -> Self {
        match value {
            NoData::Inconclusive => Verdict::Inconclusive,
            NoData::Fail => Verdict::Fail,
            NoData::Pass => Verdict::Pass,
            NoData::Error => Verdict::Error,
        }
    }
}

/// The webhook's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookFormat {
    /// A `CloudEvents` 1.0 JSON envelope (structured mode), signed with `webhook-secret`.
    Json,
    /// Slack blocks (an incoming webhook).
    Slack,
    /// A Microsoft Teams Workflows webhook carrying an Adaptive Card.
    Teams,
}

/// Watch the canary; after enough failing ticks, roll the environment back to the previous digest.
#[derive(Debug, Parser)]
#[command(long_about = None)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each bool is an independent switch of the command line"
)]
pub struct Args {
    /// The image's repository, e.g. ghcr.io/acme/billing (environments without a repository of
    /// their own live here).
    #[arg(long, required = true, value_name = "REPOSITORY")]
    pub image: Reference,

    /// The environment watched (its tag and aliases come from the policy).
    #[arg(long, value_name = "ENV", default_value = "canary")]
    pub env: String,

    /// The digest the environment should hold now (promote-digest's `digest`); the watch refuses
    /// to start when it holds another.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<Digest>,

    /// The digest to roll back to (promote-digest's `previous-digest`); without it, the
    /// environment's last successful GitHub Deployment of another digest.
    #[arg(long, value_name = "DIGEST")]
    pub previous_digest: Option<Digest>,

    /// The promotion policy; without it, .github/gantry.yml or else the default chain.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// A GitOps environment's repository (its rollback is a commit there) and the Argo CD
    /// application synced to the rollback commit and waited for.
    #[command(flatten)]
    pub gitops: gantry_args::GitOpsArgs,

    /// The canary's health endpoint, checked every tick.
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,

    /// Statuses that pass the health check (`2xx`, `200,204`, `200-299`).
    #[arg(long, value_name = "LIST", default_value = "2xx")]
    pub expect_status: Statuses,

    /// A regular expression the health answer's body must match.
    #[arg(long, value_name = "REGEX")]
    pub body_regex: Option<String>,

    /// A JSON condition on the health answer's body: `PATH==VALUE` or `PATH!=VALUE`, PATH a
    /// dotted path (`status`, `checks.db.status`, `items.0.state`), VALUE JSON or a bare string.
    #[arg(long, value_name = "CONDITION")]
    pub body_json: Option<String>,

    /// A header sent with the health check (`Name: value`, one per line; values may be secrets
    /// and are masked).
    #[arg(long = "header", value_name = "HEADER")]
    pub headers: Vec<Secret>,

    /// A known-good URL checked in the same tick: when it fails too, the canary's failures count
    /// as errors (the runner's network, not the canary).
    #[arg(long, value_name = "URL")]
    pub control_url: Option<String>,

    /// A Prometheus-compatible API (`http://prometheus:9090`) for `query`.
    #[arg(long, value_name = "URL", requires = "query")]
    pub prometheus_url: Option<String>,

    /// An instant `PromQL` query checked every tick.
    #[arg(long, value_name = "PROMQL", requires = "prometheus_url")]
    pub query: Option<String>,

    /// The query's value must be at least this.
    #[arg(long, value_name = "NUMBER", allow_negative_numbers = true)]
    pub min: Option<f64>,

    /// The query's value must be at most this.
    #[arg(long, value_name = "NUMBER", allow_negative_numbers = true)]
    pub max: Option<f64>,

    /// How several series become one value: one (exactly one series, else an error), max, min,
    /// sum, avg, all (every series in bounds), any.
    #[arg(long, value_name = "HOW", default_value = "one")]
    pub reduce: Reduce,

    /// What an empty query result counts as.
    #[arg(long, value_enum, value_name = "VERDICT", default_value_t = NoData::Inconclusive)]
    pub on_empty: NoData,

    /// What a NaN counts as.
    #[arg(long, value_enum, value_name = "VERDICT", default_value_t = NoData::Inconclusive)]
    pub on_nan: NoData,

    /// A bearer token for the Prometheus API. Also read from `GANTRY_PROMETHEUS_TOKEN`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "GANTRY_PROMETHEUS_TOKEN",
        hide_env_values = true,
        conflicts_with = "prometheus_password"
    )]
    pub prometheus_token: Option<Secret>,

    /// A user for HTTP basic authentication to the Prometheus API (with `prometheus-password`).
    #[arg(long, value_name = "USER", requires = "prometheus_password")]
    pub prometheus_username: Option<String>,

    /// The password for `prometheus-username`. Also read from `GANTRY_PROMETHEUS_PASSWORD`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "GANTRY_PROMETHEUS_PASSWORD",
        hide_env_values = true,
        requires = "prometheus_username"
    )]
    pub prometheus_password: Option<Secret>,

    /// From the start of one tick to the start of the next.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub interval: Duration,

    /// The longest one check may take (shorter than the interval).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub probe_timeout: Duration,

    /// Ticks in this first stretch are measured and shown but not counted (the canary warming up).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub initial_delay: Option<Duration>,

    /// How long to watch (counted ticks: duration / interval).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub duration: Duration,

    /// Failing ticks in a row that roll back.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub consecutive_failures: u32,

    /// Failing ticks in all that roll back.
    #[arg(long, value_name = "N")]
    pub max_total_failures: Option<u32>,

    /// Error ticks in a row that end the watch as `on-error` says.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub consecutive_errors: u32,

    /// What too many errors do: hold (leave the canary, exit 2) or rollback.
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = OnErrorArg::Hold)]
    pub on_error: OnErrorArg,

    /// Inconclusive ticks in a row that end the watch as inconclusive (exit 1, no rollback).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub consecutive_inconclusive: u32,

    /// Passing ticks in a row that end the watch healthy early.
    #[arg(long, value_name = "N")]
    pub consecutive_successes: Option<u32>,

    /// Error and inconclusive ticks break a failure streak (by default they neither extend nor
    /// break it).
    #[arg(long)]
    pub strict: bool,

    /// Roll back on a failing decision; with `false`, only report it (exit 1).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub rollback: bool,

    /// What a cancelled watch (SIGINT, SIGTERM) does to the canary: leave or rollback.
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = OnCancel::Leave)]
    pub on_cancel: OnCancel,

    /// Where to send the decision (a secret: masked, never printed). Also read from
    /// `GANTRY_WEBHOOK_URL`.
    #[arg(
        long,
        value_name = "URL",
        env = "GANTRY_WEBHOOK_URL",
        hide_env_values = true
    )]
    pub webhook_url: Option<Secret>,

    /// The webhook's body: json (`CloudEvents`), slack, teams.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = WebhookFormat::Json)]
    pub webhook_format: WebhookFormat,

    /// A key for the json webhook's HMAC-SHA256 signature (header `X-Gantry-Signature-256:
    /// sha256=<hex>` over the body). Also read from `GANTRY_WEBHOOK_SECRET`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "GANTRY_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<Secret>,

    /// After a rollback, run this command on the runner to redeploy (`sh -c`; it sees
    /// `GANTRY_DIGEST` (the digest restored), `GANTRY_ROLLED_BACK_FROM`, `GANTRY_ENVIRONMENT`,
    /// `GANTRY_IMAGE`, `GANTRY_REASON`, `PATH`, `HOME` and what `on-rollback-env` names; never
    /// gantry's tokens). Not in the container action, which has no shell.
    #[arg(long, value_name = "SCRIPT", conflicts_with_all = ["on_rollback_url", "on_rollback_workflow"])]
    pub on_rollback_run: Option<String>,

    /// Variables of gantry's environment `on-rollback-run` may see.
    #[arg(long, value_name = "NAME")]
    pub on_rollback_env: Vec<String>,

    /// After a rollback, POST a `CloudEvents` event (type `dev.gantry.canary.redeploy`, signed
    /// with `webhook-secret`) to this URL to redeploy (a secret). Also read from
    /// `GANTRY_ON_ROLLBACK_URL`.
    #[arg(
        long,
        value_name = "URL",
        env = "GANTRY_ON_ROLLBACK_URL",
        hide_env_values = true,
        conflicts_with = "on_rollback_workflow"
    )]
    pub on_rollback_url: Option<Secret>,

    /// After a rollback, dispatch this workflow (file or id) to redeploy, with inputs `digest`,
    /// `rolled_back_from` and `environment` (needs `actions: write`).
    #[arg(long, value_name = "FILE")]
    pub on_rollback_workflow: Option<String>,

    /// The repository of `on-rollback-workflow`; default `repository`.
    #[arg(long, value_name = "OWNER/NAME")]
    pub on_rollback_repository: Option<String>,

    /// The branch or tag `on-rollback-workflow` runs on.
    #[arg(long, value_name = "REF", default_value = "main")]
    pub on_rollback_ref: String,

    /// The longest the `on-rollback-run` command may take.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub on_rollback_timeout: Duration,

    /// After a rollback, wait until the health answer's body says the previous digest serves
    /// again: a JSON condition as `body-json` takes (`version==1.4.2`, `digest==sha256:…`).
    #[arg(long, value_name = "CONDITION", requires = "health_url")]
    pub recovered_when: Option<String>,

    /// The longest to wait for `recovered-when`.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub recover_timeout: Duration,

    /// Record a rollback as GitHub Deployments (the failed one marked failure, a new one at the
    /// previous digest); needs a token.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub deployment: bool,

    /// The repository (owner/name) whose deployments count; default `GITHUB_REPOSITORY`.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repository: Option<String>,

    /// The commit a rollback deployment records; default `GITHUB_SHA`.
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,

    /// Sign the verdict (passed, or failed and rolled back) as an in-toto statement on the canary
    /// digest (predicate `https://gantry.dev/attestations/canary/v1`: outcome, checks, limits,
    /// window, reason) and attach it, so that a promotion path can require `canary` and a
    /// rolled-back digest is refused by promote-digest unless allowed.
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub attest: bool,

    /// How the verdict is signed (with `attest`).
    #[command(flatten)]
    pub signing: SigningArgs,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// GitHub's API: deployments.
    #[command(flatten)]
    pub github: GitHubApiArgs,
}

impl Args {
    /// The decision limits.
    pub fn limits(&self) -> Limits {
        Limits {
            consecutive_failures: self.consecutive_failures,
            max_total_failures: self.max_total_failures,
            consecutive_errors: self.consecutive_errors,
            on_error: match self.on_error {
                OnErrorArg::Hold => OnError::Hold,
                OnErrorArg::Rollback => OnError::Rollback,
            },
            consecutive_inconclusive: self.consecutive_inconclusive,
            consecutive_successes: self.consecutive_successes,
            strict: self.strict,
        }
    }
}
