//! The integration verdict as an attestation: `dispatch-integration report --attest` signs an
//! in-toto test-result attestation on the digest, and a promotion path that requires
//! `test-result` (and verify-image) accept it only when it says PASSED; a re-run attempt that
//! passes lets the digest on.

use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use gantry_oci::{Client, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_testkit::github::{FakeWorkflow, GitHubFake, RunPlan, TOKEN};
use gantry_testkit::{Auth, Backend, Registry};
use serde_json::Map;

use crate::signing::text;
use crate::{gantry, json};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// `gantry dispatch-integration report --attest` for `run`'s `attempt`.
fn report(fake: &GitHubFake, run: u64, attempt: u32, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["dispatch-integration", "report", "--json"])
        .args(["--github-api-url", &fake.url()])
        .args([
            "--source-repository",
            "acme/billing",
            "--source-commit",
            COMMIT,
        ])
        .args(["--correlation-id", "gantry-0123456789abcdef0123"])
        .args(["--allow-source", "acme/*", "--attest", "true"])
        .args(["--tlog-upload", "false"])
        .args(args)
        .env("GANTRY_GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "acme/integration")
        .env("GITHUB_RUN_ID", run.to_string())
        .env("GITHUB_RUN_ATTEMPT", attempt.to_string())
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env_remove("GITHUB_API_URL")
        .output()
        .expect("run gantry")
}

struct Setup {
    registry: Registry,
    fake: GitHubFake,
    dir: tempfile::TempDir,
    client: Client,
    repository: String,
    digest: String,
    key: String,
    public: String,
}

impl Setup {
    /// An image pushed to dev and signed with a fresh key; the fake GitHub's integration run.
    async fn new() -> Option<Self> {
        let registry = Registry::start_on(Backend::Gantry, Auth::Anonymous)?;
        let fake = GitHubFake::start().expect("fake GitHub")?;
        let host = registry.host();
        let client = Client::plain_http(&host).expect("client");
        let image = ScratchImage::build(
            &[ImageFile {
                path: "/app".into(),
                mode: 0o755,
                bytes: Bytes::from_static(b"#!/bin/sh\necho billing\n"),
            }],
            &ImageConfig::default(),
        )
        .expect("image");
        let dev: Reference = format!("{host}/acme/billing:dev").parse().expect("ref");
        image.push(&client, &dev).await.expect("push");
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, public) = crate::sbom::key_pair(dir.path());
        let setup = Self {
            repository: format!("{host}/acme/billing"),
            digest: image.digest().to_string(),
            key: key.to_str().expect("utf8").to_owned(),
            public: public.to_str().expect("utf8").to_owned(),
            registry,
            fake,
            dir,
            client,
        };
        let pinned = setup.pinned();
        let signed = gantry(&[
            "sign-image",
            "--image",
            &pinned,
            "--key",
            &setup.key,
            "--tlog-upload",
            "false",
            "--insecure-registry",
            &host,
            "--json",
        ]);
        assert_eq!(signed.status.code(), Some(0), "{}", text(&signed));
        Some(setup)
    }

    fn pinned(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }

    /// The reporter for `run`'s `attempt`, with a `JUnit` file of 2 tests, `failures` failing.
    fn report(&self, run: u64, attempt: u32, failures: u32) -> Output {
        let junit = self.dir.path().join("results.xml");
        std::fs::write(
            &junit,
            format!(
                r#"<testsuite name="e2e" tests="2" failures="{failures}"><testcase classname="Orders" name="creates"/><testcase classname="Orders" name="cancels">{}</testcase></testsuite>"#,
                if failures > 0 { "<failure message=\"boom\"/>" } else { "" }
            ),
        )
        .expect("junit");
        let verdict = self.dir.path().join("gantry-verdict.json");
        report(
            &self.fake,
            run,
            attempt,
            &[
                "--image",
                &self.repository,
                "--digest",
                &self.digest,
                "--key",
                &self.key,
                "--insecure-registry",
                &self.registry.host(),
                "--test-results",
                junit.to_str().expect("utf8"),
                "--verdict-file",
                verdict.to_str().expect("utf8"),
            ],
        )
    }

    fn verify(&self) -> Output {
        gantry(&[
            "verify-image",
            "--image",
            &self.pinned(),
            "--key",
            &self.public,
            "--insecure-ignore-tlog",
            "--require-attestation",
            "test-result",
            "--require-signature",
            "false",
            "--insecure-registry",
            &self.registry.host(),
            "--json",
        ])
    }

    fn promote(&self) -> Output {
        let policy = self.dir.path().join("gantry.yml");
        std::fs::write(
            &policy,
            format!(
                "version: 1\nenvironments:\n  - name: dev\n  - name: staging\npromotions:\n  - from: dev\n    to: staging\n    require-signature:\n      key: {}\n      insecure-ignore-tlog: true\n    require-attestation: [test-result]\n",
                self.public
            ),
        )
        .expect("policy");
        gantry(&[
            "promote-digest",
            "--image",
            &self.repository,
            "--digest",
            &self.digest,
            "--source-env",
            "dev",
            "--target-env",
            "staging",
            "--policy",
            policy.to_str().expect("utf8"),
            "--insecure-registry",
            &self.registry.host(),
            "--json",
        ])
    }

    async fn staging(&self) -> Option<String> {
        let staging: Reference = format!("{}:staging", self.repository).parse().expect("ref");
        self.client
            .resolve(&staging)
            .await
            .ok()
            .map(|at| at.digest.to_string())
    }
}

fn attestation_of(output: &Output) -> String {
    json(output)["outputs"]["attestation-digest"]
        .as_str()
        .expect("attestation")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_requires_a_passing_test_result_attestation() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    setup.fake.add_workflow(FakeWorkflow::new(
        "acme/integration",
        "integration.yml",
        &[],
        "integration",
        RunPlan::new(Duration::ZERO, Duration::ZERO, "failure"),
    ));
    let run = setup
        .fake
        .start_run("acme/integration", "integration.yml", &Map::new());

    // Attempt 1 fails: the attestation says FAILED, and nothing accepts it.
    let failed = setup.report(run, 1, 1);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let first = attestation_of(&failed);
    assert!(first.starts_with("sha256:"), "{first}");
    let refused = setup.verify();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("says FAILED, expected PASSED"),
        "{}",
        text(&refused)
    );
    let blocked = setup.promote();
    assert_eq!(blocked.status.code(), Some(1), "{}", text(&blocked));
    assert!(
        text(&blocked).contains("requires attestation"),
        "{}",
        text(&blocked)
    );
    assert_eq!(setup.staging().await, None, "staging untouched");

    // The re-run attempt passes: its attestation says PASSED, and the digest moves on.
    setup
        .fake
        .rerun(run, RunPlan::new(Duration::ZERO, Duration::ZERO, "success"));
    let passed = setup.report(run, 2, 0);
    assert_eq!(passed.status.code(), Some(0), "{}", text(&passed));
    let second = attestation_of(&passed);
    assert_ne!(second, first, "a new attempt, a new attestation");
    let again = setup.report(run, 2, 0);
    assert_eq!(
        attestation_of(&again),
        second,
        "the same attempt reported twice attaches nothing new"
    );
    let accepted = setup.verify();
    assert_eq!(accepted.status.code(), Some(0), "{}", text(&accepted));
    let promoted = setup.promote();
    assert_eq!(promoted.status.code(), Some(0), "{}", text(&promoted));
    assert_eq!(setup.staging().await, Some(setup.digest.clone()));
}
