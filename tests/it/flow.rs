//! The whole flow as users wire it: seed 002's and seed 000's example workflows call gantry's
//! reusable workflows, and [`crate::runner`] plays them with the static binary. The callers' own
//! `with:` blocks (from `examples/`) drive the reusable workflows, whose steps' own `env:` blocks
//! drive gantry; each step's outputs feed the next exactly as the files wire them. Only what this
//! machine cannot reach is replaced: the image repository (gantry's registry instead of ghcr.io),
//! Sigstore (@sigstore/mock's services), GitHub (the stand-in behind prism, checked against
//! GitHub's OpenAPI description), the Docker build and the Trivy database (played steps).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::os::unix::fs::PermissionsExt as _;

use bytes::Bytes;
use gantry_oci::{Client, Digest, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_testkit::github::{FakeWorkflow, GitHubFake, RunPlan, TOKEN};
use gantry_testkit::peers::MockSigstore;
use gantry_testkit::{Auth, Backend, Registry};
use serde_json::{Map, Value, json};

use crate::runner::Runner;

/// The identity GitHub's OIDC token carries in a job of gantry's build-sign workflow.
const BUILD_SIGN: &str =
    "https://github.com/gantry-dev/gantry/.github/workflows/build-sign.yml@refs/heads/main";
const ACTOR: &str = "lars";

/// Everything a flow runs against.
pub(crate) struct Stage {
    pub(crate) binary: PathBuf,
    registry: Registry,
    pub(crate) sigstore: MockSigstore,
    github: GitHubFake,
    runtime: tokio::runtime::Runtime,
    oidc_url: String,
    health: Arc<AtomicU16>,
    health_url: String,
    webhooks: Arc<Mutex<Vec<(String, Bytes)>>>,
    webhook_url: String,
    artifacts: Artifacts,
    /// The scan finds a CRITICAL vulnerability while set.
    vulnerable: Arc<AtomicBool>,
    /// The identity tokens GitHub's token endpoint gives, by the runner's request token.
    tokens: Tokens,
}

/// Identity tokens by request token.
type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// Uploaded artifacts by name: the file's path and bytes.
type Artifacts = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

pub(crate) fn map(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect()
}

impl Stage {
    /// The registry, Sigstore, GitHub, GitHub's OIDC token endpoint and a canary whose health the
    /// test sets; `None` after a loud skip where a component is missing (a failure in CI).
    pub(crate) fn start(repository: &str, identity: &str) -> Option<Self> {
        let binary = crate::dist_binary()?;
        let registry = Registry::start_on(Backend::Gantry, Auth::Anonymous)?;
        let claims = json!({
            "repository": repository,
            "sha": COMMIT,
            "ref": "refs/heads/main",
            "event_name": "push",
            "job_workflow_ref": identity.trim_start_matches("https://github.com/"),
        });
        let sigstore = MockSigstore::start(identity, &claims.to_string())?;
        let github = GitHubFake::start().expect("the GitHub stand-in")?;
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let health = Arc::new(AtomicU16::new(200));
        let webhooks = Arc::new(Mutex::new(Vec::new()));
        let tokens: Tokens = Arc::new(Mutex::new(HashMap::from([(
            "runner-request-token".to_owned(),
            sigstore.token.clone(),
        )])));
        let minted = tokens.clone();
        let (oidc_url, health_url, webhook_url) = runtime.block_on(async {
            let status = health.clone();
            let heard = webhooks.clone();
            let app = axum::Router::new()
                .route(
                    "/_apis/token",
                    axum::routing::get(move |headers: axum::http::HeaderMap| {
                        let token = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .and_then(|bearer| minted.lock().expect("tokens").get(bearer).cloned());
                        async move {
                            match token {
                                Some(token) => (
                                    axum::http::StatusCode::OK,
                                    json!({ "value": token }).to_string(),
                                ),
                                None => (axum::http::StatusCode::FORBIDDEN, "{}".to_owned()),
                            }
                        }
                    }),
                )
                .route(
                    "/api/health",
                    axum::routing::get(move || {
                        let status = status.load(Ordering::Relaxed);
                        async move {
                            axum::http::StatusCode::from_u16(status)
                                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                        }
                    }),
                )
                .route(
                    "/webhook",
                    axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
                        let signature = headers
                            .get("x-gantry-signature-256")
                            .or_else(|| headers.get("webhook-signature"))
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        heard.lock().expect("webhooks").push((signature, body));
                        async { axum::http::StatusCode::NO_CONTENT }
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            (
                format!("http://{addr}/_apis/token?api-version=2.0"),
                format!("http://{addr}/api/health"),
                format!("http://{addr}/webhook"),
            )
        });
        github.set_permission(repository, ACTOR, "write", "write");
        github.add_team_member("immoflowme", "tech-leads", ACTOR, "active");
        Some(Self {
            binary,
            registry,
            sigstore,
            github,
            runtime,
            oidc_url,
            health,
            health_url,
            webhooks,
            webhook_url,
            artifacts: Arc::new(Mutex::new(HashMap::new())),
            vulnerable: Arc::new(AtomicBool::new(false)),
            tokens,
        })
    }

    pub(crate) fn host(&self) -> String {
        self.registry.host()
    }

    /// A checked-out repository: the example's policy at `.github/gantry.yml` (with the mock
    /// Sigstore's trusted root), its gate scripts, and the mock Sigstore's signing config and
    /// trusted root.
    fn workspace(&self, policy: &Path, dir: &Path) {
        self.workspace_as(policy, dir, ".github/gantry.yml", |text| text);
    }

    /// [`Self::workspace`] with the policy at `dest`, changed by `edit` first.
    fn workspace_as(&self, policy: &Path, dir: &Path, dest: &str, edit: impl Fn(String) -> String) {
        let text = edit(std::fs::read_to_string(policy).expect("the example's policy"));
        let root = dir.join("trusted_root.json");
        let mut local = String::new();
        for line in text.lines() {
            local.push_str(line);
            local.push('\n');
            if line.trim_start().starts_with("identity-regexp:") {
                let indent = &line[..line.len() - line.trim_start().len()];
                local.push_str(indent);
                local.push_str("trusted-root: ");
                local.push_str(&root.display().to_string());
                local.push('\n');
            }
        }
        let dest = dir.join(dest);
        std::fs::create_dir_all(dest.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&dest, local).expect("policy");
        std::fs::copy(&self.sigstore.trusted_root, &root).expect("root");
        std::fs::copy(
            &self.sigstore.signing_config,
            dir.join("signing_config.json"),
        )
        .expect("signing config");
        std::fs::write(
            dir.join(".trivyignore"),
            "# findings set aside, with reasons\n",
        )
        .expect(".trivyignore");
        std::fs::create_dir_all(dir.join("scripts")).expect("mkdir");
        for gate in ["migrate", "smoke-test"] {
            let path = dir.join("scripts").join(gate);
            std::fs::write(
                &path,
                format!("#!/bin/sh\nenv > \"$(dirname \"$0\")/../.gate-{gate}.env\"\n"),
            )
            .expect("gate");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }

    /// A runner for `repository`, checked out at `dir`, with the steps this machine cannot run
    /// played.
    pub(crate) fn runner(&self, repository: &str, workflow: &str, dir: &Path) -> Runner {
        let mut runner = Runner::new(
            &self.binary,
            dir,
            json!({
                "repository": repository,
                "repository_owner": repository.split('/').next(),
                "sha": COMMIT,
                "ref": "refs/heads/main",
                "actor": ACTOR,
                "triggering_actor": ACTOR,
                "server_url": "https://github.com",
                "api_url": self.github.url(),
                "token": TOKEN,
                "workflow_ref": format!("{repository}/.github/workflows/{workflow}@refs/heads/main"),
                "event_name": "workflow_dispatch",
                "run_id": "4242",
                "run_attempt": "1",
            }),
        );
        runner.env = vec![("GITHUB_API_URL".to_owned(), self.github.url())];
        runner.oidc_env = vec![
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL".to_owned(),
                self.oidc_url.clone(),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(),
                "runner-request-token".to_owned(),
            ),
        ];
        for action in ["actions/checkout", "docker/setup-buildx-action"] {
            runner.play(action, |_| Ok(BTreeMap::new()));
        }
        runner.play("docker/login-action", |step| {
            if step.with.get("password").is_none_or(String::is_empty) {
                return Err("a login without a password".to_owned());
            }
            Ok(BTreeMap::new())
        });
        let host = self.host();
        runner.play("docker/build-push-action", move |step| build(&host, step));
        let vulnerable = self.vulnerable.clone();
        runner.play("scan", move |step| {
            scan(step, vulnerable.load(Ordering::Relaxed))
        });
        let binary = self.binary.clone();
        runner.play("gantry", move |step| {
            let path = step.temp.join("gantry");
            std::fs::copy(&binary, &path).map_err(|e| e.to_string())?;
            Ok([("path".to_owned(), path.display().to_string())].into())
        });
        let artifacts = self.artifacts.clone();
        runner.play("actions/upload-artifact", move |step| {
            let file = &step.with["path"];
            if let Ok(bytes) = std::fs::read(step.workspace.join(file)) {
                artifacts
                    .lock()
                    .expect("artifacts")
                    .insert(step.with["name"].clone(), (file.clone(), bytes));
            }
            Ok(BTreeMap::new())
        });
        let artifacts = self.artifacts.clone();
        runner.play("actions/download-artifact", move |step| {
            let stored = artifacts.lock().expect("artifacts");
            let (file, bytes) = stored
                .get(&step.with["name"])
                .ok_or_else(|| format!("no artifact {}", step.with["name"]))?;
            std::fs::write(step.workspace.join(file), bytes).map_err(|e| e.to_string())?;
            Ok(BTreeMap::new())
        });
        runner
    }

    /// Makes `runner`'s jobs get an identity token for `identity` with GitHub's `claims` (the
    /// mock Fulcio reads them, unsigned, as the real one reads GitHub's signed ones).
    fn sign_as(&self, runner: &mut Runner, identity: &str, claims: &Value) {
        use base64::Engine as _;
        let encode = |value: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let mut payload = json!({
            "iss": "https://token.actions.githubusercontent.com",
            "sub": identity,
            "aud": "sigstore",
            "iat": now,
            "exp": now + 600,
            "job_workflow_ref": identity.trim_start_matches("https://github.com/"),
        });
        for (key, value) in claims.as_object().into_iter().flatten() {
            payload[key] = value.clone();
        }
        let token = format!(
            "{}.{}.",
            encode(&json!({"alg": "none", "typ": "JWT"})),
            encode(&payload)
        );
        let mut tokens = self.tokens.lock().expect("tokens");
        let request = format!("runner-{}", tokens.len());
        tokens.insert(request.clone(), token);
        for (name, value) in &mut runner.oidc_env {
            if name == "ACTIONS_ID_TOKEN_REQUEST_TOKEN" {
                value.clone_from(&request);
            }
        }
    }

    /// What only this machine needs in place of the callers' `with:`: the image in gantry's
    /// registry (plain HTTP), the mock Sigstore.
    fn local(&self, image: &str, inputs: &[&str]) -> Map<String, Value> {
        let mut with = map(&[("image", image)]);
        for input in inputs {
            let value = match *input {
                "insecure_registry" => self.host(),
                "signing_config" => "signing_config.json".to_owned(),
                "trusted_root" => "trusted_root.json".to_owned(),
                other => panic!("no local value for {other}"),
            };
            with.insert((*input).to_owned(), Value::String(value));
        }
        with
    }

    pub(crate) fn resolve(&self, reference: &str) -> Option<Digest> {
        let client = Client::plain_http(&self.host()).expect("client");
        let reference: Reference = reference.parse().expect("reference");
        self.runtime
            .block_on(client.head_manifest(&reference))
            .expect("registry")
            .map(|d| d.digest)
    }
}

const COMMIT: &str = "9c1f1d2e3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9";

/// docker/build-push-action, played: the context's `app` file in a scratch image, pushed to every
/// tag; its outputs as the action sets them.
fn build(host: &str, step: &crate::runner::StepCall) -> Result<BTreeMap<String, String>, String> {
    if step.with.get("push").map(String::as_str) != Some("true") {
        return Err("build-push-action must push".to_owned());
    }
    let context = step.workspace.join(&step.with["context"]);
    let app = std::fs::read(context.join("app")).map_err(|e| format!("the build context: {e}"))?;
    let image = ScratchImage::build(
        &[ImageFile {
            path: "/app".into(),
            mode: 0o755,
            bytes: Bytes::from(app),
        }],
        &ImageConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    let client = Client::plain_http(host).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let tags: Vec<&str> = step.with["tags"]
        .lines()
        .filter(|t| !t.is_empty())
        .collect();
    if tags.is_empty() {
        return Err("no tags".to_owned());
    }
    for tag in tags {
        let reference: Reference = tag.parse().map_err(|e| format!("{tag}: {e}"))?;
        runtime
            .block_on(image.push(&client, &reference))
            .map_err(|e| e.to_string())?;
    }
    let digest = image.digest().to_string();
    Ok([
        ("digest".to_owned(), digest.clone()),
        ("imageid".to_owned(), digest),
    ]
    .into())
}

/// The Trivy step, played: a report (Trivy's JSON) naming the scanned digest, with one CRITICAL
/// finding when `vulnerable`.
fn scan(
    step: &crate::runner::StepCall,
    vulnerable: bool,
) -> Result<BTreeMap<String, String>, String> {
    let reference = &step.env["IMAGE_REF"];
    let findings = if vulnerable {
        json!([{"VulnerabilityID": "CVE-2024-3094", "PkgName": "xz-utils", "InstalledVersion": "5.6.0", "FixedVersion": "5.6.1", "Status": "fixed", "Severity": "CRITICAL"}])
    } else {
        json!([])
    };
    let report = json!({
        "SchemaVersion": 2,
        "CreatedAt": jiff::Timestamp::now().to_string(),
        "ArtifactName": reference,
        "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [reference]},
        "Results": [{"Target": reference, "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": findings}],
    });
    std::fs::write(step.workspace.join("gantry-trivy.json"), report.to_string())
        .map_err(|e| e.to_string())?;
    Ok([("report".to_owned(), "gantry-trivy.json".to_owned())].into())
}

/// The tools a flow ran, in order, and with what outcome.
fn gantry_steps(runner: &Runner) -> Vec<(String, String)> {
    runner
        .steps()
        .into_iter()
        .filter_map(|s| s.gantry.map(|(tool, _)| (tool, s.outcome)))
        .collect()
}

pub(crate) fn failure_log(runner: &Runner) -> String {
    runner
        .steps()
        .iter()
        .filter(|s| s.outcome == "failure")
        .map(|s| format!("--- {}\n{}", s.path, s.log))
        .collect::<Vec<_>>()
        .join("\n")
}

fn env_file(dir: &Path, gate: &str) -> String {
    std::fs::read_to_string(dir.join(format!(".gate-{gate}.env"))).unwrap_or_default()
}

/// Seed 002 through its three example workflows and gantry's reusable ones: three builds; the
/// first reaches canary as the rollback target, the second passes its canary and reaches
/// production, the third fails its canary and is rolled back on its own; a build with a critical
/// finding never reaches dev; the gates see only what they may.
#[test]
#[expect(clippy::too_many_lines, reason = "one flow, told in order")]
fn seed_002_builds_once_and_promotes_the_same_digest_through_the_reusable_workflows() {
    let repository = "immoflowme/portal";
    let Some(stage) = Stage::start(repository, BUILD_SIGN) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = examples().join("002-immoflowme/.github");
    stage.workspace(&seed.join("gantry.yml"), dir.path());
    let image = format!("{}/{repository}", stage.host());
    let mut runner = stage.runner(repository, "build-and-sign.yml", dir.path());
    runner.secrets = map(&[
        (
            "GATE_ENV",
            "DATABASE_URL=postgres://portal:s3cret@db.example/portal\nUNRELATED=nope",
        ),
        ("ROLLBACK_WEBHOOK", &stage.webhook_url),
        ("ROLLBACK_WEBHOOK_SECRET", "webhook-hmac-key"),
    ]);
    let workflow = |name: &str| seed.join("workflows").join(name);
    let none = Map::new();

    let build = |text: &str| -> (crate::runner::Outcome, String) {
        std::fs::write(dir.path().join("app"), text).expect("app");
        let outcome = runner
            .caller_job(
                &workflow("build-and-sign.yml"),
                "build",
                &none,
                &none,
                &stage.local(
                    &image,
                    &["insecure_registry", "signing_config", "trusted_root"],
                ),
            )
            .expect("build-and-sign.yml runs")
            .expect("the job runs");
        let digest = outcome.outputs["digest"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (outcome, digest)
    };
    let promote = |digest: &str, from: &str, to: &str| {
        runner
            .caller_job(
                &workflow("promote.yml"),
                "promote",
                &map(&[
                    ("image_digest", digest),
                    ("source_env", from),
                    ("target_env", to),
                ]),
                &none,
                &stage.local(&image, &["insecure_registry"]),
            )
            .expect("promote.yml runs")
            .expect("the job runs")
    };
    let canary = |digest: &str| {
        let mut local = stage.local(&image, &["insecure_registry", "signing_config"]);
        local.extend(map(&[
            ("health_url", &stage.health_url),
            ("interval", "200ms"),
            ("probe_timeout", "150ms"),
            ("duration", "2s"),
        ]));
        runner
            .caller_job(
                &workflow("canary-deploy.yml"),
                "canary",
                &map(&[("image_digest", digest)]),
                &none,
                &local,
            )
            .expect("canary-deploy.yml runs")
            .expect("the job runs")
    };
    let at = |env: &str| {
        stage
            .resolve(&format!("{image}:{env}"))
            .map(|d| d.to_string())
    };

    // Build 0: built once, signed, SBOM'd, scanned, verified, then build -> dev.
    let (first, d0) = build("v0");
    assert_eq!(first.result, "success", "{}", failure_log(&runner));
    assert!(d0.starts_with("sha256:"), "{:?}", first.outputs);
    assert_eq!(first.outputs["image"], format!("{image}@{d0}"));
    assert!(
        first.outputs["sbom_digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{:?}",
        first.outputs
    );
    assert_eq!(
        first.jobs["integration"]["result"], "skipped",
        "no integration repository named"
    );
    assert_eq!(
        gantry_steps(&runner),
        [
            ("sign-image", "success"),
            ("sbom-attach", "success"),
            ("verify-image", "success"),
            ("promote-digest", "success"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(
        (at("build"), at("dev")),
        (Some(d0.clone()), Some(d0.clone()))
    );
    // The verify step gated on the scan's report and the SBOM, for gantry's workflow identity in
    // this repository at this commit.
    let verify = runner
        .gantry_step("verify-image")
        .and_then(|s| s.gantry)
        .expect("verify-image ran")
        .1;
    assert_eq!(verify["INPUT_VULN-REPORT"], "gantry-trivy.json");
    assert_eq!(verify["INPUT_GITHUB-REPOSITORY"], repository);
    assert_eq!(verify["INPUT_GITHUB-SHA"], COMMIT);
    assert_eq!(verify["INPUT_REQUIRE-ATTESTATION"], "cyclonedx");

    // dev -> staging -> canary: the gates run on the runner; each sees only what it may.
    let to_staging = promote(&d0, "dev", "staging");
    assert_eq!(to_staging.result, "success", "{}", failure_log(&runner));
    assert_eq!(to_staging.jobs["promote"]["environment"], "staging");
    assert_eq!(to_staging.outputs["digest"], d0.as_str());
    let migrate = env_file(dir.path(), "migrate");
    let smoke = env_file(dir.path(), "smoke-test");
    assert!(
        migrate.contains("DATABASE_URL=postgres://portal:s3cret@db.example/portal"),
        "the migration gate lists DATABASE_URL:\n{migrate}"
    );
    assert!(
        migrate.contains(&format!("GANTRY_DIGEST={d0}")),
        "{migrate}"
    );
    for (gate, seen) in [("migrate", &migrate), ("smoke-test", &smoke)] {
        assert!(
            seen.contains("GANTRY_TARGET_ENV=staging"),
            "{gate} ran:\n{seen}"
        );
        for hidden in ["UNRELATED", "GATE_ENV", "INPUT_", TOKEN] {
            assert!(!seen.contains(hidden), "{gate} saw {hidden}:\n{seen}");
        }
    }
    assert!(!smoke.contains("DATABASE_URL"), "{smoke}");
    assert_eq!(at("staging"), Some(d0.clone()));
    let to_canary = promote(&d0, "staging", "canary");
    assert_eq!(to_canary.result, "success", "{}", failure_log(&runner));
    assert_eq!(at("canary"), Some(d0.clone()));

    // A build with a critical finding: signed, but the gate stops it before dev.
    stage.vulnerable.store(true, Ordering::Relaxed);
    let (blocked, bad) = build("v0-vulnerable");
    stage.vulnerable.store(false, Ordering::Relaxed);
    assert_eq!(blocked.result, "failure");
    assert_eq!(blocked.jobs["sign"]["result"], "failure");
    assert_ne!(bad, d0);
    assert_eq!(at("dev"), Some(d0.clone()), "dev did not move");
    let log = failure_log(&runner);
    assert!(log.contains("CVE-2024-3094"), "{log}");

    // A build that passes its gates, taken on to staging.
    let to_staging = |app: &str| {
        let (outcome, digest) = build(app);
        assert_eq!(outcome.result, "success", "{}", failure_log(&runner));
        let promoted = promote(&digest, "dev", "staging");
        assert_eq!(promoted.result, "success", "{}", failure_log(&runner));
        digest
    };

    // Build 1: dev -> staging -> a watched canary that stays healthy -> production.
    let d1 = to_staging("v1");
    stage.health.store(200, Ordering::Relaxed);
    let healthy = canary(&d1);
    assert_eq!(healthy.result, "success", "{}", failure_log(&runner));
    assert_eq!(healthy.jobs["canary"]["environment"], "canary");
    assert_eq!(
        healthy.outputs["outcome"], "healthy",
        "{:?}",
        healthy.outputs
    );
    assert_eq!(healthy.outputs["previous_digest"], d0.as_str());
    assert_eq!(at("canary"), Some(d1.clone()));
    let release = promote(&d1, "canary", "production");
    assert_eq!(release.result, "success", "{}", failure_log(&runner));
    assert_eq!(release.jobs["promote"]["environment"], "production");
    assert_eq!(at("production"), Some(d1.clone()));

    // Build 2 fails its canary: rolled back to build 1 on its own, the webhook told, signed.
    let d2 = to_staging("v2");
    stage.health.store(503, Ordering::Relaxed);
    let failing = canary(&d2);
    assert_eq!(failing.result, "failure", "a rollback fails the job");
    assert_eq!(
        failing.outputs["outcome"], "rolled-back",
        "{:?}",
        failing.outputs
    );
    assert_eq!(failing.outputs["rolled_back"], "true");
    assert!(
        failing.outputs["reason"]
            .as_str()
            .is_some_and(|r| r.contains("503")),
        "{:?}",
        failing.outputs
    );
    assert_eq!(at("canary"), Some(d1.clone()), "canary is build 1 again");
    let heard = stage.webhooks.lock().expect("webhooks").clone();
    let types: Vec<String> = heard
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body).expect("a CloudEvent")["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        ["dev.gantry.canary.healthy", "dev.gantry.canary.rolled_back"],
        "the webhook heard each canary's outcome once"
    );
    let (signature, body) = &heard[1];
    assert!(
        signature.starts_with("sha256="),
        "signed with the webhook secret: {signature:?}"
    );
    let body = String::from_utf8_lossy(body);
    assert!(body.contains(&d2) && body.contains(&d1), "{body}");

    // The rolled-back digest is not on canary: production refuses it and keeps build 1.
    let refused = promote(&d2, "canary", "production");
    assert_eq!(refused.result, "failure");
    assert_eq!(at("production"), Some(d1));
}

/// The Aspire repository's side of seed 000, played whenever the service's dispatch starts a run:
/// its caller's `with:` (tests replaced by `test_command`) through gantry's integration workflow,
/// each job's end shown to GitHub as it happens, the verdict artifact uploaded, the run ended.
fn play_aspire(stage: &Stage, dir: &Path, seen: usize, tests_pass: bool) -> crate::runner::Outcome {
    let caller = examples().join("000-aspire/aspire-repo/.github/workflows/integration.yml");
    assert!(
        stage.github.wait_for_runs(seen + 1, Duration::from_mins(1)),
        "the service dispatched the integration run"
    );
    let run = stage.github.runs()[seen].clone();
    let mut runner = stage.runner("acme/aspire", "integration.yml", dir);
    // The Aspire repository's jobs sign as gantry's integration workflow run there.
    stage.sign_as(
        &mut runner,
        "https://github.com/gantry-dev/gantry/.github/workflows/integration.yml@refs/heads/main",
        &json!({"repository": "acme/aspire", "ref": "refs/heads/main", "sha": COMMIT, "event_name": "workflow_dispatch"}),
    );
    runner.github["run_id"] = json!(run.id.to_string());
    runner.secrets = map(&[("SOURCE_STATUS_TOKEN", TOKEN)]);
    let ended = Arc::new(Mutex::new(Vec::new()));
    let (github, log) = (stage.github.url(), ended.clone());
    let standin = gantry_testkit::github::StandIn::clone(&stage.github);
    runner.on_job = Some(Box::new(move |_, name, result| {
        let mut jobs = log.lock().expect("jobs");
        jobs.push((
            name.to_owned(),
            result.to_owned(),
            format!("{name}\n{github}\n"),
        ));
        standin.end_jobs(run.id, jobs.clone());
    }));
    let results = if tests_pass {
        r#"<testsuite name="e2e" tests="2" failures="0"><testcase classname="Orders" name="creates"/><testcase classname="Orders" name="cancels"/></testsuite>"#
    } else {
        r#"<testsuite name="e2e" tests="2" failures="1"><testcase classname="Orders" name="creates"/><testcase classname="Orders" name="cancels"><failure message="boom"/></testcase></testsuite>"#
    };
    let mut local = stage.local(
        run.inputs["image"].as_str().expect("image"),
        &["insecure_registry", "signing_config", "trusted_root"],
    );
    local.remove("image");
    local.insert(
        "test_command".to_owned(),
        json!(format!(
            "printf '%s' '{results}' > test-results.xml; test \"$IMAGE_REF\" = \"$IMAGE@$DIGEST\"; {}",
            if tests_pass { "true" } else { "exit 1" }
        )),
    );
    let outcome = runner
        .caller_job(&caller, "integration", &run.inputs, &Map::new(), &local)
        .expect("integration.yml runs")
        .expect("the job runs");
    let verdict = stage
        .artifacts
        .lock()
        .expect("artifacts")
        .remove("gantry-verdict")
        .map(|(_, bytes)| bytes);
    let jobs = ended.lock().expect("jobs").clone();
    stage
        .github
        .finish_run(run.id, &outcome.result, jobs, verdict);
    outcome
}

/// The Aspire repository's receiving workflow in the GitHub stand-in, as its caller declares it:
/// its inputs, its `run-name` (the correlation id) and its concurrency group; a run goes on until
/// [`play_aspire`] ends it.
fn register_aspire(stage: &Stage) {
    let caller = examples().join("000-aspire/aspire-repo/.github/workflows/integration.yml");
    let receiving = crate::runner::load(&caller).expect("the Aspire caller");
    let inputs: Vec<&str> = receiving["on"]["workflow_dispatch"]["inputs"]
        .as_hash()
        .expect("inputs")
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    let mut workflow = FakeWorkflow::new(
        "acme/aspire",
        "integration.yml",
        &inputs,
        receiving["run-name"].as_str().expect("run-name"),
        RunPlan::new(Duration::ZERO, Duration::from_hours(1), "success"),
    );
    workflow.concurrency = receiving["concurrency"]["group"]
        .as_str()
        .map(str::to_owned);
    stage.github.add_workflow(workflow);
}

/// Seed 000: the service's CI builds, signs and SBOMs once, dispatches the Aspire repository's
/// integration run and waits for its verdict; the Aspire run (gantry's integration workflow)
/// verifies the image, tests it and reports back; a passing verdict takes the same digest to prod,
/// a failing one stops it.
#[test]
#[expect(clippy::too_many_lines, reason = "one flow, told in order")]
fn seed_000_waits_for_the_aspire_verdict_and_promotes_only_on_a_pass() {
    let service = "acme/orders";
    let Some(stage) = Stage::start(service, BUILD_SIGN) else {
        return;
    };
    register_aspire(&stage);

    let (service_dir, aspire_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let seed = examples().join("000-aspire");
    stage.workspace(
        &seed.join("service-repo/.github/gantry.yml"),
        service_dir.path(),
    );
    stage.workspace(
        &seed.join("service-repo/.github/gantry.yml"),
        aspire_dir.path(),
    );
    let ci = seed.join("service-repo/.github/workflows/service-ci.yml");
    let image = format!("{}/{service}", stage.host());
    let mut runner = stage.runner(service, "service-ci.yml", service_dir.path());
    runner.secrets = map(&[("INTEGRATION_DISPATCH_TOKEN", TOKEN)]);
    let none = Map::new();
    let at = |env: &str| {
        stage
            .resolve(&format!("{image}:{env}"))
            .map(|d| d.to_string())
    };

    let pipeline = |app: &str, seen: usize, tests_pass: bool| {
        std::fs::write(service_dir.path().join("app"), app).expect("app");
        std::thread::scope(|scope| {
            let aspire = scope.spawn(|| play_aspire(&stage, aspire_dir.path(), seen, tests_pass));
            let build = runner
                .caller_job(
                    &ci,
                    "build",
                    &none,
                    &none,
                    &stage.local(
                        &image,
                        &["insecure_registry", "signing_config", "trusted_root"],
                    ),
                )
                .expect("service-ci.yml runs")
                .expect("the job runs");
            let aspire = aspire.join().expect("the Aspire run");
            let needs: Map<String, Value> = [(
                "build".to_owned(),
                json!({"result": build.result, "outputs": build.outputs}),
            )]
            .into_iter()
            .collect();
            let prod = runner
                .caller_job(
                    &ci,
                    "prod",
                    &none,
                    &needs,
                    &stage.local(&image, &["insecure_registry"]),
                )
                .expect("service-ci.yml runs");
            (build, aspire, prod)
        })
    };

    let (build, aspire, prod) = pipeline("orders v1", 0, true);
    assert_eq!(build.result, "success", "{}", failure_log(&runner));
    assert_eq!(aspire.result, "success");
    assert_eq!(
        build.outputs["integration_conclusion"], "success",
        "{:?}",
        build.outputs
    );
    let verdict: Value = serde_json::from_str(
        build.outputs["integration_verdict"]
            .as_str()
            .unwrap_or_default(),
    )
    .expect("the verdict document");
    assert_eq!(verdict["verdict"], "passed");
    assert_eq!(verdict["tests"]["passed"], 2);
    let digest = build.outputs["digest"].as_str().expect("digest").to_owned();
    assert_eq!(at("staging"), Some(digest.clone()));
    let prod = prod.expect("a passing verdict runs prod");
    assert_eq!(prod.result, "success", "{}", failure_log(&runner));
    assert_eq!(prod.jobs["promote"]["environment"], "prod");
    assert_eq!(
        at("prod"),
        Some(digest.clone()),
        "the same digest, no rebuild"
    );
    let statuses = stage.github.commit_statuses(service, COMMIT);
    assert!(
        statuses.iter().any(|s| s["state"] == "success"),
        "the verdict is a status on the service's commit: {statuses:?}"
    );

    // Failing tests: the verdict fails the service's job, and prod keeps what it had.
    let (build, aspire, prod) = pipeline("orders v2", 1, false);
    assert_eq!(aspire.result, "failure");
    assert_eq!(build.result, "failure");
    assert_eq!(build.jobs["integration"]["result"], "failure");
    assert!(prod.is_none(), "no prod without a passing verdict");
    assert_eq!(at("prod"), Some(digest.clone()));
    let statuses = stage.github.commit_statuses(service, COMMIT);
    assert!(
        statuses.iter().any(|s| s["state"] == "failure"),
        "{statuses:?}"
    );
    let failed = build.outputs["digest"].as_str().expect("digest").to_owned();
    assert_eq!(at("staging"), Some(failed.clone()));

    // The sprint release (schedule): prod takes what staging holds only when the Aspire run's
    // signed test-result attestation on it says PASSED.
    let release = seed.join("service-repo/.github/workflows/sprint-release.yml");
    runner.env_overrides = map(&[("IMAGE", &image)]);
    runner.with_overrides = map(&[
        ("insecure-registry", &stage.host()),
        ("trusted-root", "trusted_root.json"),
    ]);
    let sprint = |digest: &str| {
        runner
            .steps_job(
                &release,
                "release",
                &map(&[("image_digest", digest)]),
                &none,
            )
            .expect("sprint-release.yml runs")
            .expect("the job runs")
    };
    let refused = sprint(&failed);
    assert_eq!(refused["result"], "failure");
    let stopped = runner.last_failure().expect("a failed step");
    assert_eq!(
        stopped.gantry.as_ref().map(|(tool, _)| tool.as_str()),
        Some("verify-image"),
        "{}",
        stopped.log
    );
    assert!(
        stopped
            .log
            .contains("the test-result attestation says FAILED, expected PASSED"),
        "{}",
        stopped.log
    );
    assert_eq!(
        at("prod"),
        Some(digest.clone()),
        "prod kept the passing digest"
    );
    // An older passing digest is not what staging holds: the release takes nothing else.
    let older = sprint(&digest);
    assert_eq!(older["result"], "failure");
    let stopped = runner.last_failure().expect("a failed step");
    assert!(
        stopped
            .log
            .contains(&format!("points at {failed}, not {digest}")),
        "{}",
        stopped.log
    );
}

/// Seed 004: the release caller's matrix `with:` through build-sign into the GitOps repository:
/// the service's `image:` fields get the digest by one commit, every other byte kept.
#[test]
fn seed_004_writes_the_signed_digest_into_the_gitops_repository() {
    let repository = "dws-org/dws";
    let Some(stage) = Stage::start(repository, BUILD_SIGN) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = examples().join("004-dws");
    let host = stage.host();
    // The service's policy, its image in gantry's registry instead of GHCR.
    stage.workspace_as(
        &seed.join(".github/gantry/dws-event-service.yml"),
        dir.path(),
        ".github/gantry/dws-event-service.yml",
        |text| text.replace("ghcr.io/", &format!("{host}/")),
    );
    std::fs::write(dir.path().join("app"), "dws-event-service v7").expect("app");
    let manifest = format!(
        "# DWS deployments\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dws-event-service\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {host}/dws-org/dws-event-service:old   # bumped by gantry\n        - name: sidecar\n          image: {host}/dws-org/envoy:1.30\n"
    );
    stage.github.commit_files(
        "dws-org/gitops",
        "main",
        &[("apps/dws/deployments.yaml", manifest.as_bytes())],
        "seed",
    );

    let mut runner = stage.runner(repository, "release.yml", dir.path());
    runner.secrets = map(&[("GITOPS_TOKEN", TOKEN)]);
    runner.matrix = json!({"service": "dws-event-service"});
    let image = format!("{host}/dws-org/dws-event-service");
    let local = stage.local(
        &image,
        &["insecure_registry", "signing_config", "trusted_root"],
    );
    let outcome = runner
        .caller_job(
            &seed.join(".github/workflows/release.yml"),
            "release",
            &Map::new(),
            &Map::new(),
            &local,
        )
        .expect("release.yml runs")
        .expect("the job runs");
    assert_eq!(outcome.result, "success", "{}", failure_log(&runner));
    let digest = outcome.outputs["digest"].as_str().expect("digest");
    let promote = runner
        .gantry_step("promote-digest")
        .and_then(|s| s.gantry)
        .expect("promote-digest ran")
        .1;
    assert_eq!(
        promote["INPUT_POLICY"],
        ".github/gantry/dws-event-service.yml"
    );
    let written = String::from_utf8(
        stage
            .github
            .file("dws-org/gitops", "main", "apps/dws/deployments.yaml")
            .expect("the manifest"),
    )
    .expect("utf-8");
    assert_eq!(
        written,
        manifest.replace(&format!("{image}:old"), &format!("{image}@{digest}")),
        "only the service's image field changed"
    );
    assert_eq!(
        stage.github.log("dws-org/gitops", "main").len(),
        2,
        "one commit"
    );
}

/// Seed 001: services discovered, each built, signed, SBOM'd, verified and committed to staging's
/// GitOps files in one step (gantry's root action, `build-sign-promote`); production by a pull
/// request that asks the platform leads, opened by the production job's own `with:`.
#[test]
#[expect(clippy::too_many_lines, reason = "one flow, told in order")]
fn seed_001_ships_a_service_with_the_root_action_and_asks_for_production_by_pull_request() {
    let (repository, service) = ("ai-aas/platform", "api-router-service");
    let identity =
        "https://github.com/ai-aas/platform/.github/workflows/service-cd.yml@refs/heads/main";
    let Some(stage) = Stage::start(repository, identity) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = examples().join("001-aiaas");
    // Argo CD cannot run here: the environments' argocd lines are left out.
    stage.workspace_as(
        &seed.join(".github/gantry/api-router-service.yml"),
        dir.path(),
        ".github/gantry/api-router-service.yml",
        |text| {
            let mut kept = String::new();
            for line in text
                .lines()
                .filter(|l| !l.trim_start().starts_with("argocd:"))
            {
                kept.push_str(line);
                kept.push('\n');
            }
            kept
        },
    );
    std::fs::create_dir_all(dir.path().join("services").join(service)).expect("mkdir");
    std::fs::write(
        dir.path().join("services").join(service).join("app"),
        "router v3",
    )
    .expect("app");
    let values = |env: &str| format!("infra/helm/charts/{service}/values-{env}.yaml");
    let old = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let file = format!(
        "image:\n  repository: ghcr.io/ai-aas/{service}\n  digest: {old}  # gantry\nreplicas: 2\n"
    );
    stage.github.commit_files(
        "ai-aas/platform-gitops",
        "main",
        &[
            (&values("staging"), file.as_bytes()),
            (&values("production"), file.as_bytes()),
        ],
        "seed",
    );
    stage
        .github
        .set_permission("ai-aas/platform-gitops", ACTOR, "write", "write");

    let workflow = seed.join(".github/workflows/service-cd.yml");
    let image = format!("{}/ai-aas/{service}", stage.host());
    let mut runner = stage.runner(repository, "service-cd.yml", dir.path());
    runner.github["event_name"] = json!("push");
    runner.secrets = map(&[("GITOPS_TOKEN", TOKEN), ("ARGOCD_TOKEN", "unused-here")]);
    runner.with_overrides = map(&[
        ("image", &image),
        ("insecure-registry", &stage.host()),
        ("signing-config", "signing_config.json"),
        ("trusted-root", "trusted_root.json"),
    ]);
    let none = Map::new();
    let discover = runner
        .steps_job(&workflow, "discover", &none, &none)
        .expect("discover runs")
        .expect("on push");
    assert_eq!(
        discover["outputs"]["services"],
        json!(format!("[\"{service}\"]"))
    );
    let services: Vec<String> =
        serde_json::from_str(discover["outputs"]["services"].as_str().expect("JSON"))
            .expect("a list");
    let needs: Map<String, Value> = [("discover".to_owned(), discover)].into_iter().collect();
    for name in &services {
        runner.matrix = json!({ "service": name });
        let build = runner
            .steps_job(&workflow, "build", &none, &needs)
            .expect("build runs")
            .expect("on push");
        assert_eq!(build["result"], "success", "{}", failure_log(&runner));
    }
    let ran: Vec<String> = gantry_steps(&runner)
        .into_iter()
        .map(|(tool, _)| tool)
        .collect();
    assert_eq!(
        ran,
        [
            "sign-image",
            "sbom-attach",
            "verify-image",
            "promote-digest"
        ],
        "one step, four tools"
    );
    let digest = stage
        .resolve(&format!("{image}:dev"))
        .expect("the build is dev")
        .to_string();
    let staging = String::from_utf8(
        stage
            .github
            .file("ai-aas/platform-gitops", "main", &values("staging"))
            .expect("staging's values"),
    )
    .expect("utf-8");
    assert_eq!(staging, file.replace(old, &digest), "one field changed");
    assert!(
        runner
            .steps()
            .iter()
            .any(|s| s.path.ends_with("/sequence-build") && s.outcome == "success"),
        "the build ran in the root action"
    );

    // Production: the dispatch's own with:, a pull request asking the platform leads.
    runner.github["event_name"] = json!("workflow_dispatch");
    let production = runner
        .steps_job(
            &workflow,
            "production",
            &map(&[("service", service), ("image_digest", &digest)]),
            &none,
        )
        .expect("production runs")
        .expect("on dispatch");
    assert_eq!(production["result"], "success", "{}", failure_log(&runner));
    let pulls = stage.github.pulls("ai-aas/platform-gitops");
    assert_eq!(pulls.len(), 1, "one pull request");
    let pull = &pulls[0];
    assert_eq!(pull.head, format!("gantry/production/{service}"));
    assert_eq!(pull.teams, ["platform-leads"]);
    assert_eq!(pull.labels, ["promotion", "production"]);
    assert!(pull.body.contains(&digest), "{}", pull.body);
    let unchanged = stage
        .github
        .file("ai-aas/platform-gitops", "main", &values("production"))
        .expect("production's values");
    assert_eq!(unchanged, file.as_bytes(), "production waits for the merge");
}
