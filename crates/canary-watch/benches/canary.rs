//! How fast a rollback lands and what watching costs. On gantry's embedded registry and on
//! distribution: the rollback (from the decision to the tag re-pointed and read back) many times,
//! against `skopeo copy` re-pointing the same tag in the same run (what a pipeline without gantry
//! runs); and the `canary-watch` process's footprint while it watches a healthy canary at a 10 s
//! interval (peak RSS, CPU time over wall time). Writes `<target>/criterion/canary-report.json`
//! for `cargo xtask bench canary`. `GANTRY_BENCH_WATCH_SECS` shortens the footprint run.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use canary_watch::rollback::{RolledBack, prepare, roll_back};
use gantry_oci::{Client, Digest, ImageConfig, ImageFile, Reference, ScratchImage};
use gantry_testkit::{Auth, Backend, Registry};
use serde_json::{Value, json};

const ROLLBACKS: usize = 300;
const SKOPEO_RUNS: usize = 20;

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

#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "percentiles of a few hundred samples"
)]
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    json!({
        "runs": samples.len(),
        "p50_ms": percentile(&samples, 0.50),
        "p99_ms": percentile(&samples, 0.99),
        "max_ms": samples.last().copied().unwrap_or(f64::NAN),
    })
}

/// The rollback, `ROLLBACKS` times, and skopeo re-pointing the same tag, on one registry.
async fn rollbacks(backend: Backend, skopeo: &std::path::Path) -> Value {
    let registry = Registry::start_on(backend, Auth::Anonymous).expect("distribution is installed");
    let client = Client::plain_http(&registry.host()).expect("client");
    let tag: Reference = format!("{}/acme/billing:canary", registry.host())
        .parse()
        .expect("reference");
    let previous = image(&client, &tag, "v1").await;
    let canary = image(&client, &tag, "v2").await;
    let canary_manifest = client
        .manifest(&tag.with_digest(canary.clone()))
        .await
        .expect("manifest");
    let kept = prepare(&client, &tag, &previous).await.expect("prepare");
    assert_eq!(kept.canary, canary);
    let mut gantry = Vec::new();
    let mut requests = 0;
    for _ in 0..ROLLBACKS {
        client
            .put_manifest(&tag, &canary_manifest)
            .await
            .expect("reset");
        let started = Instant::now();
        let rolled = roll_back(&client, &kept).await.expect("roll back");
        gantry.push(started.elapsed().as_secs_f64() * 1000.0);
        let RolledBack::Repointed { requests: n, .. } = rolled else {
            panic!("superseded: {rolled:?}")
        };
        requests = n;
    }
    let mut peer = Vec::new();
    let source = format!("docker://{}/acme/billing@{previous}", registry.host());
    let target = format!("docker://{}/acme/billing:canary", registry.host());
    for _ in 0..SKOPEO_RUNS {
        client
            .put_manifest(&tag, &canary_manifest)
            .await
            .expect("reset");
        let started = Instant::now();
        let output = Command::new(skopeo)
            .args([
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &source,
                &target,
            ])
            .output()
            .expect("skopeo");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // skopeo does not read the tag back; the pipeline would, to know it held.
        let now = client.resolve(&tag).await.expect("resolve").digest;
        assert_eq!(now, previous);
        peer.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    json!({
        "registry": format!("{backend:?}"),
        "gantry": summary(gantry),
        "gantry_requests": requests,
        "skopeo": summary(peer),
    })
}

/// Peak RSS (KiB) and CPU time (clock ticks) of a running process, from /proc.
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    let cpu = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((rss, cpu))
}

/// `canary-watch` watching a healthy canary every 10 s: peak RSS and CPU over wall time.
async fn footprint(seconds: u64) -> Value {
    let registry = Registry::start_on(Backend::Gantry, Auth::Anonymous).expect("registry");
    let client = Client::plain_http(&registry.host()).expect("client");
    let tag: Reference = format!("{}/acme/billing:canary", registry.host())
        .parse()
        .expect("reference");
    let previous = image(&client, &tag, "v1").await;
    image(&client, &tag, "v2").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let health = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { "{\"status\":\"ok\"}" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_canary-watch"))
        .args([
            "--image",
            &format!("{}/acme/billing", registry.host()),
            "--previous-digest",
            previous.as_str(),
            "--health-url",
            &format!("http://{health}/health"),
            "--body-json",
            "status==ok",
            "--interval",
            "10s",
            "--duration",
            &format!("{seconds}s"),
            "--insecure-registry",
            &registry.host(),
            "--json",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("canary-watch");
    let pid = child.id();
    let mut last = (0, 0);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert_eq!(status.code(), Some(0), "the canary is healthy");
            break;
        }
        if let Some(now) = sample(pid) {
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    // Linux's USER_HZ is 100 on every architecture the runner has.
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let cpu_seconds = last.1 as f64 / 100.0;
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let rss_mib = last.0 as f64 / 1024.0;
    json!({
        "watch_seconds": seconds,
        "wall_seconds": wall,
        "peak_rss_mib": rss_mib,
        "cpu_seconds": cpu_seconds,
        "cpu_percent": cpu_seconds / wall * 100.0,
    })
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let skopeo = gantry_testkit::peers::Peers::find()
        .expect("skopeo is installed")
        .skopeo;
    let watch_seconds = std::env::var("GANTRY_BENCH_WATCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let report = runtime.block_on(async {
        let mut registries = Vec::new();
        for backend in [Backend::Gantry, Backend::Distribution] {
            println!("canary: {ROLLBACKS} rollbacks and {SKOPEO_RUNS} skopeo copies on {backend:?} …");
            registries.push(rollbacks(backend, &skopeo).await);
        }
        println!("canary: watching a healthy canary every 10 s for {watch_seconds} s …");
        json!({
            "registries": registries,
            "footprint": footprint(watch_seconds).await,
            "cores": std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            "skopeo": String::from_utf8_lossy(&gantry_testkit::peers::run(&skopeo, &["--version"])).trim(),
        })
    });
    println!("{report:#}");
    let dir = gantry_testkit::criterion_dir();
    std::fs::create_dir_all(&dir).expect("criterion dir");
    std::fs::write(dir.join("canary-report.json"), report.to_string()).expect("report");
}
