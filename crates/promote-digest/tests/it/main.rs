//! promote-digest, the real binary, against the real registry.

use std::process::{Command, Output};

use bytes::Bytes;
use gantry_oci::manifest::OCI_LAYER_TAR;
use gantry_oci::{
    Artifact, ArtifactLayer, Client, ClientOptions, Credential, Credentials, Digest, Reference,
};
use gantry_testkit::github::{GitHubFake, TOKEN};
use gantry_testkit::peers::{self, MockSigstore, Peers, SIGNER_IDENTITY};
use gantry_testkit::{Auth, Registry, stdout_json};

mod gates;
mod gitops;

struct Env {
    registry: Registry,
    client: Client,
    dir: tempfile::TempDir,
}

impl Env {
    fn reference(&self, path: &str) -> Reference {
        format!("{}/{path}", self.registry.host())
            .parse()
            .expect("reference")
    }

    fn image(&self) -> String {
        format!("{}/team/app", self.registry.host())
    }

    /// `promote-digest` for `image` on `registry` (plain HTTP), run in an empty directory (no
    /// .github/gantry.yml unless a test writes one), printing JSON.
    fn command_for(
        &self,
        image: &str,
        registry: &str,
        digest: &Digest,
        from: &str,
        to: &str,
    ) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_promote-digest"));
        command
            .current_dir(self.dir.path())
            .args([
                "--image",
                image,
                "--digest",
                digest.as_str(),
                "--source-env",
                from,
                "--target-env",
                to,
            ])
            .args(["--insecure-registry", registry, "--json"])
            .env("DOCKER_CONFIG", self.dir.path());
        command
    }

    fn command(&self, digest: &Digest, from: &str, to: &str) -> Command {
        self.command_for(&self.image(), &self.registry.host(), digest, from, to)
    }

    fn promote(
        &self,
        digest: &Digest,
        from: &str,
        to: &str,
        extra: &[&str],
    ) -> (Output, serde_json::Value) {
        let output = self
            .command(digest, from, to)
            .args(extra)
            .output()
            .expect("run promote-digest");
        let json = stdout_json(&output);
        (output, json)
    }

    async fn digest_at(&self, path: &str) -> Option<Digest> {
        self.client
            .head_manifest(&self.reference(path))
            .await
            .expect("head")
            .map(|d| d.digest)
    }

    fn write_policy(&self, text: &str) -> String {
        let path = self.dir.path().join("policy.yml");
        std::fs::write(&path, text).expect("policy");
        path.display().to_string()
    }
}

fn setup() -> Option<Env> {
    setup_with(Auth::Anonymous)
}

/// A registry in `auth` mode; with credentials, a Docker config in the tool's `DOCKER_CONFIG`.
fn setup_with(auth: Auth) -> Option<Env> {
    let registry = Registry::start(auth)?;
    let dir = tempfile::tempdir().expect("tempdir");
    if registry.credentials().is_some() {
        write_docker_config(dir.path(), &[&registry]);
    }
    let credentials = credentials_for(&registry);
    let client = Client::new(
        ClientOptions {
            plain_http: vec![registry.host()],
            ..Default::default()
        },
        credentials,
    )
    .expect("client");
    Some(Env {
        registry,
        client,
        dir,
    })
}

/// The registry's test credentials, if it has any.
fn credentials_for(registry: &Registry) -> Credentials {
    match registry.credentials() {
        Some((user, pass)) => Credentials::anonymous().with(
            &registry.host(),
            Credential::Basic {
                username: user.to_owned(),
                password: gantry_secret::Secret::new(pass),
            },
        ),
        None => Credentials::anonymous(),
    }
}

fn write_docker_config(dir: &std::path::Path, registries: &[&Registry]) {
    use base64::Engine as _;
    let mut auths = serde_json::Map::new();
    for registry in registries {
        if let Some((user, pass)) = registry.credentials() {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            auths.insert(registry.host(), serde_json::json!({ "auth": auth }));
        }
    }
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({ "auths": auths }).to_string(),
    )
    .expect("docker config");
}

async fn push(env: &Env, tag: &str, content: &[u8]) -> Digest {
    let config = Bytes::from_static(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    let layer = Bytes::copy_from_slice(content);
    let target = env.reference(&format!("team/app:{tag}"));
    env.client
        .push_image(&target, &config, &[(OCI_LAYER_TAR, &layer)])
        .await
        .expect("push image")
        .digest
}

/// Asserts that `json[key]` (the tool's `failure` or `error`) contains `expected`.
#[track_caller]
fn says(json: &serde_json::Value, key: &str, expected: &str) {
    let said = json[key].as_str().unwrap_or_default();
    assert!(
        said.contains(expected),
        "expected {key} to contain {expected:?}, found: {json}"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_chain_end_to_end_and_a_rerun_is_a_no_op() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"build once").await;
    for (from, to) in [
        ("dev", "staging"),
        ("staging", "canary"),
        ("canary", "production"),
    ] {
        let (output, json) = env.promote(&digest, from, to, &[]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{from} -> {to}: {}",
            text(&output.stderr)
        );
        assert_eq!(json["outputs"]["promoted"], "true");
        assert_eq!(json["outputs"]["previous-digest"], "");
        assert_eq!(json["outputs"]["digest"], digest.as_str());
        assert_eq!(
            env.digest_at(&format!("team/app:{to}")).await.as_ref(),
            Some(&digest),
            "same digest end to end"
        );
    }
    let (output, json) = env.promote(&digest, "canary", "production", &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json["outputs"]["promoted"], "false", "already there");
    assert_eq!(json["outputs"]["previous-digest"], digest.as_str());

    // The next build replaces production, and previous-digest names the rollback target.
    let next = push(&env, "dev", b"build twice").await;
    for (from, to) in [("dev", "staging"), ("staging", "canary")] {
        assert_eq!(env.promote(&next, from, to, &[]).0.status.code(), Some(0));
    }
    let (_, json) = env.promote(&next, "canary", "production", &[]);
    assert_eq!(json["outputs"]["previous-digest"], digest.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environments_aliases_move_with_it() {
    let Some(env) = setup() else { return };
    let policy = env.write_policy(
        "version: 1\nenvironments:\n  - name: dev\n  - name: production\n    aliases: [latest, stable]\n",
    );
    let first = push(&env, "dev", b"first").await;
    let (output, _) = env.promote(&first, "dev", "production", &["--policy", &policy]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    for tag in ["production", "latest", "stable"] {
        assert_eq!(
            env.digest_at(&format!("team/app:{tag}")).await.as_ref(),
            Some(&first),
            "{tag}"
        );
    }
    let second = push(&env, "dev", b"second").await;
    let (output, json) = env.promote(&second, "dev", "production", &["--policy", &policy]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(json["outputs"]["previous-digest"], first.as_str());
    for tag in ["production", "latest", "stable"] {
        assert_eq!(
            env.digest_at(&format!("team/app:{tag}")).await.as_ref(),
            Some(&second),
            "{tag}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_1_and_touch_nothing() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"candidate").await;
    let (output, json) = env.promote(&digest, "dev", "production", &[]);
    assert_eq!(output.status.code(), Some(1));
    says(
        &json,
        "failure",
        "promotion dev -> production is not allowed",
    );
    assert_eq!(env.digest_at("team/app:production").await, None);

    let other = push(&env, "staging", b"something else").await;
    let (output, json) = env.promote(&digest, "staging", "canary", &[]);
    assert_eq!(output.status.code(), Some(1));
    let expected = format!("points at {other}, not {digest}");
    says(&json, "failure", &expected);
    assert_eq!(env.digest_at("team/app:canary").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_see_the_digest_and_a_failing_gate_stops_the_promotion() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"gated").await;
    let passing = env.write_policy(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: digest check\n        run: test \"$GANTRY_DIGEST\" = \"$EXPECTED\" && test \"$GANTRY_TARGET_ENV\" = staging\n        env: [EXPECTED]\n",
    );
    let output = env
        .command(&digest, "dev", "staging")
        .args(["--policy", &passing])
        .env("EXPECTED", digest.as_str())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        env.digest_at("team/app:staging").await.as_ref(),
        Some(&digest)
    );

    let failing = env.write_policy(
        "version: 1\npromotions:\n  - from: staging\n    to: canary\n    gates:\n      - name: smoke test\n        run: echo 'billing parity broke' >&2; exit 3\n",
    );
    let (output, json) = env.promote(&digest, "staging", "canary", &["--policy", &failing]);
    assert_eq!(output.status.code(), Some(1));
    let failure = json["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("gate \"smoke test\" failed") && failure.contains("billing parity broke"),
        "{failure}"
    );
    assert_eq!(
        env.digest_at("team/app:canary").await,
        None,
        "a failed gate changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_a_missing_registry_exit_2() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"x").await;
    let (output, json) = env.promote(&digest, "dev", "qa", &[]);
    assert_eq!(output.status.code(), Some(2));
    says(&json, "error", "unknown environment \"qa\"");

    let broken = env.write_policy("version: 1\nenvironments:\n  - name: dev\n  - nam: staging\n");
    let (output, json) = env.promote(&digest, "dev", "staging", &["--policy", &broken]);
    assert_eq!(output.status.code(), Some(2));
    says(&json, "error", "policy.yml:4:");

    let missing = Digest::sha256(b"never pushed");
    let (output, json) = env.promote(&missing, "staging", "canary", &[]);
    assert_eq!(output.status.code(), Some(2), "no staging tag at all");
    says(&json, "error", "resolving the source environment staging");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let down = format!("127.0.0.1:{port}/team/app");
    let unreachable = format!("127.0.0.1:{port}");
    let output = env
        .command_for(&down, &unreachable, &digest, "dev", "staging")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let error = stdout_json(&output)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(&format!(
            "resolving the source environment dev ({unreachable}/team/app:dev)"
        )),
        "{error}"
    );
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const RESTRICTED: &str = "version: 1\npromotions:\n  - from: dev\n    to: staging\n  - from: staging\n    to: canary\n    allowed:\n      roles: [maintain]\n      teams: [acme/tech-leads]\n  - from: canary\n    to: production\n";

/// The arguments that point promote-digest at the fake GitHub, as `actor`.
fn github_args(fake: &GitHubFake, actor: &str) -> Vec<String> {
    [
        "--github-token",
        TOKEN,
        "--github-api-url",
        &fake.url(),
        "--repository",
        "acme/billing",
        "--sha",
        SHA,
        "--actor",
        actor,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn with(extra: &[String], more: &[&str]) -> Vec<String> {
    let mut all = extra.to_vec();
    all.extend(more.iter().map(|s| (*s).to_owned()));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_promote_is_checked_through_github_and_each_promotion_recorded() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    fake.set_permission("acme/billing", "dev-dana", "write", "write");
    fake.set_permission("acme/billing", "lead-lars", "write", "write");
    fake.add_team_member("acme", "tech-leads", "lead-lars", "active");
    let policy = env.write_policy(RESTRICTED);
    let digest = push(&env, "dev", b"recorded").await;
    let dana = with(&github_args(&fake, "dev-dana"), &["--policy", &policy]);
    let refs: Vec<&str> = dana.iter().map(String::as_str).collect();
    let (output, json) = env.promote(&digest, "dev", "staging", &refs);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        fake.prism_log()
    );
    let first = json["outputs"]["deployment-id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!first.is_empty(), "{json}");

    let (output, json) = env.promote(&digest, "staging", "canary", &refs);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(
        json["failure"],
        "dev-dana may not promote staging -> canary: it is restricted to role maintain or higher, or members of acme/tech-leads (found: role write in acme/billing; acme/tech-leads: not a member)"
    );
    assert_eq!(
        env.digest_at("team/app:canary").await,
        None,
        "a refused actor moves nothing"
    );
    assert_eq!(fake.deployments().len(), 1, "and records nothing");

    let lars = with(&github_args(&fake, "lead-lars"), &["--policy", &policy]);
    let refs: Vec<&str> = lars.iter().map(String::as_str).collect();
    let (output, json) = env.promote(&digest, "staging", "canary", &refs);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        fake.prism_log()
    );
    assert!(
        json["summary"]
            .as_str()
            .is_some_and(|s| s.contains("lead-lars is a member of acme/tech-leads")),
        "{json}"
    );
    let (output, _) = env.promote(&digest, "canary", "production", &refs);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let deployments = fake.deployments();
    let environments: Vec<_> = deployments
        .iter()
        .map(|d| d["environment"].clone())
        .collect();
    assert_eq!(environments, ["staging", "canary", "production"]);
    for deployment in &deployments {
        let request = &deployment["_request"];
        assert_eq!(request["ref"], SHA);
        assert_eq!(request["payload"]["digest"], digest.as_str());
        assert_eq!(request["payload"]["image"], env.image());
        let states: Vec<_> = fake
            .statuses(deployment["id"].as_u64().expect("id"))
            .iter()
            .map(|s| s["state"].clone())
            .collect();
        assert_eq!(states, ["in_progress", "success"], "{deployment}");
        let production = deployment["environment"] == "production";
        assert_eq!(request["production_environment"], production);
    }
    assert_eq!(deployments[0]["id"].to_string(), first);

    // The next digest's record names the one it replaced: the rollback target.
    let next = push(&env, "dev", b"recorded again").await;
    let (output, _) = env.promote(&next, "dev", "staging", &refs);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let last = fake.deployments().last().cloned().expect("recorded");
    assert_eq!(
        last["_request"]["payload"]["previous_digest"],
        digest.as_str()
    );

    let rerun = env.promote(&next, "dev", "staging", &refs).1;
    assert_eq!(rerun["outputs"]["promoted"], "false");
    assert_eq!(
        rerun["outputs"]["deployment-id"], "",
        "nothing moved, nothing recorded"
    );
    assert_eq!(fake.deployments().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_is_recorded_as_a_failed_deployment() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let digest = push(&env, "dev", b"gate fails").await;
    let policy = env.write_policy(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: migration dry-run\n        run: exit 4\n",
    );
    let args = with(&github_args(&fake, "dev-dana"), &["--policy", &policy]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (output, _) = env.promote(&digest, "dev", "staging", &refs);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let deployment = fake.deployments().pop().expect("recorded");
    let statuses = fake.statuses(deployment["id"].as_u64().expect("id"));
    let states: Vec<_> = statuses.iter().map(|s| s["state"].clone()).collect();
    assert_eq!(states, ["in_progress", "failure"]);
    assert!(
        statuses[1]["description"]
            .as_str()
            .is_some_and(|d| d.contains("migration dry-run")),
        "{statuses:?}"
    );
    assert_eq!(env.digest_at("team/app:staging").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_checked_or_recorded_is_refused_before_anything_moves() {
    let Some(env) = setup() else { return };
    let digest = push(&env, "dev", b"unchecked").await;
    let policy = env.write_policy(RESTRICTED);
    // Restricted path, no token: the role cannot be checked.
    let (output, json) = env.promote(&digest, "staging", "canary", &["--policy", &policy]);
    assert_eq!(output.status.code(), Some(2));
    says(&json, "error", "refusing to promote unchecked");
    // A token but no commit to record the deployment against.
    let (output, json) = env.promote(
        &digest,
        "dev",
        "staging",
        &[
            "--policy",
            &policy,
            "--github-token",
            "ghs_example",
            "--repository",
            "acme/billing",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    says(&json, "error", "recording the deployment needs the commit");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("ghs_example"),
        "the token never reaches the output"
    );
    assert_eq!(env.digest_at("team/app:staging").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_arch_index_is_promoted_intact() {
    let Some(peers) = Peers::find() else { return };
    let Some(env) = setup() else { return };
    let layout = peers.build_layout(env.dir.path());
    let source = format!("oci:{}:multi", layout.display());
    peers.push(&env.registry, &source, "team/app:dev", &["--all"]);
    let pushed = peers.inspect_raw(&env.registry, "team/app:dev");
    let digest = Digest::sha256(&pushed);
    for (from, to) in [("dev", "staging"), ("staging", "canary")] {
        let (output, _) = env.promote(&digest, from, to, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let raw = peers.inspect_raw(&env.registry, &format!("team/app:{to}"));
        assert_eq!(
            raw, pushed,
            "{to}: skopeo reads back the same index, byte for byte"
        );
    }
    // Every platform arrived: skopeo copies the whole index out of canary.
    let out = env.dir.path().join("out");
    peers::run(
        &peers.skopeo,
        &[
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{}/team/app:canary", env.registry.host()),
            &format!("oci:{}:canary", out.display()),
        ],
    );
}

/// Pushes a CycloneDX SBOM artifact referring to `subject` (`host/repo@digest`).
async fn push_sbom(env: &Env, subject: &Reference) -> Digest {
    let descriptor = env
        .client
        .head_manifest(subject)
        .await
        .expect("head")
        .expect("subject exists");
    let artifact = Artifact {
        artifact_type: "application/vnd.cyclonedx+json".into(),
        layers: vec![ArtifactLayer {
            media_type: "application/vnd.cyclonedx+json".into(),
            bytes: Bytes::from_static(
                b"{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"components\":[]}",
            ),
            annotations: std::collections::BTreeMap::new(),
        }],
        subject: Some(descriptor),
        annotations: std::collections::BTreeMap::new(),
    };
    env.client
        .push_artifact(subject, &artifact)
        .await
        .expect("push sbom")
        .digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_referrers_travel_to_another_repository_and_another_registry() {
    let Some(cli) = peers::sigstore_js() else {
        return;
    };
    let Some(env) = setup_with(Auth::Basic) else {
        return;
    };
    let Some(other) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let digest = push(&env, "dev", b"signed elsewhere").await;
    let at_dev = env.reference(&format!("team/app@{digest}"));
    peers::sigstore_attach(
        &cli,
        &env.registry,
        &peers::conformance_bundle(),
        &at_dev.to_string(),
    );
    let sbom = push_sbom(&env, &at_dev).await;
    let attached = env
        .client
        .referrers(&at_dev, None)
        .await
        .expect("referrers");
    let bundle = attached
        .descriptors
        .iter()
        .find(|d| {
            d.artifact_type.as_deref() == Some("application/vnd.dev.sigstore.bundle.v0.3+json")
        })
        .unwrap_or_else(|| {
            panic!(
                "sigstore-js attached its bundle: {:?}",
                attached.descriptors
            )
        })
        .digest
        .clone();

    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    repository: {}/team/app-staging\n  - name: production\n    repository: {}/prod/app\n",
        env.registry.host(),
        other.host()
    ));
    let insecure = other.host();
    for (from, to, registry, path) in [
        ("dev", "staging", &env.registry, "team/app-staging"),
        ("staging", "production", &other, "prod/app"),
    ] {
        let (output, json) = env.promote(
            &digest,
            from,
            to,
            &["--policy", &policy, "--insecure-registry", &insecure],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{from} -> {to}: {}",
            text(&output.stderr)
        );
        assert_eq!(json["outputs"]["promoted"], "true");
        let summary = json["summary"].as_str().unwrap_or_default();
        assert!(
            summary.contains(&format!("- referrer `{bundle}`")),
            "the summary names what was carried: {summary}"
        );
        let client = Client::new(
            ClientOptions {
                plain_http: vec![registry.host()],
                ..Default::default()
            },
            credentials_for(registry),
        )
        .expect("client");
        let target = format!("{}/{path}@{digest}", registry.host())
            .parse::<Reference>()
            .expect("reference");
        let carried: Vec<Digest> = client
            .referrers(&target, None)
            .await
            .expect("referrers")
            .descriptors
            .into_iter()
            .map(|d| d.digest)
            .collect();
        assert!(
            carried.contains(&bundle) && carried.contains(&sbom),
            "{to}: sigstore-js's bundle {bundle} and the SBOM {sbom} arrived: {carried:?}"
        );
        let tag = format!("{}/{path}:{to}", registry.host())
            .parse::<Reference>()
            .expect("tag");
        assert_eq!(
            client.resolve(&tag).await.expect("tag").digest,
            digest,
            "same digest"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_container_action_inputs_come_from_the_runner_and_the_run_is_recorded() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    fake.set_permission("acme/billing", "lead-lars", "admin", "admin");
    let digest = push(&env, "dev", b"from the runner").await;
    let policy = env.write_policy(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    allowed:\n      roles: [maintain]\n",
    );
    let output_file = env.dir.path().join("github_output");
    let summary_file = env.dir.path().join("step_summary");
    std::fs::write(&output_file, "").expect("output file");
    let output = Command::new(env!("CARGO_BIN_EXE_promote-digest"))
        .arg("--action")
        .current_dir(env.dir.path())
        .env("DOCKER_CONFIG", env.dir.path())
        .env("INPUT_IMAGE", env.image())
        .env("INPUT_DIGEST", digest.as_str())
        .env("INPUT_SOURCE-ENV", "dev")
        .env("INPUT_TARGET-ENV", "staging")
        .env("INPUT_POLICY", &policy)
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_DEPLOYMENT", "true")
        .env("INPUT_DRY-RUN", "false")
        .env("INPUT_INSECURE-REGISTRY", env.registry.host())
        .env("INPUT_REPOSITORY", "")
        .env("INPUT_SHA", "")
        .env("INPUT_ACTOR", "")
        .env("INPUT_GITHUB-API-URL", "")
        .env("INPUT_CA-FILE", "")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("GITHUB_REPOSITORY", "acme/billing")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_ACTOR", "someone-else")
        .env("GITHUB_TRIGGERING_ACTOR", "lead-lars")
        .env("GITHUB_API_URL", fake.url())
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "42")
        .output()
        .expect("run the action");
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}\n{}",
        text(&output.stderr),
        fake.prism_log()
    );
    assert!(
        stdout.starts_with(&format!("::add-mask::{TOKEN}")),
        "the token is masked first: {stdout}"
    );
    let outputs = gantry_actions::files::parse_outputs(
        &std::fs::read_to_string(&output_file).expect("outputs"),
    )
    .expect("well-formed outputs");
    assert_eq!(outputs["promoted"], "true");
    assert_eq!(outputs["digest"], digest.as_str());
    let summary = std::fs::read_to_string(&summary_file).expect("summary");
    assert!(
        summary.contains("lead-lars holds role admin in acme/billing"),
        "{summary}"
    );
    let deployment = fake.deployments().pop().expect("recorded");
    assert_eq!(
        deployment["_request"]["ref"], SHA,
        "GITHUB_SHA is the deployment's ref"
    );
    assert_eq!(outputs["deployment-id"], deployment["id"].to_string());
    let status = fake
        .statuses(deployment["id"].as_u64().expect("id"))
        .pop()
        .expect("status");
    assert_eq!(
        status["_request"]["log_url"],
        "https://github.com/acme/billing/actions/runs/42"
    );
    assert_eq!(
        env.digest_at("team/app:staging").await.as_ref(),
        Some(&digest)
    );
}

/// Signs `digest` in team/app keyless against the mock Sigstore services, as cosign v3 stores it.
async fn sign_keyless(env: &Env, services: &MockSigstore, digest: &Digest) {
    use gantry_sigstore::sign::{
        COSIGN_SIGN_PREDICATE, Identity, Services, attach, image_statement, sign_statement,
    };
    let image = env.reference("team/app").with_digest(digest.clone());
    let identity = Identity::Keyless {
        token: gantry_secret::Secret::new(services.token.clone()),
        services: Services::from_signing_config(&services.signing_config).expect("config"),
    };
    let statement = image_statement(&image.name(), digest, &std::collections::BTreeMap::new());
    let bundle = sign_statement(&identity, &reqwest::Client::new(), &statement)
        .await
        .expect("sign");
    attach(&env.client, &image, &bundle, COSIGN_SIGN_PREDICATE)
        .await
        .expect("attach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_requires_a_signature_promotes_only_what_the_identity_signed() {
    let Some(env) = setup() else { return };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    // The trusted root beside the policy, named relative to it.
    std::fs::copy(&services.trusted_root, env.dir.path().join("root.json")).expect("copy");
    let policy = |identity: &str| {
        env.write_policy(&format!(
            "version: 1\npromotions:\n  - from: dev\n    to: staging\n    require-signature:\n      identity: {identity}\n      trusted-root: root.json\n  - from: staging\n    to: canary\n"
        ))
    };
    let unsigned = push(&env, "dev", b"not signed").await;
    let (output, json) = env.promote(
        &unsigned,
        "dev",
        "staging",
        &["--policy", &policy(SIGNER_IDENTITY)],
    );
    assert_eq!(output.status.code(), Some(1), "{json}");
    says(
        &json,
        "failure",
        "dev -> staging requires a signature: no signatures found for",
    );
    assert_eq!(env.digest_at("team/app:staging").await, None);

    let signed = push(&env, "dev", b"signed").await;
    sign_keyless(&env, &services, &signed).await;
    let someone = "https://github.com/acme/billing/.github/workflows/other.yml@refs/heads/main";
    let (output, json) = env.promote(&signed, "dev", "staging", &["--policy", &policy(someone)]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    says(
        &json,
        "failure",
        &format!("is signed by \"{SIGNER_IDENTITY}\""),
    );
    assert_eq!(env.digest_at("team/app:staging").await, None);

    let (output, json) = env.promote(
        &signed,
        "dev",
        "staging",
        &["--policy", &policy(SIGNER_IDENTITY)],
    );
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(
        env.digest_at("team/app:staging").await.as_ref(),
        Some(&signed)
    );
    says(
        &json,
        "summary",
        &format!("✅ signed by {SIGNER_IDENTITY}, issuer "),
    );
    says(&json, "summary", ", Rekor log index ");

    // A requirement that cannot be checked is bad input, located in the file.
    let both = env.write_policy(
        "version: 1\npromotions:\n  - from: staging\n    to: canary\n    require-signature:\n      identity: someone\n      key: cosign.pub\n",
    );
    let (output, json) = env.promote(&signed, "staging", "canary", &["--policy", &both]);
    assert_eq!(output.status.code(), Some(2), "{json}");
    says(&json, "error", "policy.yml:3:");
    says(
        &json,
        "error",
        "give a key or a certificate identity, not both",
    );
    assert_eq!(env.digest_at("team/app:canary").await, None);
}

/// Attaches an SBOM to `digest` as sbom-attach does: the CycloneDX referrer, and the attestation
/// signed keyless by the mock's identity.
async fn attach_sbom(env: &Env, services: &MockSigstore, digest: &Digest) {
    use gantry_sigstore::sign::{Identity, Services, attach, sign_statement};
    let image = env.reference("team/app").with_digest(digest.clone());
    let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}"#;
    let subject = env.client.resolve(&image).await.expect("resolve");
    env.client
        .push_artifact(
            &image,
            &Artifact {
                artifact_type: "application/vnd.cyclonedx+json".to_owned(),
                layers: vec![ArtifactLayer {
                    media_type: "application/vnd.cyclonedx+json".to_owned(),
                    bytes: Bytes::from_static(sbom),
                    annotations: std::collections::BTreeMap::new(),
                }],
                subject: Some(subject),
                annotations: std::collections::BTreeMap::new(),
            },
        )
        .await
        .expect("sbom referrer");
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": image.name(), "digest": {"sha256": digest.hex()}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": serde_json::from_slice::<serde_json::Value>(sbom).expect("json"),
    });
    let identity = Identity::Keyless {
        token: gantry_secret::Secret::new(services.token.clone()),
        services: Services::from_signing_config(&services.signing_config).expect("config"),
    };
    let bundle = sign_statement(
        &identity,
        &reqwest::Client::new(),
        statement.to_string().as_bytes(),
    )
    .await
    .expect("sign");
    attach(&env.client, &image, &bundle, "https://cyclonedx.org/bom")
        .await
        .expect("attach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_requires_the_sbom_attestation_refuses_without_it_and_carries_it_along() {
    let Some(env) = setup() else { return };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    std::fs::copy(&services.trusted_root, env.dir.path().join("root.json")).expect("copy");
    let host = env.registry.host();
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    repository: {host}/team/staging\npromotions:\n  - from: dev\n    to: staging\n    require-signature:\n      identity: {SIGNER_IDENTITY}\n      trusted-root: root.json\n    require-attestation: [cyclonedx]\n"
    ));
    // signed, but no SBOM attestation: refused, nothing moves
    let signed = push(&env, "dev", b"signed, no sbom").await;
    sign_keyless(&env, &services, &signed).await;
    let (output, json) = env.promote(&signed, "dev", "staging", &["--policy", &policy]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    says(
        &json,
        "failure",
        "dev -> staging requires attestation https://cyclonedx.org/bom: no attestation of type https://cyclonedx.org/bom",
    );
    assert_eq!(env.digest_at("team/staging:staging").await, None);
    // with it: promoted, and the SBOM and its attestation are referrers in staging's repository
    attach_sbom(&env, &services, &signed).await;
    let (output, json) = env.promote(&signed, "dev", "staging", &["--policy", &policy]);
    assert_eq!(output.status.code(), Some(0), "{json}");
    says(&json, "summary", "✅ attestation https://cyclonedx.org/bom");
    let staging = env.reference("team/staging").with_digest(signed.clone());
    let carried = env
        .client
        .referrers(&staging, None)
        .await
        .expect("referrers");
    let types: Vec<&str> = carried
        .descriptors
        .iter()
        .filter_map(|d| d.artifact_type.as_deref())
        .collect();
    assert!(
        types.contains(&"application/vnd.cyclonedx+json"),
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "application/vnd.dev.sigstore.bundle.v0.3+json")
            .count(),
        2,
        "the signature and the SBOM attestation: {types:?}"
    );
    // require-attestation without require-signature: no identity to check it against
    let alone = env.write_policy(
        "version: 1\npromotions:\n  - from: dev\n    to: staging\n    require-attestation: [cyclonedx]\n",
    );
    let (output, json) = env.promote(&signed, "dev", "staging", &["--policy", &alone]);
    assert_eq!(output.status.code(), Some(2), "{json}");
    says(&json, "error", "needs require-signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_requirement_can_take_its_trusted_root_from_a_tuf_repository() {
    let Some(env) = setup() else { return };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let Some(repository) = gantry_testkit::tuf::TufRepository::serve(&[&services.trusted_root], 7)
    else {
        return;
    };
    // The TUF root beside the policy, named relative to it, as is the cache.
    std::fs::copy(&repository.root, env.dir.path().join("tuf-root.json")).expect("copy");
    let policy = |root: &str| {
        env.write_policy(&format!(
            "version: 1\npromotions:\n  - from: dev\n    to: staging\n    require-signature:\n      identity: {SIGNER_IDENTITY}\n      tuf-url: {}\n      tuf-root: {root}\n      tuf-cache: tuf-cache\n",
            repository.url
        ))
    };
    let signed = push(&env, "dev", b"signed").await;
    sign_keyless(&env, &services, &signed).await;

    // A root file that is not there: bad input, located in the policy, before anything moves.
    let (output, json) = env.promote(
        &signed,
        "dev",
        "staging",
        &["--policy", &policy("missing.json")],
    );
    assert_eq!(output.status.code(), Some(2), "{json}");
    says(&json, "error", "policy.yml:3:");
    says(&json, "error", "missing.json: No such file");
    assert_eq!(env.digest_at("team/app:staging").await, None);

    let (output, json) = env.promote(
        &signed,
        "dev",
        "staging",
        &["--policy", &policy("tuf-root.json")],
    );
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(
        env.digest_at("team/app:staging").await.as_ref(),
        Some(&signed)
    );
    says(&json, "summary", &format!("✅ signed by {SIGNER_IDENTITY}"));
    assert!(
        env.dir.path().join("tuf-cache/timestamp.json").is_file(),
        "the cache is beside the policy"
    );
}
