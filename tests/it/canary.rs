//! The canary's verdict travels with the digest: canary-watch signs it, promote-digest reads it.
//! A digest rolled back from canary is refused on its way to production unless allowed; a path
//! that requires `canary` takes only a digest whose newest verdict passed. The static binary,
//! every tool as a process, on gantry's registry.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use bytes::Bytes;
use gantry_oci::{Client, Digest, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_testkit::{Auth, Backend, Registry, stdout_json};
use serde_json::Value;

use crate::dist_binary;

async fn health(status: Arc<AtomicU16>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let status = status.clone();
            async move {
                axum::http::StatusCode::from_u16(status.load(Ordering::Relaxed))
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn image(client: &Client, at: &Reference, text: &str) -> Digest {
    let image = ScratchImage::build(
        &[ImageFile {
            path: "/app".into(),
            mode: 0o755,
            bytes: Bytes::copy_from_slice(text.as_bytes()),
        }],
        &ImageConfig::default(),
    )
    .expect("image");
    image.push(client, at).await.expect("push");
    image.digest().clone()
}

/// One registry, two builds (`previous`, then `next` at canary, signed), a key, two policies
/// (canary → production requiring the key's signature; and the canary verdict too), a canary
/// whose health the test sets.
struct Flow {
    binary: std::path::PathBuf,
    _registry: Registry,
    dir: tempfile::TempDir,
    host: String,
    repository: String,
    client: Client,
    canary_tag: Reference,
    production: Reference,
    previous: Digest,
    next: Digest,
    key: String,
    plain: String,
    strict: String,
    status: Arc<AtomicU16>,
    health_url: String,
}

impl Flow {
    async fn start() -> Option<Self> {
        let binary = dist_binary()?;
        let registry = Registry::start_on(Backend::Gantry, Auth::Anonymous)?;
        let host = registry.host();
        let client = Client::plain_http(&host).expect("client");
        let repository = format!("{host}/acme/billing");
        let canary_tag: Reference = format!("{repository}:canary").parse().expect("reference");
        let production: Reference = format!("{repository}:production")
            .parse()
            .expect("reference");
        let previous = image(&client, &canary_tag, "v1").await;
        let next = image(&client, &canary_tag, "v2").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let key_path = dir.path().join("cosign.key");
        let pem = gantry_sigstore::sign::SigningKey::generate_pem().expect("key");
        std::fs::write(&key_path, pem.expose()).expect("key");
        let public = gantry_sigstore::sign::SigningKey::from_file(&key_path, None)
            .and_then(|k| k.public_pem())
            .expect("public key");
        std::fs::write(dir.path().join("cosign.pub"), public).expect("public key");
        let policy = |require_canary: bool, name: &str| {
            let path = dir.path().join(name);
            std::fs::write(
                &path,
                format!(
                    "version: 1\npromotions:\n  - from: dev\n    to: staging\n  - from: staging\n    to: canary\n  - from: canary\n    to: production\n    require-signature:\n      key: cosign.pub\n      insecure-ignore-tlog: true\n{}",
                    if require_canary { "    require-attestation: [canary]\n" } else { "" }
                ),
            )
            .expect("policy");
            path.to_str().expect("path").to_owned()
        };
        let (plain, strict) = (policy(false, "gantry.yml"), policy(true, "canary.yml"));
        let status = Arc::new(AtomicU16::new(503));
        let health_url = format!("http://{}/health", health(status.clone()).await);
        let flow = Self {
            binary,
            _registry: registry,
            host,
            repository,
            client,
            canary_tag,
            production,
            previous,
            next,
            key: key_path.to_str().expect("path").to_owned(),
            plain,
            strict,
            status,
            health_url,
            dir,
        };
        let at_next = format!("{}@{}", flow.repository, flow.next);
        let (out, json) = flow.gantry(&[
            "sign-image",
            "--image",
            &at_next,
            "--key",
            &flow.key,
            "--tlog-upload",
            "false",
        ]);
        assert_eq!(out.status.code(), Some(0), "{json}");
        Some(flow)
    }

    fn gantry(&self, args: &[&str]) -> (Output, Value) {
        let output = Command::new(&self.binary)
            .current_dir(self.dir.path())
            .args(args)
            .args(["--insecure-registry", &self.host, "--json"])
            .env_remove("GITHUB_ACTIONS")
            .output()
            .expect("run gantry");
        let json = stdout_json(&output);
        (output, json)
    }

    /// canary-watch on `next`, rolling back to `previous`, signing its verdict with the key.
    fn watch(&self, extra: &[&str]) -> (Output, Value) {
        let mut args = vec![
            "canary-watch",
            "--image",
            &self.repository,
            "--health-url",
            &self.health_url,
            "--interval",
            "200ms",
            "--probe-timeout",
            "150ms",
            "--duration",
            "4s",
            "--previous-digest",
            self.previous.as_str(),
            "--attest",
            "true",
            "--key",
            &self.key,
            "--tlog-upload",
            "false",
            "--policy",
            &self.plain,
        ];
        args.extend_from_slice(extra);
        self.gantry(&args)
    }

    /// promote-digest of `next`, canary → production.
    fn promote(&self, policy: &str, extra: &[&str]) -> (Output, Value) {
        let mut args = vec![
            "promote-digest",
            "--image",
            &self.repository,
            "--digest",
            self.next.as_str(),
            "--source-env",
            "canary",
            "--target-env",
            "production",
            "--policy",
            policy,
        ];
        args.extend_from_slice(extra);
        self.gantry(&args)
    }

    /// Puts `digest` at `tag` by hand.
    async fn put(&self, tag: &Reference, digest: &Digest) {
        let manifest = self
            .client
            .manifest(&self.canary_tag.with_digest(digest.clone()))
            .await
            .expect("manifest");
        self.client.put_manifest(tag, &manifest).await.expect("put");
    }

    async fn at(&self, tag: &Reference) -> Option<Digest> {
        self.client
            .head_manifest(tag)
            .await
            .expect("head")
            .map(|d| d.digest)
    }
}

fn says(json: &Value, key: &str, expected: &str) {
    assert!(
        json[key].as_str().unwrap_or_default().contains(expected),
        "expected {key} to contain {expected:?}: {json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_digest_is_refused_on_its_way_to_production_unless_allowed() {
    let Some(flow) = Flow::start().await else {
        return;
    };
    // The canary fails: rolled back, and the failed verdict is signed onto the digest.
    let (out, json) = flow.watch(&[]);
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert_eq!(json["outputs"]["outcome"], "rolled-back", "{json}");
    says(&json["outputs"], "attestation-digest", "sha256:");
    // Someone puts it back on canary by hand; promote-digest will not take it further.
    flow.put(&flow.canary_tag, &flow.next).await;
    let (out, json) = flow.promote(&flow.plain, &[]);
    assert_eq!(out.status.code(), Some(1), "{json}");
    says(
        &json,
        "failure",
        &format!(
            "{} was rolled back by canary-watch (the newest canary verdict",
            flow.next
        ),
    );
    assert_eq!(flow.at(&flow.production).await, None);
    let (out, json) = flow.promote(&flow.strict, &[]);
    assert_eq!(out.status.code(), Some(1), "{json}");

    // Watched again and healthy: the newest verdict passes, and the strict path takes it.
    flow.status.store(200, Ordering::Relaxed);
    let (out, json) = flow.watch(&["--consecutive-successes", "2"]);
    assert_eq!(out.status.code(), Some(0), "{json}");
    assert_eq!(json["outputs"]["outcome"], "healthy");
    let (out, json) = flow.promote(&flow.strict, &[]);
    assert_eq!(out.status.code(), Some(0), "{json}");
    says(
        &json,
        "summary",
        "✅ attestation https://gantry.dev/attestations/canary/v1",
    );
    assert_eq!(flow.at(&flow.production).await.as_ref(), Some(&flow.next));

    // Failed again: allow-rolled-back is the only way past a failed newest verdict.
    flow.status.store(503, Ordering::Relaxed);
    let (out, json) = flow.watch(&[]);
    assert_eq!(out.status.code(), Some(1), "{json}");
    flow.put(&flow.canary_tag, &flow.next).await;
    flow.put(&flow.production, &flow.previous).await;
    let (out, json) = flow.promote(&flow.plain, &[]);
    assert_eq!(out.status.code(), Some(1), "{json}");
    let (out, json) = flow.promote(&flow.plain, &["--allow-rolled-back"]);
    assert_eq!(out.status.code(), Some(0), "{json}");
    says(&json, "summary", "promoted again as allow-rolled-back says");
}
