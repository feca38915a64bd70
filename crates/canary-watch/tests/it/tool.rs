//! canary-watch, the real binary, against real registries, a real canary service, the GitHub
//! stand-in behind prism and a webhook receiver.

use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use bytes::Bytes;
use gantry_oci::{Client, Digest, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_testkit::{Auth, Backend, Registry, stdout_json};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::service;

struct Stage {
    registry: Registry,
    client: Client,
    tag: Reference,
    previous: Digest,
    canary: Digest,
    status: Arc<AtomicU16>,
    health: SocketAddr,
    dir: tempfile::TempDir,
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

/// A registry whose `acme/billing:canary` moved from `previous` to `canary`, and a healthy canary.
async fn stage(backend: Backend) -> Option<Stage> {
    let registry = Registry::start_on(backend, Auth::Anonymous)?;
    let client = Client::plain_http(&registry.host()).expect("client");
    let tag: Reference = format!("{}/acme/billing:canary", registry.host())
        .parse()
        .expect("reference");
    let previous = image(&client, &tag, "v1").await;
    let canary = image(&client, &tag, "v2").await;
    let status = Arc::new(AtomicU16::new(200));
    let health = service(status.clone()).await;
    Some(Stage {
        registry,
        client,
        tag,
        previous,
        canary,
        status,
        health,
        dir: tempfile::tempdir().expect("tempdir"),
    })
}

impl Stage {
    fn command(&self, extra: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_canary-watch"));
        command
            .current_dir(self.dir.path())
            .args([
                "--image",
                &format!("{}/acme/billing", self.registry.host()),
                "--interval",
                "200ms",
                "--probe-timeout",
                "150ms",
                "--insecure-registry",
                &self.registry.host(),
                "--json",
            ])
            .args(extra)
            .args(if extra.contains(&"--health-url") {
                Vec::new()
            } else {
                vec![
                    "--health-url".to_owned(),
                    format!("http://{}/health", self.health),
                ]
            })
            .args(if extra.contains(&"--duration") {
                &[][..]
            } else {
                &["--duration", "4s"][..]
            })
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_TOKEN")
            .kill_on_drop(true);
        command
    }

    async fn run(&self, extra: &[&str]) -> (Output, Value) {
        let output = self
            .command(extra)
            .output()
            .await
            .expect("run canary-watch");
        let json = stdout_json(&output);
        (output, json)
    }

    async fn at(&self, tag: &str) -> Option<Digest> {
        self.client
            .head_manifest(&self.tag.with_tag(tag).expect("tag"))
            .await
            .expect("head")
            .map(|d| d.digest)
    }

    /// The canary fails from `after` on.
    fn fail_after(&self, after: Duration) {
        let status = self.status.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            status.store(503, Ordering::Relaxed);
        });
    }
}

fn output<'a>(json: &'a Value, name: &str) -> &'a str {
    json["outputs"][name].as_str().unwrap_or_default()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_is_rolled_back_within_a_second_of_the_decision() {
    for backend in [Backend::Distribution, Backend::Gantry] {
        let Some(stage) = stage(backend).await else {
            return;
        };
        stage.fail_after(Duration::from_millis(700));
        let (out, json) = stage
            .run(&["--previous-digest", stage.previous.as_str()])
            .await;
        assert_eq!(out.status.code(), Some(1), "{backend:?}: {}", stderr(&out));
        assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
        assert_eq!(output(&json, "rolled-back"), "true");
        assert_eq!(output(&json, "digest"), stage.canary.as_str());
        assert_eq!(output(&json, "previous-digest"), stage.previous.as_str());
        assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.previous));
        assert_eq!(
            output(&json, "rollback-requests"),
            "3",
            "read, put, read back"
        );
        let repoint: u64 = output(&json, "repoint-ms").parse().expect("repoint-ms");
        assert!(repoint < 1_000, "{backend:?}: {repoint} ms");
        let reason = output(&json, "reason");
        assert!(reason.starts_with("3 failing ticks in a row"), "{reason}");
        assert!(reason.contains("health: HTTP 503 (bound 2xx)"), "{reason}");
        let ticks: Vec<Value> =
            serde_json::from_str(output(&json, "measurements")).expect("measurements");
        let failing = ticks.iter().filter(|t| t["verdict"] == "fail").count();
        assert_eq!(failing, 3, "{ticks:#?}");
        assert!(
            ticks
                .iter()
                .all(|t| t["measurements"][0]["check"] == "health")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_is_left_and_a_success_streak_ends_the_watch_early() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--consecutive-successes",
            "3",
            "--initial-delay",
            "200ms",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "healthy");
    assert_eq!(output(&json, "rolled-back"), "false");
    assert_eq!(output(&json, "ticks"), "3");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.canary));
    let ticks: Vec<Value> =
        serde_json::from_str(output(&json, "measurements")).expect("measurements");
    assert_eq!(ticks.len(), 4, "one warm-up tick, three counted");
    assert_eq!(ticks[0]["counted"], false);
    // A log line per tick, on stderr.
    let logged: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("tick "))
        .map(str::to_owned)
        .collect();
    assert_eq!(logged.len(), 4, "{logged:#?}");
    assert!(
        logged[0].starts_with("tick 1 (warm-up) at 0.0 s: Pass — health Pass: HTTP 200"),
        "{logged:#?}"
    );
    assert!(
        logged[3].ends_with("(streaks: 0 failing, 0 errors, 0 inconclusive, 3 passing)"),
        "{logged:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_refuses_to_start_when_a_rollback_could_not_happen() {
    let Some(mut stage) = stage(Backend::Distribution).await else {
        return;
    };
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage.run(&[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no digest to roll back to"),
        "{json}"
    );
    let missing = Digest::sha256(b"never pushed");
    let (out, json) = stage.run(&["--previous-digest", missing.as_str()]).await;
    assert_eq!(out.status.code(), Some(2), "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("keeping"),
        "{json}"
    );
    let (out, json) = stage
        .run(&["--previous-digest", stage.canary.as_str()])
        .await;
    assert_eq!(out.status.code(), Some(2), "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is the canary itself"),
        "{json}"
    );
    // Reads work, writes do not: the watch must not start.
    stage.registry.make_read_only().expect("read-only");
    let (out, json) = stage
        .run(&["--previous-digest", stage.previous.as_str()])
        .await;
    assert_eq!(out.status.code(), Some(2), "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("proving push permission"),
        "{json}"
    );
    assert!(json["outputs"]["outcome"].is_null(), "no tick ran: {json}");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.canary));
    // With rollback off, nothing needs proving.
    let (out, json) = stage
        .run(&["--rollback", "false", "--consecutive-failures", "2"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "would-roll-back");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.canary));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_else_moving_the_tag_stops_the_watch_without_a_rollback() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let client = Client::plain_http(&stage.registry.host()).expect("client");
    let tag = stage.tag.clone();
    let mover = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        image(&client, &tag, "v3, promoted by someone else").await
    });
    // The canary fails later: the moved tag must win, and nothing is rolled back.
    stage.fail_after(Duration::from_millis(900));
    let (out, json) = stage
        .run(&["--previous-digest", stage.previous.as_str()])
        .await;
    let third = mover.await.expect("mover");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "superseded", "{json}");
    assert_eq!(output(&json, "rolled-back"), "false");
    assert!(output(&json, "reason").contains(third.as_str()), "{json}");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&third));
    // Told at the start: the tag no longer holds the digest the caller promoted.
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--digest",
            stage.canary.as_str(),
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert_eq!(output(&json, "outcome"), "superseded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_holding_the_canary_go_back_with_it_and_others_are_left() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let latest = stage.tag.with_tag("latest").expect("tag");
    let beta = stage.tag.with_tag("beta").expect("tag");
    let manifest = stage
        .client
        .manifest(&stage.tag.with_digest(stage.canary.clone()))
        .await
        .expect("manifest");
    stage
        .client
        .put_manifest(&latest, &manifest)
        .await
        .expect("latest");
    let other = image(&stage.client, &beta, "beta build").await;
    let policy = stage.dir.path().join("gantry.yml");
    std::fs::write(
        &policy,
        "version: 1\nenvironments:\n  - name: staging\n  - name: canary\n    aliases: [latest, beta]\n  - name: production\n",
    )
    .expect("policy");
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--policy",
            policy.to_str().expect("path"),
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.previous));
    assert_eq!(stage.at("latest").await.as_ref(), Some(&stage.previous));
    assert_eq!(
        stage.at("beta").await.as_ref(),
        Some(&other),
        "not the canary's"
    );
    assert_eq!(output(&json, "rollback-requests"), "6", "three per tag");
    let summary = json["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("alias left alone"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_that_pile_up_hold_the_canary_and_exit_2() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    // A metrics backend that refuses every connection: errors, never failures.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--prometheus-url",
            &format!("http://{closed}"),
            "--query",
            "up",
            "--consecutive-errors",
            "2",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "hold", "{json}");
    assert!(
        output(&json, "reason").starts_with("2 error ticks in a row"),
        "{json}"
    );
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.canary));
}

async fn signal_during_watch(stage: &Stage, extra: &[&str]) -> (Output, Value, Duration) {
    let mut args = vec![
        "--previous-digest",
        stage.previous.as_str(),
        "--duration",
        "20s",
    ];
    args.extend_from_slice(extra);
    let child = stage
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = child.id().expect("pid");
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().await.expect("wait");
    let took = sent.elapsed();
    let json = stdout_json(&out);
    (out, json, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_watch_leaves_the_canary_or_rolls_it_back_as_told() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let (out, json, took) = signal_during_watch(&stage, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "cancelled", "{json}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        json["failure"]
            .as_str()
            .unwrap_or_default()
            .contains("SIGTERM"),
        "{json}"
    );
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.canary));

    let (out, json, took) = signal_during_watch(&stage, &["--on-cancel", "rollback"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.previous));
}

/// A webhook receiver: every request's headers and body; answers `status`.
async fn receiver(status: u16) -> (SocketAddr, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let kept = seen.clone();
    let app = Router::new().route(
        "/hooks/{secret}",
        post(move |mut headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                // When it arrived, kept with the request.
                let arrived = jiff::Timestamp::now().to_string();
                headers.insert("x-test-arrived", arrived.parse().expect("header"));
                kept.lock().expect("lock").push((headers, body));
                axum::http::StatusCode::from_u16(status).expect("status")
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// The json webhook's request: a `CloudEvents` event of the rollback, signed with the key, sent within
/// 2 s of the decision it announces (its time).
fn signed_cloud_event(stage: &Stage, headers: &HeaderMap, body: &Bytes) {
    assert_eq!(headers["content-type"], "application/cloudevents+json");
    let signature = headers["x-gantry-signature-256"].to_str().expect("ascii");
    assert_eq!(
        signature,
        canary_watch::notify::signature(&gantry_secret::Secret::new("hmac-key"), body)
    );
    let event: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(event["specversion"], "1.0");
    // Sent within 2 s of the decision (its time), the rollback first.
    let decided: jiff::Timestamp = event["time"]
        .as_str()
        .expect("time")
        .parse()
        .expect("RFC 3339");
    let arrived: jiff::Timestamp = headers["x-test-arrived"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("RFC 3339");
    let after = arrived.duration_since(decided);
    assert!(
        after >= jiff::SignedDuration::ZERO && after <= jiff::SignedDuration::from_secs(2),
        "{after:?}"
    );
    assert_eq!(event["type"], "dev.gantry.canary.rolled_back");
    assert_eq!(event["data"]["digest"], stage.canary.as_str());
    assert_eq!(event["data"]["previous_digest"], stage.previous.as_str());
    assert!(
        event["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 503")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_is_announced_signed_in_each_format_and_a_dead_webhook_changes_nothing() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let (addr, seen) = receiver(200).await;
    let url = format!("http://{addr}/hooks/T0KEN-in-the-url");
    stage.status.store(503, Ordering::Relaxed);
    let (out, _) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--webhook-url",
            &url,
            "--webhook-secret",
            "hmac-key",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (headers, body) = seen.lock().expect("lock").remove(0);
    signed_cloud_event(&stage, &headers, &body);
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        !printed.contains("T0KEN-in-the-url"),
        "the URL is a secret: {printed}"
    );

    // Slack and Teams, on a healthy canary (ends after one passing tick); the tag holds the
    // previous digest now.
    stage.status.store(200, Ordering::Relaxed);
    for format in ["slack", "teams"] {
        let (out, _) = stage
            .run(&[
                "--previous-digest",
                stage.canary.as_str(),
                "--consecutive-successes",
                "1",
                "--webhook-url",
                &url,
                "--webhook-format",
                format,
            ])
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let (_, body) = seen.lock().expect("lock").remove(0);
        let message: Value = serde_json::from_slice(&body).expect("json");
        if format == "slack" {
            assert!(
                message["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("is healthy")
            );
            assert_eq!(message["blocks"][0]["type"], "header");
        } else {
            let card = &message["attachments"][0];
            assert_eq!(
                card["contentType"],
                "application/vnd.microsoft.card.adaptive"
            );
            assert_eq!(card["content"]["type"], "AdaptiveCard");
            assert_eq!(card["content"]["body"][3]["type"], "FactSet");
        }
    }

    // A webhook that always fails: retried, then a warning; the outcome stands.
    let (dead, dead_seen) = receiver(503).await;
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.canary.as_str(),
            "--digest",
            stage.previous.as_str(),
            "--webhook-url",
            &format!("http://{dead}/hooks/x"),
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
    assert_eq!(dead_seen.lock().expect("lock").len(), 3, "three attempts");
    assert!(
        json["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("not** delivered: the webhook answered HTTP 503"),
        "{json}"
    );
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Records a deployment of `digest` to canary through the GitHub API (prism checks it), with
/// the states given, oldest first.
async fn deployed(
    github: &gantry_github::GitHub,
    repository: &gantry_github::Repository,
    digest: &Digest,
    states: &[gantry_github::DeploymentState],
) -> u64 {
    let deployment = github
        .create_deployment(
            repository,
            &gantry_github::NewDeployment {
                git_ref: SHA.to_owned(),
                environment: "canary".to_owned(),
                description: "promote-digest".to_owned(),
                payload: serde_json::json!({"digest": digest.as_str(), "image": "acme/billing"}),
                production_environment: false,
            },
        )
        .await
        .expect("deployment");
    for state in states {
        github
            .create_deployment_status(
                repository,
                deployment.id,
                &gantry_github::NewDeploymentStatus {
                    state: *state,
                    description: String::new(),
                    log_url: None,
                    auto_inactive: true,
                },
            )
            .await
            .expect("status");
    }
    deployment.id
}

/// The canary environment's history, recorded through the API: the previous digest's promotion
/// (since superseded, so inactive), an unrelated digest that was rolled back itself (its latest
/// status a failure), then the canary's promotion (whose id this returns); and a redeploy
/// workflow.
async fn history(fake: &gantry_testkit::GitHubFake, stage: &Stage) -> u64 {
    use gantry_github::DeploymentState::{Failure, InProgress, Inactive, Success};
    let mut options =
        gantry_github::Options::new(gantry_secret::Secret::new(gantry_testkit::github::TOKEN));
    options.api_url = Some(fake.url());
    let github = gantry_github::GitHub::new(options).expect("client");
    let repository: gantry_github::Repository = "acme/billing".parse().expect("repository");
    // Oldest first: the previous digest's promotion (since superseded, so inactive), an
    // unrelated digest that was rolled back itself (its latest status a failure), then the
    // canary's promotion.
    deployed(
        &github,
        &repository,
        &stage.previous,
        &[InProgress, Success, Inactive],
    )
    .await;
    let bad = Digest::sha256(b"a digest that was rolled back");
    deployed(&github, &repository, &bad, &[InProgress, Success, Failure]).await;
    let promotion = deployed(&github, &repository, &stage.canary, &[InProgress, Success]).await;
    // The redeploy: a workflow of the same repository, dispatched after the rollback.
    fake.add_workflow(gantry_testkit::github::FakeWorkflow::new(
        "acme/billing",
        "redeploy.yml",
        &["digest", "rolled_back_from", "environment"],
        "redeploy ${{ inputs.environment }}",
        gantry_testkit::github::RunPlan::new(Duration::ZERO, Duration::from_secs(1), "success"),
    ));
    promotion
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_digest_comes_from_the_deployments_and_the_rollback_is_recorded() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let Some(fake) = gantry_testkit::GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let promotion = history(&fake, &stage).await;
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .run(&[
            "--github-token",
            gantry_testkit::github::TOKEN,
            "--github-api-url",
            &fake.url(),
            "--repository",
            "acme/billing",
            "--on-rollback-workflow",
            "redeploy.yml",
        ])
        .await;
    let redeploy = fake
        .runs()
        .into_iter()
        .find(|run| run.display_title == "redeploy canary")
        .expect("the redeploy was dispatched");
    assert_eq!(redeploy.inputs["digest"], stage.previous.as_str());
    assert_eq!(redeploy.inputs["rolled_back_from"], stage.canary.as_str());
    assert_eq!(
        output(&json, "redeploy"),
        format!(
            "redeploy.yml dispatched in acme/billing: run {}",
            redeploy.id
        )
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stderr(&out),
        fake.prism_log()
    );
    assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
    assert_eq!(output(&json, "previous-digest"), stage.previous.as_str());
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.previous));
    assert!(
        json["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("(from the last successful deployment)"),
        "{json}"
    );
    // The promotion is marked failed; a new deployment records the digest restored.
    let statuses = fake.statuses(promotion);
    assert_eq!(statuses.last().expect("status")["state"], "failure");
    let id: u64 = output(&json, "deployment-id")
        .parse()
        .expect("deployment id");
    let recorded = fake
        .deployments()
        .into_iter()
        .find(|d| d["id"] == id)
        .expect("the rollback's deployment");
    assert_eq!(recorded["environment"], "canary");
    assert_eq!(recorded["sha"], SHA, "the commit of the digest restored");
    assert_eq!(recorded["payload"]["digest"], stage.previous.as_str());
    assert_eq!(
        recorded["payload"]["rolled_back_from"],
        stage.canary.as_str()
    );
    assert!(
        recorded["payload"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 503")
    );
    assert!(
        recorded["payload"]["decided_at"]
            .as_str()
            .unwrap_or_default()
            .ends_with('Z')
    );
    assert_eq!(
        fake.statuses(id).last().expect("status")["state"],
        "success"
    );
}

/// Signs `digest` keyless against the mock Sigstore services, as cosign v3 stores it.
async fn sign_keyless(
    stage: &Stage,
    services: &gantry_testkit::peers::MockSigstore,
    digest: &Digest,
) {
    use gantry_sigstore::sign::{
        COSIGN_SIGN_PREDICATE, Identity, Services, attach, image_statement, sign_statement,
    };
    let image = stage.tag.with_digest(digest.clone());
    let identity = Identity::Keyless {
        token: gantry_secret::Secret::new(services.token.clone()),
        services: Services::from_signing_config(&services.signing_config).expect("config"),
    };
    let statement = image_statement(&image.name(), digest, &std::collections::BTreeMap::new());
    let bundle = sign_statement(&identity, &reqwest::Client::new(), &statement)
        .await
        .expect("sign");
    attach(&stage.client, &image, &bundle, COSIGN_SIGN_PREDICATE)
        .await
        .expect("attach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_never_brings_back_what_the_path_into_the_environment_would_refuse() {
    use gantry_testkit::peers::{MockSigstore, SIGNER_IDENTITY};
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    std::fs::copy(&services.trusted_root, stage.dir.path().join("root.json")).expect("root");
    let policy = stage.dir.path().join("gantry.yml");
    std::fs::write(
        &policy,
        format!("version: 1\npromotions:\n  - from: dev\n    to: staging\n  - from: staging\n    to: canary\n    require-signature:\n      identity: {SIGNER_IDENTITY}\n      trusted-root: root.json\n  - from: canary\n    to: production\n"),
    )
    .expect("policy");
    let policy = policy.to_str().expect("path").to_owned();
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--policy",
            &policy,
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{json}");
    let error = json["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "the previous digest {} does not carry the signature staging -> canary requires",
            stage.previous
        )),
        "{error}"
    );
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.canary));

    sign_keyless(&stage, &services, &stage.previous).await;
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--policy",
            &policy,
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.previous));
    let summary = json["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!("| previous signed by | {SIGNER_IDENTITY} |")),
        "{summary}"
    );
}

/// A canary whose `/health` reports the digest it serves: `bad` answers 503 until a redeploy
/// request arrives at `/redeploy`, after which (300 ms later) it serves `good`, healthy.
async fn redeployable(bad: Digest, good: Digest) -> (SocketAddr, Arc<Mutex<Vec<Bytes>>>) {
    let serving = Arc::new(Mutex::new((bad, 503u16)));
    let calls: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let (state, kept) = (serving.clone(), calls.clone());
    let app = Router::new()
        .route(
            "/health",
            axum::routing::get(move || {
                let serving = serving.clone();
                async move {
                    let (digest, status) = serving.lock().expect("lock").clone();
                    (
                        axum::http::StatusCode::from_u16(status).expect("status"),
                        format!("{{\"digest\":\"{digest}\"}}"),
                    )
                }
            }),
        )
        .route(
            "/redeploy",
            post(move |body: Bytes| {
                let (state, kept, good) = (state.clone(), kept.clone(), good.clone());
                async move {
                    kept.lock().expect("lock").push(body);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        *state.lock().expect("lock") = (good, 200);
                    });
                    axum::http::StatusCode::ACCEPTED
                }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_rollback_the_redeploy_is_triggered_and_recovery_awaited() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let (addr, calls) = redeployable(stage.canary.clone(), stage.previous.clone()).await;
    let health = format!("http://{addr}/health");
    let recovered_when = format!("digest=={}", stage.previous);
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--health-url",
            &health,
            "--on-rollback-url",
            &format!("http://{addr}/redeploy"),
            "--recovered-when",
            &recovered_when,
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
    assert_eq!(
        output(&json, "redeploy"),
        "the redeploy call answered HTTP 202"
    );
    let recover: u64 = output(&json, "recover-ms").parse().expect("recover-ms");
    let repoint: u64 = output(&json, "repoint-ms").parse().expect("repoint-ms");
    assert!(
        recover >= 300 && recover > repoint,
        "{recover} ms, {repoint} ms"
    );
    let event: Value = serde_json::from_slice(&calls.lock().expect("lock")[0]).expect("json");
    assert_eq!(event["type"], "dev.gantry.canary.redeploy");
    assert_eq!(event["data"]["previous_digest"], stage.previous.as_str());

    // A redeploy that never comes: the rollback stands, the wait ends, a warning says so.
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.canary.as_str(),
            "--digest",
            stage.previous.as_str(),
            "--recovered-when",
            "status==recovered",
            "--recover-timeout",
            "1s",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back");
    assert_eq!(output(&json, "recover-ms"), "");
    assert!(
        json["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("**not serving yet**: status==recovered did not hold within 1 s"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_the_rollback_stops_the_wait_for_recovery_and_the_rollback_stands() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    stage.status.store(503, Ordering::Relaxed);
    let child = stage
        .command(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--recovered-when",
            "status==never",
            "--recover-timeout",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Three failing ticks at 200 ms decide within a second; then it waits for recovery.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let pid = child.id().expect("pid");
    let sent = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().await.expect("wait");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    let json = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.previous));
    assert!(
        stderr(&out).contains("warning: SIGTERM received after the rollback"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redeploy_command_sees_the_digest_and_none_of_gantrys_secrets() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .command(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--on-rollback-run",
            "echo \"$GANTRY_DIGEST from $GANTRY_ROLLED_BACK_FROM\" > redeployed; env > seen; echo '::add-mask::x'",
            "--on-rollback-env",
            "DEPLOY_TARGET",
        ])
        .env("GITHUB_TOKEN", "ghs_must_not_leak")
        .env("GANTRY_REGISTRY_PASSWORD", "hunter2")
        .env("DEPLOY_TARGET", "eu-1")
        .output()
        .await
        .map(|out| {
            let json = stdout_json(&out);
            (out, json)
        })
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        output(&json, "redeploy"),
        format!(
            "`echo \"$GANTRY_DIGEST from $GANTRY_ROLLED_BACK_FROM\" > redeployed; env > seen; echo '::add-mask::x'` succeeded"
        )
    );
    let redeployed = std::fs::read_to_string(stage.dir.path().join("redeployed")).expect("ran");
    assert_eq!(
        redeployed.trim(),
        format!("{} from {}", stage.previous, stage.canary)
    );
    let seen = std::fs::read_to_string(stage.dir.path().join("seen")).expect("env");
    assert!(seen.contains("DEPLOY_TARGET=eu-1"), "{seen}");
    assert!(
        !seen.contains("ghs_must_not_leak") && !seen.contains("hunter2"),
        "{seen}"
    );
    assert!(
        !stderr(&out).lines().any(|l| l.starts_with("::add-mask::")),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_query_outside_its_bound_rolls_the_canary_back() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let metrics = "canary_error_ratio{pod=\"a\"} 0.02\ncanary_error_ratio{pod=\"b\"} 0.31\n";
    let Some(prometheus) =
        tokio::task::spawn_blocking(move || gantry_testkit::prometheus::Prometheus::start(metrics))
            .await
            .expect("join")
            .expect("prometheus")
    else {
        return;
    };
    let (out, json) = stage
        .run(&[
            "--previous-digest",
            stage.previous.as_str(),
            "--prometheus-url",
            &prometheus.url(),
            "--query",
            "canary_error_ratio",
            "--reduce",
            "max",
            "--max",
            "0.05",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
    assert!(
        output(&json, "reason").contains("prometheus: 0.31 (bound value ≤ 0.05)"),
        "{json}"
    );
    assert_eq!(stage.at("canary").await.as_ref(), Some(&stage.previous));
}

/// The rollback is one commit on top, its subject and trailer naming what it rolled back.
fn assert_rollback_commit(log: &[gantry_testkit::github::GitCommit], stage: &Stage) {
    assert_eq!(log.len(), 2);
    let short = |d: &Digest| d.as_str()[7..19].to_owned();
    assert_eq!(
        log[0].message.lines().next(),
        Some(
            format!(
                "rollback(canary): billing {} → {}",
                short(&stage.canary),
                short(&stage.previous)
            )
            .as_str()
        )
    );
    assert!(
        log[0]
            .message
            .contains(&format!("Gantry-Rolled-Back-From: {}", stage.canary)),
        "{}",
        log[0].message
    );
}

/// A policy whose canary environment is `file` in `acme/deploy` (no registry tag), with an
/// `argocd:` block when given.
fn gitops_policy(stage: &Stage, file: &str, argocd: Option<&str>) -> std::path::PathBuf {
    let policy = stage.dir.path().join("policy.yml");
    let argocd = argocd
        .map(|a| format!("      argocd: {a}\n"))
        .unwrap_or_default();
    std::fs::write(
        &policy,
        format!("version: 1\nenvironments:\n  - name: dev\n  - name: canary\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {file}\n          path: image.digest\n{argocd}"),
    )
    .expect("policy");
    policy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_canary_is_rolled_back_by_a_commit_that_argo_cd_then_runs() {
    use gantry_testkit::argocd::{ArgoFake, Ending, TOKEN as ARGO_TOKEN};
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let Some(fake) = gantry_testkit::GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let file = "apps/billing/canary/values.yaml";
    let values = |digest: &Digest| format!("image:\n  digest: {digest} # gantry\n");
    let init = fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(&stage.canary).as_bytes())],
        "promote",
    );
    let standin = (*fake).clone();
    let Some(argo) =
        ArgoFake::start(move || standin.head("acme/deploy", "main").unwrap_or_default())
            .expect("Argo CD stand-in")
    else {
        return;
    };
    argo.add_app("billing-canary", &init.sha, true, Ending::Healthy);
    let argocd = format!("{{server: {}, application: billing-canary}}", argo.url());
    let policy = gitops_policy(&stage, file, Some(&argocd));
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .run(&[
            "--env",
            "canary",
            "--policy",
            policy.to_str().expect("utf-8"),
            "--previous-digest",
            stage.previous.as_str(),
            "--github-token",
            gantry_testkit::github::TOKEN,
            "--github-api-url",
            &fake.url(),
            "--deployment",
            "false",
            "--argocd-token",
            ARGO_TOKEN,
            "--argocd-interval",
            "50ms",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stderr(&out),
        fake.prism_log()
    );
    assert_eq!(output(&json, "outcome"), "rolled-back", "{json}");
    assert_eq!(output(&json, "rolled-back"), "true");
    assert_eq!(
        output(&json, "digest"),
        stage.canary.as_str(),
        "the canary read from the file"
    );
    // One commit writes the previous digest back, saying what it rolled back.
    assert_eq!(
        fake.file("acme/deploy", "main", file),
        Some(values(&stage.previous).into_bytes())
    );
    let log = fake.log("acme/deploy", "main");
    assert_rollback_commit(&log, &stage);
    // Argo CD runs the rollback commit.
    let redeploy = output(&json, "redeploy");
    assert!(
        redeploy.contains(&format!(
            "billing-canary runs the rollback commit {}",
            log[0].sha
        )),
        "{redeploy}\n{}",
        argo.prism_log()
    );
    assert_eq!(
        argo.synced("billing-canary").as_deref(),
        Some(log[0].sha.as_str())
    );
    assert!(
        stage.at("canary").await.as_ref() == Some(&stage.canary),
        "no registry tag was touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_canary_someone_else_replaced_is_superseded_and_not_rolled_back() {
    let Some(stage) = stage(Backend::Gantry).await else {
        return;
    };
    let Some(fake) = gantry_testkit::GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let file = "apps/billing/canary/values.yaml";
    let values = |digest: &str| format!("image:\n  digest: {digest}\n");
    fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(stage.canary.as_str()).as_bytes())],
        "promote",
    );
    let policy = gitops_policy(&stage, file, None);
    let other = "sha256:9999999999999999999999999999999999999999999999999999999999999999";
    let (fake_url, standin) = (fake.url(), (*fake).clone());
    // Someone promotes another digest while the failing canary is watched.
    let writer = tokio::spawn(async move {
        // Once canary-watch has read the canary from the file, while it watches.
        while !standin
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /repos/acme/deploy/contents/"))
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        standin.commit_files(
            "acme/deploy",
            "main",
            &[(file, format!("image:\n  digest: {other}\n").as_bytes())],
            "promote(canary): someone else",
        );
    });
    stage.status.store(503, Ordering::Relaxed);
    let (out, json) = stage
        .run(&[
            "--env",
            "canary",
            "--policy",
            policy.to_str().expect("utf-8"),
            "--previous-digest",
            stage.previous.as_str(),
            "--github-token",
            gantry_testkit::github::TOKEN,
            "--github-api-url",
            &fake_url,
            "--deployment",
            "false",
        ])
        .await;
    writer.await.expect("writer");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(output(&json, "outcome"), "superseded", "{json}");
    assert_eq!(output(&json, "rolled-back"), "false");
    assert_eq!(
        fake.file("acme/deploy", "main", file),
        Some(values(other).into_bytes()),
        "left alone"
    );
    assert!(output(&json, "reason").contains("someone else"), "{json}");
}
