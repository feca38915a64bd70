//! The demo's canary: the next build goes dev → staging → canary the same way, its health
//! endpoint starts failing once it takes traffic, and `canary-watch` rolls the canary back to the
//! digest before it on its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser as _;
use gantry_actions::{ExitStatus, Outcome, Tool as _};

/// A stand-in for the canary's pods: `/api/health` answers `{"status":"ok"}` until `broken`.
pub async fn health_service(broken: Arc<AtomicBool>) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route(
            "/api/health",
            get(|State(broken): State<Arc<AtomicBool>>| async move {
                if broken.load(Ordering::Relaxed) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "{\"status\":\"degraded\",\"error\":\"connection pool exhausted\"}",
                    )
                } else {
                    (StatusCode::OK, "{\"status\":\"ok\"}")
                }
            }),
        )
        .with_state(broken);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// What the watch was given.
pub struct Watch<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    pub previous: &'a str,
    pub policy: &'a str,
    pub host: &'a str,
    pub health: SocketAddr,
}

/// `canary-watch` in-process, exactly as the CLI runs it: every 200 ms, three failures roll back.
pub async fn watch(
    watch: &Watch<'_>,
    context: &gantry_actions::tool::Context,
) -> anyhow::Result<Outcome> {
    let args = canary_watch::Args::try_parse_from([
        "canary-watch",
        "--image",
        watch.repository,
        "--env",
        "canary",
        "--digest",
        watch.digest,
        "--previous-digest",
        watch.previous,
        "--policy",
        watch.policy,
        "--health-url",
        &format!("http://{}/api/health", watch.health),
        "--body-json",
        "status==ok",
        "--interval",
        "200ms",
        "--probe-timeout",
        "150ms",
        "--duration",
        "6s",
        "--insecure-registry",
        watch.host,
    ])?;
    canary_watch::CanaryWatch::run(args, context).await
}

/// Whether the watch rolled back as the story says.
pub fn rolled_back(outcome: &Outcome) -> bool {
    outcome.status() == ExitStatus::Failure
        && outcome
            .outputs()
            .iter()
            .any(|(name, value)| name == "outcome" && value == "rolled-back")
}

/// Breaks the canary after `after`.
pub fn break_after(broken: Arc<AtomicBool>, after: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        broken.store(true, Ordering::Relaxed);
    });
}

/// A local GitOps repository (a bare repository reached by a `file://` URL) whose `main` holds a
/// Helm values file pinned to `pinned`; returns its URL.
pub fn gitops_repository(dir: &std::path::Path, pinned: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let git = |cwd: &std::path::Path, args: &[&str]| -> anyhow::Result<()> {
        let output = std::process::Command::new("git")
            .current_dir(cwd)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("HOME", cwd)
            .output()
            .with_context(|| {
                format!("running git {} (the GitOps step needs git)", args.join(" "))
            })?;
        anyhow::ensure!(
            output.status.success(),
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    let bare = dir.join("deploy.git");
    let work = dir.join("deploy");
    std::fs::create_dir_all(work.join("apps/billing/production"))?;
    git(
        dir,
        &[
            "init",
            "-q",
            "--bare",
            "--initial-branch=main",
            "deploy.git",
        ],
    )?;
    git(&work, &["init", "-q", "--initial-branch=main"])?;
    std::fs::write(
        work.join("apps/billing/production/values.yaml"),
        format!(
            "# billing in production: Argo CD deploys this file\nimage:\n  repository: ghcr.io/acme/billing\n  digest: \"{pinned}\"  # written by gantry\nreplicas: 3\n"
        ),
    )?;
    git(&work, &["add", "."])?;
    git(
        &work,
        &[
            "-c",
            "user.name=platform",
            "-c",
            "user.email=platform@example.com",
            "commit",
            "-q",
            "-m",
            "billing in production",
        ],
    )?;
    let url = format!("file://{}", bare.display());
    git(&work, &["push", "-q", &url, "main"])?;
    Ok(url)
}
