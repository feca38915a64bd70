//! The reporter: the integration run's verdict, written to `gantry-verdict.json` and reported to
//! the service repository as a commit status and a deployment to `integration` (≤ 5 requests;
//! idempotent per run attempt: a re-run's verdict replaces the status and adds a status to the
//! same deployment).

use anyhow::Context as _;
use gantry_actions::{Context, Outcome};
use gantry_github::{
    CommitState, DeploymentState, GitHub, NewCommitStatus, NewDeployment, NewDeploymentStatus,
    Repository,
};
use serde_json::json;

use crate::args::{Args, Phase};
use crate::report::Report;
use crate::verdict::{JobResult, VERDICT_SCHEMA, Verdict, parse_results};
use gantry_sigstore::oci::TEST_RESULT_PREDICATE;

/// The environment the deployment records.
pub const ENVIRONMENT: &str = "integration";
/// The most a test results file may be.
const RESULTS_LIMIT: u64 = 64 * 1024 * 1024;

/// Whether `repository` matches one of `allowed` (`owner/name`, or `owner/*`), case-insensitively
/// as GitHub names are.
pub fn allowed(repository: &str, allowed: &[String]) -> bool {
    let repository = repository.to_ascii_lowercase();
    allowed.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.strip_suffix("/*") {
            Some(owner) => repository.split_once('/').is_some_and(|(o, _)| o == owner),
            None => pattern == repository,
        }
    })
}

/// The commit status's context: `gantry/integration/` and the image without its registry.
pub fn status_context(image: &str) -> String {
    let path = match image.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => image,
    };
    format!("gantry/integration/{path}")
}

struct Subject {
    repository: Repository,
    commit: String,
    image: String,
    digest: String,
    correlation_id: String,
}

fn subject(args: &Args) -> anyhow::Result<Subject> {
    let need = |value: &Option<String>, name: &str| {
        value
            .clone()
            .filter(|v| !v.is_empty())
            .with_context(|| format!("report needs {name} (the dispatch's input)"))
    };
    let repository = need(&args.source_repository, "source-repository")?;
    Ok(Subject {
        repository: repository
            .parse()
            .with_context(|| format!("source-repository {repository:?}"))?,
        commit: need(&args.source_commit, "source-commit")?,
        image: need(&args.image, "image")?,
        digest: args
            .digest
            .as_ref()
            .map(ToString::to_string)
            .context("report needs digest (the dispatch's input)")?,
        correlation_id: need(&args.correlation_id, "correlation-id")?,
    })
}

/// The integration run the reporter runs in: repository, run id, attempt, page.
fn this_run(ctx: &Context) -> anyhow::Result<(Repository, u64, u32, String)> {
    let integration: Repository = ctx
        .github
        .repository
        .as_deref()
        .context("report runs in the integration workflow: GITHUB_REPOSITORY is not set")?
        .parse()?;
    let run_id = ctx
        .github
        .run_id
        .context("report runs in the integration workflow: GITHUB_RUN_ID is not set")?;
    let attempt = ctx.github.run_attempt.unwrap_or(1);
    Ok((
        integration,
        run_id,
        attempt,
        ctx.github.run_url().unwrap_or_default(),
    ))
}

/// Runs the reporter.
pub(crate) async fn report(
    args: &Args,
    ctx: &Context,
    github: &GitHub,
    source: &GitHub,
) -> anyhow::Result<Outcome> {
    let subject = subject(args)?;
    if !allowed(&subject.repository.to_string(), &args.allow_source) {
        return Ok(Outcome::failed(format!(
            "{} is not in allow-source ({}): nothing reported",
            subject.repository,
            args.allow_source.join(", ")
        )));
    }
    let (integration, run_id, attempt, run_url) = this_run(ctx)?;
    let context = status_context(&subject.image);
    let target_url = (!run_url.is_empty()).then(|| run_url.clone());
    let mut report = Report {
        run_id: run_id.to_string(),
        run_url: run_url.clone(),
        run_attempt: attempt.to_string(),
        correlation_id: subject.correlation_id.clone(),
        ..Report::default()
    };

    if args.phase == Phase::Start {
        pending(source, &subject, target_url, context).await?;
        "pending".clone_into(&mut report.conclusion);
        return Ok(Outcome::success().with_outputs(&report).headline(format!(
            "{}@{}: integration pending",
            subject.repository, subject.commit
        )));
    }

    // Who signs is settled before anything is reported: a bad key changes nothing.
    let attester = if args.attest {
        Some(Attester::new(args, ctx, &subject).await?)
    } else {
        None
    };
    let results = args.test_results.as_deref().map(read_results).transpose()?;
    let tests = results.as_ref().map(|r| r.0);
    let jobs: Vec<JobResult> = github
        .run_jobs(&integration, run_id, attempt)
        .await
        .context("reading this run's jobs")?
        .into_iter()
        .filter(|j| j.status == "completed")
        .map(|j| JobResult {
            name: j.name,
            conclusion: j.conclusion.unwrap_or_default(),
        })
        .collect();
    let why_failed = judge(&jobs, tests);
    let passed = why_failed.is_none();
    let verdict = Verdict {
        schema: VERDICT_SCHEMA.to_owned(),
        verdict: if passed { "passed" } else { "failed" }.to_owned(),
        image: subject.image.clone(),
        digest: subject.digest.clone(),
        source_repository: subject.repository.to_string(),
        source_commit: subject.commit.clone(),
        correlation_id: subject.correlation_id.clone(),
        run_id,
        run_attempt: attempt,
        run_url: run_url.clone(),
        jobs,
        tests,
    };
    let text = serde_json::to_string_pretty(&verdict)?;
    std::fs::write(&args.verdict_file, format!("{text}\n"))
        .with_context(|| format!("writing {}", args.verdict_file.display()))?;

    if let Some(attester) = &attester {
        let names = results.map(|r| r.1).unwrap_or_default();
        let digest = attester
            .attest(&predicate(&verdict, &integration, &names))
            .await?;
        report.attestation_digest = digest.to_string();
    }
    record(
        source,
        &subject,
        &integration,
        run_id,
        &run_url,
        why_failed.as_deref(),
        tests,
    )
    .await?;
    report.conclusion = verdict.verdict.clone();
    report.verdict = serde_json::to_string(&verdict)?;
    report.tests_passed = tests.map(|t| t.passed.to_string()).unwrap_or_default();
    report.tests_failed = tests.map(|t| t.failed.to_string()).unwrap_or_default();
    let headline = format!(
        "{}@{}: integration {} (attempt {attempt})",
        subject.repository, subject.commit, verdict.verdict
    );
    let outcome = Outcome::success().with_outputs(&report).headline(headline);
    Ok(match why_failed {
        None => outcome,
        Some(why) => {
            let mut failed = outcome;
            failed.failure = Some(format!("integration failed: {why}"));
            failed
        }
    })
}

/// The pending commit status at the start of the integration run.
async fn pending(
    source: &GitHub,
    subject: &Subject,
    target_url: Option<String>,
    context: String,
) -> anyhow::Result<()> {
    source
        .create_commit_status(
            &subject.repository,
            &subject.commit,
            &NewCommitStatus {
                state: CommitState::Pending,
                target_url,
                description: format!("integration tests running for {}", subject.digest),
                context,
            },
        )
        .await
        .context("setting the pending commit status")
}

/// Why the run failed, or `None` when it passed: every finished job succeeded (or was skipped),
/// no test failed, and something was proven at all.
fn judge(jobs: &[JobResult], tests: Option<crate::Tests>) -> Option<String> {
    let bad_jobs: Vec<&JobResult> = jobs
        .iter()
        .filter(|j| !matches!(j.conclusion.as_str(), "success" | "skipped" | "neutral"))
        .collect();
    let failed_tests = tests.map_or(0, |t| t.failed);
    if !bad_jobs.is_empty() {
        Some(
            bad_jobs
                .iter()
                .map(|j| format!("{} {}", j.name, j.conclusion))
                .collect::<Vec<_>>()
                .join(", "),
        )
    } else if failed_tests > 0 {
        Some(format!("{failed_tests} tests failed"))
    } else if jobs.is_empty() && tests.is_none() {
        Some("no job finished before the reporter and no test results were given".to_owned())
    } else {
        None
    }
}

/// Test names: passed, failed, skipped.
type Names = (Vec<String>, Vec<String>, Vec<String>);

/// Signs and attaches the test-result attestation of one image digest.
struct Attester {
    identity: gantry_sigstore::sign::Identity,
    client: gantry_oci::Client,
    http: reqwest::Client,
    reference: gantry_oci::Reference,
}

impl Attester {
    async fn new(args: &Args, ctx: &Context, subject: &Subject) -> anyhow::Result<Self> {
        let reference: gantry_oci::Reference = format!("{}@{}", subject.image, subject.digest)
            .parse()
            .with_context(|| format!("image {:?}", subject.image))?;
        let identity = args.signing.identity(|| ctx.id_token("sigstore")).await?;
        let client = args
            .registry
            .client(&[&reference], args.token().token()?.as_ref())?;
        Ok(Self {
            identity,
            client,
            http: args.registry.http_client()?,
            reference,
        })
    }

    async fn attest(&self, predicate: &serde_json::Value) -> anyhow::Result<gantry_oci::Digest> {
        let digest = self
            .reference
            .digest()
            .context("the image has its digest")?;
        let statement = gantry_sigstore::sign::statement(
            &self.reference.name(),
            digest,
            TEST_RESULT_PREDICATE,
            predicate,
        );
        let (attestation, _) = gantry_sigstore::sign::attest(
            &self.client,
            &self.http,
            &self.identity,
            &self.reference,
            &statement,
            TEST_RESULT_PREDICATE,
        )
        .await
        .with_context(|| {
            format!(
                "attaching the test-result attestation to {}",
                self.reference
            )
        })?;
        Ok(attestation)
    }
}

/// The in-toto test-result predicate of a verdict: the jobs and the tests by name.
fn predicate(verdict: &Verdict, integration: &Repository, names: &Names) -> serde_json::Value {
    let ok = |j: &&JobResult| matches!(j.conclusion.as_str(), "success" | "skipped" | "neutral");
    let mut passed: Vec<String> = verdict
        .jobs
        .iter()
        .filter(ok)
        .map(|j| format!("job {}", j.name))
        .collect();
    passed.extend(names.0.iter().cloned());
    let mut failed: Vec<String> = verdict
        .jobs
        .iter()
        .filter(|j| !ok(j))
        .map(|j| format!("job {} ({})", j.name, j.conclusion))
        .collect();
    failed.extend(names.1.iter().cloned());
    let mut predicate = json!({
        "result": if verdict.passed() { "PASSED" } else { "FAILED" },
        "passedTests": passed,
        "warnedTests": [],
        "failedTests": failed,
        "configuration": [],
    });
    if !verdict.run_url.is_empty() {
        predicate["url"] = json!(verdict.run_url);
        predicate["configuration"] = json!([{
            "name": format!("{integration} run {} attempt {}", verdict.run_id, verdict.run_attempt),
            "uri": verdict.run_url,
        }]);
    }
    predicate
}

fn read_results(path: &std::path::Path) -> anyhow::Result<(crate::Tests, Names)> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= RESULTS_LIMIT,
        "{} is {size} bytes, at most {RESULTS_LIMIT} are read",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let tests = parse_results(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((tests, crate::verdict::test_names(&text)))
}

/// The verdict on the service repository's commit: a commit status, and a status on the run's
/// deployment to `integration` (created once per run; found again on a re-run attempt).
async fn record(
    source: &GitHub,
    subject: &Subject,
    integration: &Repository,
    run_id: u64,
    run_url: &str,
    why_failed: Option<&str>,
    tests: Option<crate::Tests>,
) -> anyhow::Result<()> {
    let passed = why_failed.is_none();
    let target_url = (!run_url.is_empty()).then(|| run_url.to_owned());
    let context = status_context(&subject.image);
    let description = match (why_failed, tests) {
        (Some(why), _) => format!("integration failed: {why}"),
        (None, Some(t)) => format!("integration passed: {} tests", t.passed),
        (None, None) => "integration passed".to_owned(),
    };
    source
        .create_commit_status(
            &subject.repository,
            &subject.commit,
            &NewCommitStatus {
                state: if passed {
                    CommitState::Success
                } else {
                    CommitState::Failure
                },
                target_url: target_url.clone(),
                description: description.clone(),
                context,
            },
        )
        .await
        .context("setting the commit status")?;
    let existing = source
        .deployments(&subject.repository, ENVIRONMENT, 30)
        .await
        .context("reading the integration deployments")?
        .into_iter()
        .find(|d| {
            d.payload["integration_run_id"] == json!(run_id)
                && d.payload["correlation_id"] == json!(subject.correlation_id)
        });
    let deployment = match existing {
        Some(deployment) => deployment.id,
        None => {
            source
                .create_deployment(
                    &subject.repository,
                    &NewDeployment {
                        git_ref: subject.commit.clone(),
                        environment: ENVIRONMENT.to_owned(),
                        description: format!("integration tests of {}", subject.digest),
                        payload: json!({
                            "image": subject.image,
                            "digest": subject.digest,
                            "correlation_id": subject.correlation_id,
                            "integration_repository": integration.to_string(),
                            "integration_run_id": run_id,
                        }),
                        production_environment: false,
                    },
                )
                .await
                .context("recording the integration deployment")?
                .id
        }
    };
    source
        .create_deployment_status(
            &subject.repository,
            deployment,
            &NewDeploymentStatus {
                state: if passed {
                    DeploymentState::Success
                } else {
                    DeploymentState::Failure
                },
                description,
                log_url: target_url,
                auto_inactive: false,
            },
        )
        .await
        .context("recording the integration verdict")?;

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_owners_and_names() {
        let list = vec!["acme/*".to_owned(), "partner/billing".to_owned()];
        assert!(allowed("acme/orders", &list));
        assert!(allowed("ACME/Orders", &list));
        assert!(allowed("partner/billing", &list));
        assert!(!allowed("partner/orders", &list));
        assert!(!allowed("acme-evil/orders", &list));
        assert!(!allowed("acme/orders", &[]));
    }

    #[test]
    fn contexts_drop_the_registry() {
        assert_eq!(
            status_context("ghcr.io/acme/billing"),
            "gantry/integration/acme/billing"
        );
        assert_eq!(
            status_context("localhost:5000/billing"),
            "gantry/integration/billing"
        );
        assert_eq!(
            status_context("acme/billing"),
            "gantry/integration/acme/billing"
        );
    }
}
