//! `gantry demo`: the whole flow on this machine, with nothing to install and no account.
//!
//! It starts the embedded registry on a free loopback port, builds a real image without Docker
//! (this very binary in a scratch image, reproducibly: built twice, same digest), pushes it to dev,
//! promotes the same digest to staging, canary and production with `promote-digest`, shows a
//! forbidden path refused and a re-run doing nothing, and checks every environment points at the
//! digest that was built. The image is signed at dev with `sign-image` (a key generated for the
//! run; there is no transparency log offline, so the policy waives it for that key) and every
//! promotion verifies the signature: an unsigned image and one signed by another key are refused.
//! At dev, `sbom-attach` catalogues the image straight from the registry (the binary's own
//! dependency list, embedded by cargo-auditable) and attaches the SBOM with a signed attestation;
//! the path to production requires that attestation, production lives in a repository of its own
//! so the promotion visibly carries the SBOM there, and `verify-image` checks production's
//! signature and SBOM attestation, as a deploy job would. Before staging, `dispatch-integration`
//! asks a local stand-in for GitHub to run the integration repository's tests on the digest (the
//! demo plays that workflow's runner: smoke tests against the registry, `dispatch-integration
//! report`) and only a passing verdict lets the digest on; an image whose tests fail, signed by
//! the same key, never reaches staging. Then the next build goes dev → staging → canary the same
//! way, its health endpoint fails once it takes traffic, and `canary-watch` rolls the canary back
//! to the digest before it (verified against the policy, three registry requests) on its own.
//! Last, the digest that was built is promoted into a GitOps repository (a local bare repository,
//! as Argo CD would watch): one commit whose message carries the promotion's trailers.

mod canary;
mod integration;

use gantry_actions::output;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Args, Parser as _};
use gantry_actions::context::GitHubContext;
use gantry_actions::tool::{Context, Mode};
use gantry_actions::{ExitStatus, Outcome, Tool as _};
use gantry_oci::{Client, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_sigstore::sign::SigningKey;
use promote_digest::PromoteDigest;
use sbom_attach::SbomAttach;
use sign_image::SignImage;
use verify_image::VerifyImage;

const CHAIN: [&str; 4] = ["dev", "staging", "canary", "production"];

/// Run the whole flow locally: build an image, push it to dev, promote its digest to production.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the registry serving after the demo (until interrupted), to look around with skopeo,
    /// crane or `gantry promote-digest`.
    #[arg(long)]
    pub serve: bool,
}

/// The `demo` subcommand.
pub fn command() -> clap::Command {
    DemoArgs::augment_args(clap::Command::new("demo").about(
        "Run the whole flow locally on the embedded registry: build, push to dev, promote the same digest to production",
    ))
}

/// Runs the demo: exit 0 when every step went as it should.
pub fn run(args: DemoArgs) -> ExitStatus {
    match gantry_actions::app::block_on(demo(args)) {
        Ok(Ok(true)) => ExitStatus::Success,
        Ok(Ok(false)) => ExitStatus::Failure,
        Ok(Err(error)) | Err(error) => {
            output::err(&format!("error: demo: {error:#}"));
            ExitStatus::Error
        }
    }
}

/// Prints one line of the demo's story.
fn say(line: &str) {
    output::out(line);
}

async fn demo(args: DemoArgs) -> anyhow::Result<bool> {
    let registry = gantry_registry::start(gantry_registry::Config::default())
        .await
        .context("starting the embedded registry")?;
    let host = registry.host();
    say(&format!(
        "gantry demo {}: the embedded registry serves on http://{host}\n",
        env!("CARGO_PKG_VERSION")
    ));
    let image = build_image()?;
    let dir = tempfile::tempdir()?;
    let policy = dir.path().join("gantry.yml");
    std::fs::write(
        &policy,
        SIGNED_POLICY.replace("{production}", &format!("{host}/demo/production")),
    )?;
    let key = dir.path().join("demo.key");
    let other_key = dir.path().join("stranger.key");
    for path in [&key, &other_key] {
        std::fs::write(path, SigningKey::generate_pem()?.expose())?;
    }
    std::fs::write(
        dir.path().join("demo.pub"),
        SigningKey::from_file(&key, None)?.public_pem()?,
    )?;
    let mut demo = Demo {
        client: Client::plain_http(&host)?,
        repository: format!("{host}/demo/app"),
        host,
        digest: image.digest().to_string(),
        policy: policy.display().to_string(),
        key: key.clone(),
        ok: true,
    };
    let dev: Reference = format!("{}:dev", demo.repository).parse()?;
    image
        .push(&demo.client, &dev)
        .await
        .context("pushing to dev")?;
    say(&format!(
        "build    → dev         {}  ({} KiB layer, {} requests)",
        demo.digest,
        image.layer.len() / 1024,
        demo.client.counts().requests
    ));
    let mut total = demo.client.counts().requests;
    demo.sign(
        &dev.with_digest(image.digest().clone()),
        &key,
        "the demo key",
    )
    .await?;
    demo.sbom(&dev.with_digest(image.digest().clone()), &key)
        .await?;
    let mut github = integration::LocalGitHub::start().await?;
    let (repository, digest) = (demo.repository.clone(), demo.digest.clone());
    if demo
        .integrate(&mut github, &repository, &digest, "dispatch")
        .await?
    {
        total += demo.chain().await?;
    } else {
        demo.ok = false;
    }
    demo.carried().await?;
    demo.refusal_and_rerun().await?;
    demo.signature_refusals(&other_key).await?;
    demo.broken(&mut github, &key).await?;
    demo.table().await?;
    demo.verify_production(&dir.path().join("demo.pub")).await?;
    demo.canary(&mut github).await?;
    demo.gitops(dir.path()).await?;
    say(&format!(
        "{}: one build, one digest {}, dev → staging → canary → production without a rebuild; {total} registry requests in all.",
        if demo.ok {
            "demo passed"
        } else {
            "demo FAILED"
        },
        demo.digest
    ));
    if args.serve {
        say(&format!(
            "\nserving http://{} until interrupted; try: skopeo inspect --tls-verify=false docker://{}/demo/production:production",
            demo.host, demo.host
        ));
        tokio::signal::ctrl_c().await?;
    }
    registry.stop().await;
    Ok(demo.ok)
}

/// The demo's state: where it pushes, what it promotes, whether everything went as it should.
struct Demo {
    client: Client,
    host: String,
    repository: String,
    digest: String,
    policy: String,
    /// The demo's signing key (the integration's test-result attestation is signed with it too).
    key: std::path::PathBuf,
    ok: bool,
}

impl Demo {
    /// A message with the demo's temporary policy path (gone when the demo ends) named for what
    /// it is.
    fn readable(&self, message: &str) -> String {
        message.replace(&self.policy, "the demo's policy")
    }

    fn context() -> Context {
        Context {
            mode: Mode::Cli,
            github: GitHubContext::default(),
        }
    }

    /// `sign-image` in-process with the key file `key` (named `by` in the story), exactly as the
    /// CLI runs it.
    async fn sign(
        &mut self,
        image: &Reference,
        key: &std::path::Path,
        by: &str,
    ) -> anyhow::Result<Outcome> {
        let args = sign_image::Args::try_parse_from([
            "sign-image",
            "--image",
            &image.to_string(),
            "--key",
            &key.display().to_string(),
            "--tlog-upload",
            "false",
            "--insecure-registry",
            &self.host,
        ])?;
        let outcome = SignImage::run(args, &Self::context()).await?;
        self.ok &= outcome.status() == ExitStatus::Success;
        say(&format!(
            "sign     → {:<11} {}  (by {by}: signature {}, a cosign v3 bundle referrer; offline, so not logged)",
            image.tag().unwrap_or("dev"),
            image.digest().map(ToString::to_string).unwrap_or_default(),
            outputs(&outcome)
                .get("signature")
                .map_or("?", String::as_str),
        ));
        Ok(outcome)
    }

    /// `sbom-attach` in-process with the demo key, exactly as the CLI runs it.
    async fn sbom(&mut self, image: &Reference, key: &std::path::Path) -> anyhow::Result<()> {
        let args = sbom_attach::Args::try_parse_from([
            "sbom-attach",
            "--image",
            &image.to_string(),
            "--key",
            &key.display().to_string(),
            "--tlog-upload",
            "false",
            "--insecure-registry",
            &self.host,
        ])?;
        let outcome = SbomAttach::run(args, &Self::context()).await?;
        let outputs = outputs(&outcome);
        let attached = outcome.status() == ExitStatus::Success
            && outputs
                .get("attestation-digest")
                .is_some_and(|a| !a.is_empty());
        self.ok &= attached;
        let get = |key: &str| outputs.get(key).map_or("?", String::as_str).to_owned();
        say(&format!(
            "sbom     → dev         {}  ({} packages {}, read from the registry's layers; CycloneDX 1.6 referrer {}, signed attestation {})",
            image.digest().map(ToString::to_string).unwrap_or_default(),
            get("packages"),
            get("counts"),
            get("referrer-digest"),
            get("attestation-digest"),
        ));
        Ok(())
    }

    /// The SBOM and its attestation arrived with the digest in production's own repository.
    async fn carried(&mut self) -> anyhow::Result<()> {
        let at: Reference = format!("{}/demo/production@{}", self.host, self.digest).parse()?;
        let referrers = self.client.referrers(&at, None).await?;
        let count = |kind: &str| {
            referrers
                .descriptors
                .iter()
                .filter(|d| d.artifact_type.as_deref() == Some(kind))
                .count()
        };
        let sboms = count(sbom_attach::CYCLONEDX_MEDIA_TYPE);
        let bundles = count(gantry_sigstore::sign::BUNDLE_V03);
        self.ok &= sboms == 1 && bundles == 3;
        say(&format!(
            "carried  → production  {}/demo/production has the digest's SBOM ({sboms}) and its signature, SBOM attestation and test-result attestation ({bundles} bundles), copied with it",
            self.host
        ));
        Ok(())
    }

    /// `promote-digest` in-process, exactly as the CLI runs it.
    async fn promote(&self, from: &str, to: &str) -> anyhow::Result<Outcome> {
        self.promote_image(&self.repository, &self.digest, from, to)
            .await
    }

    async fn promote_image(
        &self,
        repository: &str,
        digest: &str,
        from: &str,
        to: &str,
    ) -> anyhow::Result<Outcome> {
        let args = promote_digest::Args::try_parse_from([
            "promote-digest",
            "--image",
            repository,
            "--digest",
            digest,
            "--source-env",
            from,
            "--target-env",
            to,
            "--policy",
            &self.policy,
            "--insecure-registry",
            &self.host,
        ])?;
        PromoteDigest::run(args, &Self::context()).await
    }

    /// An unsigned image and one signed by another key, each in dev of its own repository, are
    /// refused on their way to staging.
    async fn signature_refusals(&mut self, other_key: &std::path::Path) -> anyhow::Result<()> {
        for (name, signed) in [("unsigned", false), ("stranger", true)] {
            let image = ScratchImage::build(
                &[ImageFile {
                    path: "/app".into(),
                    mode: 0o755,
                    bytes: Bytes::from(format!("#!/bin/sh\necho {name}\n")),
                }],
                &ImageConfig::default(),
            )?;
            let repository = format!("{}/demo/{name}", self.host);
            let dev: Reference = format!("{repository}:dev").parse()?;
            image.push(&self.client, &dev).await?;
            let digest = image.digest().to_string();
            if signed {
                self.sign(
                    &dev.with_digest(image.digest().clone()),
                    other_key,
                    "a stranger's key",
                )
                .await?;
            }
            let refused = self
                .promote_image(&repository, &digest, "dev", "staging")
                .await?;
            self.ok &= refused.status() == ExitStatus::Failure;
            say(&format!(
                "{:<8} → staging     refused ({}@{}): {}",
                name,
                repository,
                &digest[..digest.len().min(19)],
                self.readable(refused.failure_message().unwrap_or("(it was NOT refused)"))
            ));
        }
        Ok(())
    }

    /// `dispatch-integration` against the local GitHub: the integration run for `digest`, its
    /// verdict back; `true` when it passed.
    async fn integrate(
        &mut self,
        github: &mut integration::LocalGitHub,
        repository: &str,
        digest: &str,
        label: &str,
    ) -> anyhow::Result<bool> {
        let found = github
            .integrate(&self.client, repository, digest, &self.host, &self.key)
            .await?;
        let passed = found.outcome.status() == ExitStatus::Success;
        let (commit_status, deployment_status) = found.reported;
        say(&format!(
            "{label:<8} → integration {digest}  (run {} of {} by dispatch-integration: smoke tests {} passed; verdict {}; on {}: commit status {commit_status}, deployment to integration {deployment_status}){}",
            found.run_id,
            integration::INTEGRATION,
            found.tests,
            if passed { "passed" } else { "FAILED" },
            integration::SERVICE,
            found
                .outcome
                .failure_message()
                .map(|f| format!(": {f}"))
                .unwrap_or_default()
        ));
        Ok(passed)
    }

    /// An image whose integration tests fail (it does not run `/gantry`), signed by the demo key:
    /// promote-digest refuses it, because its test-result attestation says FAILED.
    async fn broken(
        &mut self,
        github: &mut integration::LocalGitHub,
        key: &std::path::Path,
    ) -> anyhow::Result<()> {
        let image = ScratchImage::build(
            &[ImageFile {
                path: "/app".into(),
                mode: 0o755,
                bytes: Bytes::from_static(b"#!/bin/sh\nexit 1\n"),
            }],
            &ImageConfig {
                entrypoint: vec!["/app".into()],
                ..ImageConfig::default()
            },
        )?;
        let repository = format!("{}/demo/broken", self.host);
        let dev: Reference = format!("{repository}:dev").parse()?;
        image.push(&self.client, &dev).await?;
        self.sign(
            &dev.with_digest(image.digest().clone()),
            key,
            "the demo key",
        )
        .await?;
        let digest = image.digest().to_string();
        let passed = self
            .integrate(github, &repository, &digest, "broken")
            .await?;
        let refused = self
            .promote_image(&repository, &digest, "dev", "staging")
            .await?;
        let staging: Reference = format!("{repository}:staging").parse()?;
        let reached = self.client.resolve(&staging).await.is_ok();
        self.ok &= !passed && !reached && refused.status() == ExitStatus::Failure;
        say(&format!(
            "broken   → staging     refused: {}{}",
            self.readable(refused.failure_message().unwrap_or("(it was NOT refused)")),
            if reached { " (but staging HAS it)" } else { "" }
        ));
        Ok(())
    }

    /// dev → staging → canary → production; returns the requests used.
    async fn chain(&mut self) -> anyhow::Result<u64> {
        let mut total = 0;
        for pair in CHAIN.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            let outcome = self.promote(from, to).await?;
            let outputs = outputs(&outcome);
            let requests: u64 = outputs
                .get("requests")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            total += requests;
            let moved = outputs.get("promoted").is_some_and(|p| p == "true");
            let summary = outcome.summary.as_deref().unwrap_or_default();
            let verified = summary.contains("✅ signed by")
                && (to != "production"
                    || summary.contains("✅ attestation https://cyclonedx.org/bom"));
            self.ok &= outcome.status() == ExitStatus::Success && moved && verified;
            say(&format!(
                "{from:<8} → {to:<11} {}  ({}, {requests} requests){}",
                outputs.get("digest").map_or("?", String::as_str),
                match (moved, verified) {
                    (true, true) if to == "production" => {
                        "signature by the demo key verified, SBOM attestation too, promoted"
                    }
                    (true, true) => "signature by the demo key verified, promoted",
                    (true, false) => "promoted WITHOUT a verified signature",
                    _ => "NOT promoted",
                },
                outcome
                    .failure_message()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            ));
        }
        Ok(total)
    }

    /// A path the policy forbids is refused; promoting again changes nothing.
    async fn refusal_and_rerun(&mut self) -> anyhow::Result<()> {
        let forbidden = self.promote("dev", "production").await?;
        self.ok &= forbidden.status() == ExitStatus::Failure;
        say(&format!(
            "dev      → production  refused, as the policy says: {}",
            self.readable(
                forbidden
                    .failure_message()
                    .unwrap_or("(it was NOT refused)")
            )
        ));
        let again = self.promote("canary", "production").await?;
        let no_op = outputs(&again)
            .get("promoted")
            .is_some_and(|p| p == "false");
        self.ok &= no_op;
        say(&format!(
            "canary   → production  re-run: {}",
            if no_op {
                "already there, nothing to do"
            } else {
                "moved again (unexpected)"
            }
        ));
        Ok(())
    }

    /// `verify-image` in-process on production, as a deploy job would check what it runs.
    async fn verify_production(&mut self, public_key: &std::path::Path) -> anyhow::Result<()> {
        let args = verify_image::Args::try_parse_from([
            "verify-image",
            "--image",
            &format!("{}/demo/production:production", self.host),
            "--key",
            &public_key.display().to_string(),
            "--insecure-ignore-tlog",
            "--require-attestation",
            "cyclonedx",
            "--insecure-registry",
            &self.host,
        ])?;
        let outcome = VerifyImage::run(args, &Self::context()).await?;
        let verified = outcome.status() == ExitStatus::Success
            && outputs(&outcome).get("digest") == Some(&self.digest);
        self.ok &= verified;
        say(&format!(
            "verify   production  {}  ({})\n",
            self.digest,
            if verified {
                "verify-image: signed by the demo key, SBOM attestation too, as a deploy job checks it"
                    .to_owned()
            } else {
                format!(
                    "verify-image did NOT verify it: {}",
                    outcome.failure_message().unwrap_or("?")
                )
            }
        ));
        Ok(())
    }

    /// The next build reaches canary, breaks there, and is rolled back to the first.
    async fn canary(&mut self, github: &mut integration::LocalGitHub) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("finding the gantry binary")?;
        let next = gantry_image(Bytes::from(std::fs::read(&exe)?), Some("the next build"))?;
        let dev: Reference = format!("{}:dev", self.repository).parse()?;
        next.push(&self.client, &dev).await?;
        let digest = next.digest().to_string();
        say(&format!(
            "build    → dev         {digest}  (the next build: the same binary, another revision label)"
        ));
        let key = self.key.clone();
        self.sign(
            &dev.with_digest(next.digest().clone()),
            &key,
            "the demo key",
        )
        .await?;
        let repository = self.repository.clone();
        let passed = self.integrate(github, &repository, &digest, "next").await?;
        let mut previous = String::new();
        for (from, to) in [("dev", "staging"), ("staging", "canary")] {
            let outcome = self.promote_image(&repository, &digest, from, to).await?;
            let moved = outcome.status() == ExitStatus::Success;
            self.ok &= passed && moved;
            if to == "canary" {
                previous = outputs(&outcome)
                    .get("previous-digest")
                    .cloned()
                    .unwrap_or_default();
            }
            say(&format!(
                "{from:<8} → {to:<11} {digest}  ({}){}",
                if moved {
                    "the next build, promoted the same way"
                } else {
                    "NOT promoted"
                },
                outcome
                    .failure_message()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            ));
        }
        let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let health = canary::health_service(broken.clone()).await?;
        canary::break_after(broken, std::time::Duration::from_millis(700));
        let outcome = canary::watch(
            &canary::Watch {
                repository: &repository,
                digest: &digest,
                previous: &previous,
                policy: &self.policy,
                host: &self.host,
                health,
            },
            &Self::context(),
        )
        .await?;
        let got = outputs(&outcome);
        let at_canary = self
            .client
            .resolve(&format!("{repository}:canary").parse()?)
            .await?;
        let back = at_canary.digest.as_str() == self.digest && previous == self.digest;
        self.ok &= canary::rolled_back(&outcome) && back;
        let get = |key: &str| got.get(key).map_or("?", String::as_str).to_owned();
        say(&format!(
            "rollback ← canary      {}  (canary-watch: {}; {} in {} ms, {} registry requests, read back; signature of the digest restored verified first){}\n",
            self.digest,
            get("reason"),
            if back {
                "rolled back to the digest before it"
            } else {
                "NOT rolled back"
            },
            get("repoint-ms"),
            get("rollback-requests"),
            if canary::rolled_back(&outcome) {
                String::new()
            } else {
                format!(": {}", outcome.failure_message().unwrap_or("?"))
            }
        ));
        Ok(())
    }

    /// The digest that was built, promoted from canary into a GitOps repository (a local bare
    /// repository, as Argo CD would watch): one commit, its trailers printed.
    async fn gitops(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        let pinned = format!("sha256:{}", "0".repeat(64));
        let url = canary::gitops_repository(dir, &pinned)?;
        let policy = dir.join("gitops.yml");
        std::fs::write(
            &policy,
            format!(
                "version: 1\nenvironments:\n  - name: canary\n  - name: production\n    gitops:\n      repository: {url}\n      targets:\n        - file: apps/billing/production/values.yaml\n          path: image.digest\n"
            ),
        )?;
        let args = promote_digest::Args::try_parse_from([
            "promote-digest",
            "--image",
            &self.repository,
            "--digest",
            &self.digest,
            "--source-env",
            "canary",
            "--target-env",
            "production",
            "--policy",
            &policy.display().to_string(),
            "--insecure-registry",
            &self.host,
            "--actor",
            "demo",
        ])?;
        let outcome = PromoteDigest::run(args, &Self::context()).await?;
        let got = outputs(&outcome);
        let commit = got.get("gitops-commit").cloned().unwrap_or_default();
        let message = std::process::Command::new("git")
            .args([
                "--git-dir",
                &dir.join("deploy.git").display().to_string(),
                "log",
                "-1",
                "--format=%B",
                "main",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let landed = outcome.status() == ExitStatus::Success
            && !commit.is_empty()
            && message.contains(&format!("Gantry-Digest: {}", self.digest));
        self.ok &= landed;
        let mut indented = String::new();
        for line in message.trim_end().lines() {
            let pad = if line.is_empty() { "" } else { "           " };
            let _ = writeln!(indented, "{pad}{line}");
        }
        say(&format!(
            "gitops   → production  {}  ({})\n{indented}",
            self.digest,
            if landed {
                format!(
                    "promote-digest wrote it into apps/billing/production/values.yaml of a local GitOps repository, one commit {commit}, only the digest's bytes changed:"
                )
            } else {
                format!("NOT written: {}", outcome.failure_message().unwrap_or("?"))
            }
        ));
        Ok(())
    }

    /// Where each environment points, read back from the registry.
    async fn table(&mut self) -> anyhow::Result<()> {
        let mut table = String::from("\nwhere each environment points now:\n");
        for env in CHAIN {
            let repository = if env == "production" {
                format!("{}/demo/production", self.host)
            } else {
                self.repository.clone()
            };
            let reference: Reference = format!("{repository}:{env}").parse()?;
            let at = self.client.resolve(&reference).await?;
            let same = at.digest.as_str() == self.digest;
            self.ok &= same;
            let _ = writeln!(
                table,
                "  {env:<11} {}  {}",
                at.digest,
                if same {
                    "✓ the digest that was built"
                } else {
                    "✗ NOT the digest that was built"
                }
            );
        }
        say(&table);
        Ok(())
    }
}

fn outputs(outcome: &Outcome) -> BTreeMap<String, String> {
    outcome
        .outputs()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The chain dev → staging → canary → production, written out so that a policy in the current directory cannot change the demo,
/// with a signature by the demo's key required on every path (its `demo.pub` sits beside it), the
/// SBOM attestation on the way to production, and production in a repository of its own.
const SIGNED_POLICY: &str = "version: 1
environments:
  - name: dev
  - name: staging
  - name: canary
  - name: production
    repository: {production}
promotions:
  - from: dev
    to: staging
    require-signature:
      key: demo.pub
      insecure-ignore-tlog: true
    require-attestation: [test-result]
  - from: staging
    to: canary
    require-signature:
      key: demo.pub
      insecure-ignore-tlog: true
  - from: canary
    to: production
    require-signature:
      key: demo.pub
      insecure-ignore-tlog: true
    require-attestation: [cyclonedx]
";

/// This binary in a scratch image: the image gantry ships, built the way `cargo xtask pack` builds
/// it. Built twice to show that the same input gives the same digest.
fn build_image() -> anyhow::Result<ScratchImage> {
    let exe = std::env::current_exe().context("finding the gantry binary")?;
    let bytes =
        Bytes::from(std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?);
    let first = scratch_image(bytes.clone())?;
    let second = scratch_image(bytes)?;
    anyhow::ensure!(
        first.digest() == second.digest(),
        "the image is not reproducible: {} then {}",
        first.digest(),
        second.digest()
    );
    say(&format!(
        "built    {}  (this gantry binary on scratch; built twice, same digest)",
        first.digest()
    ));
    Ok(first)
}

/// The gantry image: the binary at `/gantry`, its entrypoint.
pub fn scratch_image(binary: Bytes) -> anyhow::Result<ScratchImage> {
    gantry_image(binary, None)
}

/// The most the action image may weigh as pushed (manifest, config and the gzip layer): every
/// action step pulls it first.
pub const ACTION_IMAGE_LIMIT: usize = 15_000_000;

/// What `image` weighs as pushed: its manifest, config and layer, in bytes.
pub fn pushed_size(image: &ScratchImage) -> usize {
    image.manifest.bytes.len() + image.config.len() + image.layer.len()
}

/// The gantry image, with a revision label when it is another build of the same binary.
fn gantry_image(binary: Bytes, revision: Option<&str>) -> anyhow::Result<ScratchImage> {
    let mut labels = BTreeMap::new();
    if let Some(revision) = revision {
        labels.insert(
            "org.opencontainers.image.revision".to_owned(),
            revision.to_owned(),
        );
    }
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        "gantry".to_owned(),
    );
    labels.insert(
        "org.opencontainers.image.version".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    labels.insert(
        "org.opencontainers.image.source".to_owned(),
        env!("CARGO_PKG_REPOSITORY").to_owned(),
    );
    Ok(ScratchImage::build(
        &[ImageFile {
            path: "/gantry".to_owned(),
            mode: 0o755,
            bytes: binary,
        }],
        &ImageConfig {
            entrypoint: vec!["/gantry".to_owned()],
            env: vec!["PATH=/".to_owned()],
            labels,
            architecture: match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            }
            .to_owned(),
        },
    )?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_image_of_the_same_binary_has_the_same_digest() {
        let a = super::scratch_image(bytes::Bytes::from_static(b"\x7fELF binary")).expect("image");
        let b = super::scratch_image(bytes::Bytes::from_static(b"\x7fELF binary")).expect("image");
        assert_eq!(a.digest(), b.digest());
    }
}
