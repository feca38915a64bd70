//! The demo's integration step: `dispatch-integration` asks a local stand-in for GitHub (the same
//! stand-in the tests check against GitHub's OpenAPI description) to run `acme/integration`'s
//! integration workflow on the digest; the demo plays that workflow's runner: it smoke-tests the
//! image from the registry, writes the results as `JUnit`, and runs `dispatch-integration report`,
//! which writes the verdict, reports it to `acme/billing` and signs it as a test-result
//! attestation on the digest. The policy's path to staging requires that attestation to say
//! PASSED.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use dispatch_integration::DispatchIntegration;
use gantry_actions::context::GitHubContext;
use gantry_actions::tool::{Context, Mode};
use gantry_actions::{ExitStatus, Outcome, Tool as _};
use gantry_github_standin::{FakeWorkflow, RunPlan, StandIn, TOKEN};
use gantry_oci::{Client, Reference};
use serde_json::Value;

/// The integration repository, and the service repository the demo's image comes from.
pub const INTEGRATION: &str = "acme/integration";
pub const SERVICE: &str = "acme/billing";
const COMMIT: &str = "5f0c2d9e0c1b6a3b8f2e4d7c9a1b3c5d7e9f0a1b";

/// The local GitHub: the stand-in, served on loopback until dropped.
pub struct LocalGitHub {
    standin: StandIn,
    url: String,
    server: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for LocalGitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What one integration step found.
pub struct Integrated {
    /// The caller's outcome.
    pub outcome: Outcome,
    /// The integration run's id.
    pub run_id: String,
    /// The tests, as `passed/total`.
    pub tests: String,
    /// The commit status and the deployment status the reporter set on the service repository.
    pub reported: (String, String),
}

impl LocalGitHub {
    /// Starts the stand-in with the integration workflow: dispatched runs stay in progress until
    /// the demo, as their runner, finishes them.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let standin = StandIn::new();
        standin.set_own_url(&url);
        let mut workflow = FakeWorkflow::new(
            INTEGRATION,
            "integration.yml",
            &dispatch_integration::PAYLOAD_INPUTS,
            "integration ${{ inputs.source_repository }} ${{ inputs.correlation_id }}",
            RunPlan::new(Duration::ZERO, Duration::from_hours(1), "success"),
        );
        workflow.concurrency = None;
        standin.add_workflow(workflow);
        let router = standin.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            standin,
            url,
            server,
            dir: tempfile::tempdir()?,
        })
    }

    fn context(lookup: &[(&str, String)]) -> Context {
        Context {
            mode: Mode::Cli,
            github: GitHubContext::from_lookup(|name| {
                lookup
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            }),
        }
    }

    /// Dispatches the integration run for `image@digest` and waits for its verdict, while the
    /// demo runs it.
    pub async fn integrate(
        &mut self,
        client: &Client,
        image: &str,
        digest: &str,
        host: &str,
        key: &std::path::Path,
    ) -> anyhow::Result<Integrated> {
        let before: Vec<u64> = self.standin.runs().iter().map(|r| r.id).collect();
        let caller = async {
            let args = dispatch_integration::Args::try_parse_from([
                "dispatch-integration",
                "--repository",
                INTEGRATION,
                "--workflow",
                "integration.yml",
                "--image",
                image,
                "--digest",
                digest,
                "--github-api-url",
                &self.url,
                "--github-token",
                TOKEN,
                "--timeout",
                "2m",
                "--poll-interval",
                "200ms",
            ])?;
            let ctx = Self::context(&[
                ("GITHUB_REPOSITORY", SERVICE.to_owned()),
                ("GITHUB_SHA", COMMIT.to_owned()),
                ("GITHUB_RUN_ID", "4242".to_owned()),
                ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
                ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
            ]);
            DispatchIntegration::run(args, &ctx).await
        };
        let runner = self.run_integration(client, host, key, &before);
        let (outcome, tests) = tokio::try_join!(Box::pin(caller), Box::pin(runner))?;
        let outputs: std::collections::BTreeMap<String, String> =
            outcome.outputs().iter().cloned().collect();
        let context = dispatch_integration::status_context(image);
        let state = |value: Option<&Value>| {
            value
                .and_then(|v| v["state"].as_str())
                .unwrap_or("none")
                .to_owned()
        };
        let commit_status = state(
            self.standin
                .commit_statuses(SERVICE, COMMIT)
                .iter()
                .rfind(|s| s["context"] == context.as_str()),
        );
        let deployment = self
            .standin
            .deployments()
            .iter()
            .rfind(|d| d["payload"]["digest"] == digest)
            .and_then(|d| d["id"].as_u64());
        let deployment_status = state(
            deployment
                .map(|id| self.standin.statuses(id))
                .unwrap_or_default()
                .last(),
        );
        Ok(Integrated {
            run_id: outputs.get("run-id").cloned().unwrap_or_default(),
            outcome,
            tests,
            reported: (commit_status, deployment_status),
        })
    }

    /// The integration workflow's runner: waits for the new run, smoke-tests the image, reports.
    async fn run_integration(
        &self,
        client: &Client,
        host: &str,
        key: &std::path::Path,
        before: &[u64],
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let run = loop {
            if let Some(run) = self
                .standin
                .runs()
                .into_iter()
                .find(|r| !before.contains(&r.id))
            {
                break run;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no integration run was dispatched"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let input = |key: &str| {
            run.inputs
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (image, digest) = (input("image"), input("digest"));
        let cases = smoke_test(client, &format!("{image}@{digest}"), host).await;
        let failed = cases.iter().filter(|(_, ok)| !ok).count();
        let junit = self.dir.path().join(format!("junit-{}.xml", run.id));
        std::fs::write(&junit, junit_xml(&cases))?;
        let verdict_file = self.dir.path().join(format!("verdict-{}.json", run.id));
        let args = dispatch_integration::Args::try_parse_from([
            "dispatch-integration",
            "report",
            "--source-repository",
            &input("source_repository"),
            "--source-commit",
            &input("source_commit"),
            "--image",
            &image,
            "--digest",
            &digest,
            "--correlation-id",
            &input("correlation_id"),
            "--allow-source",
            "acme/*",
            "--test-results",
            &junit.display().to_string(),
            "--verdict-file",
            &verdict_file.display().to_string(),
            "--github-api-url",
            &self.url,
            "--github-token",
            TOKEN,
            "--attest",
            "true",
            "--key",
            &key.display().to_string(),
            "--tlog-upload",
            "false",
            "--insecure-registry",
            host,
        ])?;
        let ctx = Self::context(&[
            ("GITHUB_REPOSITORY", INTEGRATION.to_owned()),
            ("GITHUB_RUN_ID", run.id.to_string()),
            ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
            ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
        ]);
        let reported = DispatchIntegration::run(args, &ctx).await?;
        let verdict = std::fs::read(&verdict_file).context("the reporter's verdict")?;
        let conclusion = if reported.status() == ExitStatus::Success {
            "success"
        } else {
            "failure"
        };
        let log = cases
            .iter()
            .map(|(name, ok)| format!("{} {name}", if *ok { "ok  " } else { "FAIL" }))
            .collect::<Vec<_>>()
            .join("\n");
        self.standin.finish_run(
            run.id,
            conclusion,
            vec![("smoke-test".to_owned(), conclusion.to_owned(), log)],
            Some(verdict),
        );
        Ok(format!("{}/{}", cases.len() - failed, cases.len()))
    }
}

/// The integration tests of the demo's image, against the registry: the digest resolves to a
/// manifest that matches it, and its configuration runs `/gantry`.
async fn smoke_test(client: &Client, reference: &str, host: &str) -> Vec<(String, bool)> {
    let mut cases = Vec::new();
    let reference: Option<Reference> = reference.parse().ok();
    let manifest = match &reference {
        Some(r) => client.manifest(r).await.ok(),
        None => None,
    };
    cases.push((format!("the digest resolves in {host}"), manifest.is_some()));
    let config = match (&reference, &manifest) {
        (Some(r), Some(m)) => {
            let parsed: Option<gantry_oci::manifest::ManifestFields> =
                serde_json::from_slice(&m.bytes).ok();
            match parsed.and_then(|p| p.config) {
                Some(config) => client.blob(r, &config.digest, 64 * 1024).await.ok(),
                None => None,
            }
        }
        _ => None,
    };
    let entrypoint = config
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .map(|c| c["config"]["Entrypoint"].clone());
    cases.push((
        "the image runs /gantry".to_owned(),
        entrypoint == Some(serde_json::json!(["/gantry"])),
    ));
    cases
}

fn junit_xml(cases: &[(String, bool)]) -> String {
    let failures = cases.iter().filter(|(_, ok)| !ok).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"smoke\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
        cases.len()
    );
    for (name, ok) in cases {
        let name = name
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;");
        if *ok {
            let _ = writeln!(xml, "    <testcase name=\"{name}\"/>");
        } else {
            let _ = writeln!(
                xml,
                "    <testcase name=\"{name}\"><failure message=\"failed\"/></testcase>"
            );
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}
