//! Before the first tick: the checks built, the schedule checked, and the rollback proven possible
//! — the tag and its aliases read, the previous digest found (never guessed from tags), its
//! manifest kept, its signature verified when the policy requires one, push permission proven.
//! A watch whose rollback could not happen refuses to start (exit 2).

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use gantry_github::{GitHub, Repository};
use gantry_oci::{Client, Digest, Reference};
use gantry_policy::{DEFAULT_PATH, Policy};

use crate::args::Args;
use crate::http::{BodyCondition, HttpCheck};
use crate::prometheus::{Auth, PrometheusCheck};
use crate::record::{self, Deployed};
use crate::rollback::{self, Kept};
use crate::watch::{Check, Guard, Schedule};

/// The checks of every tick and the control probe.
pub struct Checks {
    /// Checks against the canary.
    pub checks: Vec<Box<dyn Check>>,
    /// The known-good URL.
    pub control: Option<Box<dyn Check>>,
}

/// Builds the checks from the arguments; nothing is sent yet.
pub fn checks(args: &Args) -> anyhow::Result<Checks> {
    let roots = gantry_http::roots(&args.registry.ca_files)?;
    let client = gantry_http::client(&roots, args.probe_timeout)?;
    let mut checks: Vec<Box<dyn Check>> = Vec::new();
    if let Some(url) = &args.health_url {
        let url = checked_url(url, "health-url")?;
        let body = match (&args.body_regex, &args.body_json) {
            (Some(_), Some(_)) => anyhow::bail!("give body-regex or body-json, not both"),
            (Some(regex), None) => Some(BodyCondition::Regex(
                regex::Regex::new(regex).with_context(|| format!("body-regex {regex:?}"))?,
            )),
            (None, Some(condition)) => Some(BodyCondition::Json(
                condition.parse().map_err(anyhow::Error::msg)?,
            )),
            (None, None) => None,
        };
        checks.push(Box::new(HttpCheck {
            name: "health".to_owned(),
            url,
            expect: args.expect_status.clone(),
            body,
            headers: headers(&args.headers)?,
            client: client.clone(),
        }));
    } else {
        anyhow::ensure!(
            args.body_regex.is_none() && args.body_json.is_none() && args.headers.is_empty(),
            "body-regex, body-json and header apply to health-url, which is not given"
        );
    }
    if let (Some(url), Some(query)) = (&args.prometheus_url, &args.query) {
        let auth = match (
            &args.prometheus_token,
            &args.prometheus_username,
            &args.prometheus_password,
        ) {
            (Some(token), _, _) => Some(Auth::Bearer(token.clone())),
            (None, Some(user), Some(password)) => Some(Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            }),
            _ => None,
        };
        anyhow::ensure!(
            !args.min.is_some_and(f64::is_nan) && !args.max.is_some_and(f64::is_nan),
            "min and max must be numbers"
        );
        checks.push(Box::new(PrometheusCheck {
            name: "prometheus".to_owned(),
            url: checked_url(url, "prometheus-url")?,
            query: query.clone(),
            reduce: args.reduce,
            min: args.min,
            max: args.max,
            on_empty: args.on_empty.into(),
            on_nan: args.on_nan.into(),
            auth,
            client: client.clone(),
        }));
    }
    anyhow::ensure!(
        !checks.is_empty(),
        "nothing to watch: give health-url, or prometheus-url with query"
    );
    let control = match &args.control_url {
        Some(url) => Some(Box::new(HttpCheck {
            name: "control".to_owned(),
            url: checked_url(url, "control-url")?,
            expect: crate::http::Statuses::default(),
            body: None,
            headers: reqwest::header::HeaderMap::new(),
            client,
        }) as Box<dyn Check>),
        None => None,
    };
    Ok(Checks { checks, control })
}

fn checked_url(url: &str, input: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{input} {url:?}"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "{input} {url:?} must be an http or https URL"
    );
    Ok(url.to_owned())
}

/// `Name: value` lines; the values are marked sensitive.
fn headers(lines: &[gantry_secret::Secret]) -> anyhow::Result<reqwest::header::HeaderMap> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut map = reqwest::header::HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .expose()
            .split_once(':')
            .context("a header must be `Name: value`")?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| anyhow::anyhow!("{:?} is not a header name", name.trim()))?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            anyhow::anyhow!("the value of header {name} is not a valid header value")
        })?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// The schedule: warm-up ticks from the initial delay, counted ticks from the duration.
pub fn schedule(args: &Args) -> anyhow::Result<Schedule> {
    let interval_ms = args.interval.as_millis().max(1);
    let warm_up = args
        .initial_delay
        .map_or(0, |delay| delay.as_millis().div_ceil(interval_ms));
    let ticks = (args.duration.as_millis() / interval_ms).max(1);
    let schedule = Schedule {
        interval: args.interval,
        timeout: args.probe_timeout,
        warm_up: u32::try_from(warm_up).context("initial-delay is too long")?,
        ticks: u32::try_from(ticks).context("duration is too long")?,
    };
    schedule.validate().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        args.consecutive_failures > 0
            && args.consecutive_errors > 0
            && args.consecutive_inconclusive > 0,
        "consecutive-failures, consecutive-errors and consecutive-inconclusive must be at least 1"
    );
    Ok(schedule)
}

/// Where the environment lives.
pub struct Target {
    /// The environment's tag (for a GitOps-only environment: the image's repository, named as
    /// the policy would tag it; only its repository is used, to read signatures).
    pub tag: Reference,
    /// The environment's GitOps files, when it has no registry tag: the canary is what they
    /// hold, and the rollback is a commit there.
    pub gitops: Option<gantry_policy::GitOps>,
    /// The environment, for people: the tag, or the GitOps files.
    pub shown: String,
    /// Its aliases.
    pub aliases: Vec<Reference>,
    /// GitHub shows it as production (the last environment).
    pub production: bool,
    /// The policy (for its signature requirements).
    pub policy: Policy,
}

/// Reads the policy: the environment's tag and aliases.
pub fn target(args: &Args) -> anyhow::Result<Target> {
    let (path, explicit) = match &args.policy {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let policy = Policy::load(&path, explicit)?;
    let environment = policy.environment(&args.env)?;
    let gitops = environment.gitops.clone().filter(|_| !environment.registry);
    anyhow::ensure!(
        gitops.is_some() || !environment.tag.contains("{digest12}"),
        "environment {} is tagged per digest ({:?}): a watch needs the one tag that names it",
        args.env,
        environment.tag
    );
    let placeholder = Digest::sha256(b"");
    let tag = policy.reference(&args.env, &args.image, &placeholder)?;
    let aliases = policy.aliases(&args.env, &args.image, &placeholder)?;
    let production = policy
        .environments
        .last()
        .is_some_and(|last| last.name == args.env);
    let shown = gitops.as_ref().map_or_else(
        || tag.to_string(),
        |g| {
            let files: Vec<&str> = g.files.iter().map(|(f, _)| f.as_str()).collect();
            let repository = match &g.repository {
                gantry_policy::GitOpsRepository::GitHub(name) => name.clone(),
                gantry_policy::GitOpsRepository::Url(url) => url.clone(),
            };
            format!("{repository}@{}:{}", g.branch, files.join(","))
        },
    );
    Ok(Target {
        aliases: if gitops.is_some() {
            Vec::new()
        } else {
            aliases
        },
        tag,
        gitops,
        shown,
        production,
        policy,
    })
}

/// The GitHub side, when a token is given.
pub struct GitHubSide {
    /// The client.
    pub github: GitHub,
    /// Whose deployments.
    pub repository: Repository,
}

/// The GitHub client and repository, when there is a token; `None` without one.
pub fn github(args: &Args, ctx: &gantry_actions::Context) -> anyhow::Result<Option<GitHubSide>> {
    let Some(token) = args.github.token.token()? else {
        return Ok(None);
    };
    let Some(repository) = args
        .repository
        .clone()
        .or_else(|| ctx.github.repository.clone())
    else {
        return Ok(None);
    };
    Ok(Some(GitHubSide {
        github: args.github.client(
            token,
            ctx.github.api_url.as_deref(),
            &args.registry.ca_files,
        )?,
        repository: repository
            .parse()
            .context("repository (or GITHUB_REPOSITORY)")?,
    }))
}

/// Everything proven before the first tick.
pub struct Ready {
    /// The digest the environment holds (the canary).
    pub canary: Digest,
    /// The rollback target and where it came from (`None` with `rollback: false` and none found).
    pub previous: Option<(Digest, &'static str)>,
    /// The tag and the aliases that hold the canary, with the previous manifest kept.
    pub kept: Vec<Kept>,
    /// Aliases that hold another digest (left alone).
    pub other_aliases: Vec<(Reference, Option<Digest>)>,
    /// The promotion's deployment being watched, and the previous digest's.
    pub current_deployment: Option<Deployed>,
    /// The previous digest's deployment, when it came from one.
    pub previous_deployment: Option<Deployed>,
    /// Who signed the previous digest, when the policy asks.
    pub previous_signed_by: Vec<String>,
}

/// Reads the environment, finds the previous digest, keeps its manifest, verifies it and proves
/// push permission. `Ok(Err(why))`: the environment does not hold the expected digest (exit 1).
pub async fn prepare(
    args: &Args,
    target: &Target,
    client: &Client,
    github: Option<&GitHubSide>,
    files: Option<&gantry_gitops::repo::Repo>,
) -> anyhow::Result<Result<Ready, String>> {
    let canary = canary(target, client, files).await?;
    if let Some(expected) = &args.digest
        && *expected != canary
    {
        return Ok(Err(format!(
            "{} points at {canary}, not {expected}: someone else moved it (superseded); nothing watched, nothing rolled back",
            target.shown
        )));
    }
    let (current_deployment, found) = match github {
        Some(side) => {
            record::deployments(&side.github, &side.repository, &args.env, &canary).await?
        }
        None => (None, None),
    };
    let previous = match (&args.previous_digest, &found) {
        (Some(digest), _) => Some((digest.clone(), "previous-digest")),
        (None, Some(deployed)) => Some((deployed.digest.clone(), "the last successful deployment")),
        (None, None) => None,
    };
    let previous_deployment =
        found.filter(|d| previous.as_ref().is_some_and(|(p, _)| *p == d.digest));
    let Some((previous_digest, _)) = previous.clone() else {
        anyhow::ensure!(
            !args.rollback,
            "no digest to roll back to: give previous-digest (promote-digest's previous-digest output), or a GitHub token and repository whose deployments of {} name one; refusing to watch a canary that could not be rolled back (or give rollback: false)",
            args.env
        );
        return Ok(Ok(Ready {
            canary,
            previous: None,
            kept: Vec::new(),
            other_aliases: Vec::new(),
            current_deployment,
            previous_deployment: None,
            previous_signed_by: Vec::new(),
        }));
    };
    anyhow::ensure!(
        previous_digest != canary,
        "the previous digest {previous_digest} is the canary itself: nothing to roll back to"
    );
    if files.is_some() {
        // The rollback is a commit of the previous digest into the files: nothing to keep; the
        // previous digest must still carry what a promotion into the environment requires.
        let previous_signed_by = verify_previous(args, target, client, &previous_digest).await?;
        return Ok(Ok(Ready {
            canary,
            previous,
            kept: Vec::new(),
            other_aliases: Vec::new(),
            current_deployment,
            previous_deployment,
            previous_signed_by,
        }));
    }
    let mut kept = vec![
        rollback::prepare(client, &target.tag, &previous_digest)
            .await
            .with_context(|| {
                format!("keeping {previous_digest} for a rollback of {}", target.tag)
            })?,
    ];
    let mut other_aliases = Vec::new();
    for alias in &target.aliases {
        let at = client
            .head_manifest(alias)
            .await
            .with_context(|| format!("reading the alias {alias}"))?
            .map(|d| d.digest);
        if at.as_ref() == Some(&canary) {
            kept.push(Kept {
                tag: alias.clone(),
                canary: canary.clone(),
                previous: kept[0].previous.clone(),
            });
        } else {
            other_aliases.push((alias.clone(), at));
        }
    }
    let previous_signed_by = verify_previous(args, target, client, &previous_digest).await?;
    if args.rollback {
        client.check_push(&target.tag).await.with_context(|| {
            format!(
                "proving push permission on {} (a rollback would need it)",
                target.tag.name()
            )
        })?;
    }
    Ok(Ok(Ready {
        canary,
        previous,
        kept,
        other_aliases,
        current_deployment,
        previous_deployment,
        previous_signed_by,
    }))
}

/// The digest the environment holds: its GitOps files', or its tag's.
async fn canary(
    target: &Target,
    client: &Client,
    files: Option<&gantry_gitops::repo::Repo>,
) -> anyhow::Result<Digest> {
    Ok(match files {
        Some(repo) => {
            let held = repo
                .current(false)
                .await
                .with_context(|| format!("reading {}", target.shown))?;
            held.digest
                .with_context(|| format!("{} holds no digest: nothing to watch", target.shown))?
                .parse::<Digest>()
                .map_err(|e| anyhow::anyhow!("{}: {e}", target.shown))?
        }
        None => {
            client
                .head_manifest(&target.tag)
                .await
                .with_context(|| format!("reading {}", target.tag))?
                .with_context(|| format!("{} does not exist: nothing to watch", target.tag))?
                .digest
        }
    })
}

/// Verifies the previous digest against every signature requirement of the paths into the
/// environment: a rollback must not bring back what a promotion would have refused.
async fn verify_previous(
    args: &Args,
    target: &Target,
    client: &Client,
    previous: &Digest,
) -> anyhow::Result<Vec<String>> {
    use gantry_sigstore::oci::verify_image;
    let mut signed_by = Vec::new();
    let here = std::path::Path::new(".");
    for (promotion, wanted) in target.policy.signatures_into(&args.env) {
        let signer = wanted.signer(here)?;
        let http = args.registry.http_client()?;
        let root = wanted.root(here, &http).await?;
        let at = target.tag.with_digest(previous.clone());
        let verified = verify_image(client, &at, &signer, &root).await.map_err(|e| {
            anyhow::anyhow!(
                "the previous digest {previous} does not carry the signature {} -> {} requires ({e}): refusing to watch a canary whose rollback would bring back an unverified image",
                promotion.from,
                promotion.to
            )
        })?;
        signed_by.push(
            verified
                .verified
                .identity
                .unwrap_or_else(|| "the required key".to_owned()),
        );
    }
    Ok(signed_by)
}

/// The redeploy hook the arguments ask for, checked now (a dispatch needs a token and a
/// repository).
pub fn hook(
    args: &Args,
    ctx: &gantry_actions::Context,
) -> anyhow::Result<Option<crate::redeploy::Hook>> {
    use crate::redeploy::Hook;
    if let Some(script) = &args.on_rollback_run {
        return Ok(Some(Hook::Run(gantry_actions::isolated::Isolated {
            name: "on-rollback".to_owned(),
            run: script.clone(),
            timeout: args.on_rollback_timeout,
            env: args.on_rollback_env.clone(),
        })));
    }
    if let Some(url) = &args.on_rollback_url {
        let roots = gantry_http::roots(&args.registry.ca_files)?;
        return Ok(Some(Hook::Call(crate::notify::Webhook {
            url: url.clone(),
            format: crate::args::WebhookFormat::Json,
            secret: args.webhook_secret.clone(),
            client: gantry_http::client(&roots, Duration::from_secs(10))?,
        })));
    }
    let Some(workflow) = &args.on_rollback_workflow else {
        return Ok(None);
    };
    let token = args
        .github
        .token
        .token()?
        .context("on-rollback-workflow needs a GitHub token with actions: write")?;
    let repository = args
        .on_rollback_repository
        .clone()
        .or_else(|| args.repository.clone())
        .or_else(|| ctx.github.repository.clone())
        .context(
            "on-rollback-workflow needs on-rollback-repository (or repository, GITHUB_REPOSITORY)",
        )?;
    Ok(Some(Hook::Dispatch {
        github: args.github.client(
            token,
            ctx.github.api_url.as_deref(),
            &args.registry.ca_files,
        )?,
        repository: repository.parse().context("on-rollback-repository")?,
        workflow: workflow.clone(),
        git_ref: args.on_rollback_ref.clone(),
    }))
}

/// Stops the watch when someone else moves the tag or an alias that held the canary.
pub struct TagGuard<'a> {
    /// The registry.
    pub client: &'a Client,
    /// The tags watched and the canary they hold.
    pub kept: &'a [Kept],
    /// The tag, when no rollback target is kept (rollback: false).
    pub tag: (&'a Reference, &'a Digest),
}

impl Guard for TagGuard<'_> {
    fn moved(&self) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        Box::pin(async move {
            let watched: Vec<(&Reference, &Digest)> = if self.kept.is_empty() {
                vec![self.tag]
            } else {
                self.kept.iter().map(|k| (&k.tag, &k.canary)).collect()
            };
            for (tag, canary) in watched {
                // A read that fails says nothing: the next tick reads again.
                if let Ok(Some(now)) = self.client.head_manifest(tag).await
                    && now.digest != *canary
                {
                    return Some(format!(
                        "{tag} was moved to {} by someone else while the canary {canary} was watched",
                        now.digest
                    ));
                }
            }
            None
        })
    }

    fn seen(&self, tick: &crate::watch::Tick) {
        let values: Vec<String> = tick
            .measurements
            .iter()
            .chain(tick.control.iter())
            .map(|m| format!("{} {:?}: {}", m.check, m.verdict, m.value))
            .collect();
        let s = tick.streaks;
        // Through the output layer: a check's value (a body, an error) cannot issue commands.
        gantry_actions::output::err(&format!(
            "tick {}{} at {:.1} s: {:?} — {} (streaks: {} failing, {} errors, {} inconclusive, {} passing)",
            tick.number,
            if tick.counted { "" } else { " (warm-up)" },
            tick.at.as_secs_f64(),
            tick.verdict,
            values.join("; "),
            s.failures,
            s.errors,
            s.inconclusive,
            s.successes
        ));
    }
}

/// How long the notifications may take after the decision was acted on.
pub const NOTIFY_BUDGET: Duration = Duration::from_secs(5);
