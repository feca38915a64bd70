//! `cargo xtask bench promote`: promote-digest against `skopeo copy`, in one run, on one real
//! registry (CNCF distribution), with a multi-layer image of about 200 MB.
//!
//! Two operations, each timed by criterion (medians over several runs, process wall time for
//! both tools):
//! - re-tag: the same repository's `staging` tag moved to the digest `dev` holds;
//! - cross-repository promotion: the digest to a fresh repository on the same registry.
//!
//! skopeo starts every run with an empty blob-info cache (cold): it has no memory of where blobs
//! live, as on a fresh CI runner. Every target is reset (re-tag) or new (cross-repository) before a
//! run, outside the timing. A separate pass through a counting proxy records requests and uploaded
//! bytes for each tool and operation; everything goes to `<target>/criterion/promote-report.json`
//! for `cargo xtask bench promote` to write into BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gantry_oci::manifest::OCI_LAYER_TAR;
use gantry_oci::{Client, CopyOptions, Digest, Reference};
use gantry_testkit::{Auth, FaultyProxy, Registry, require};

const LAYERS: usize = 4;
const LAYER_BYTES: usize = 50 * 1024 * 1024;

struct Bench {
    registry: Registry,
    skopeo: PathBuf,
    dir: tempfile::TempDir,
    digest: Digest,
    runtime: tokio::runtime::Runtime,
}

fn client(host: &str) -> Client {
    Client::plain_http(host).expect("client")
}

/// A deterministic pseudo-random (incompressible) layer.
fn layer(seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(LAYER_BYTES);
    while out.len() < LAYER_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

async fn push_image(client: &Client, reference: &Reference, layers: &[Bytes]) -> Digest {
    let config = Bytes::from_static(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    let layers: Vec<(&str, &Bytes)> = layers.iter().map(|l| (OCI_LAYER_TAR, l)).collect();
    client
        .push_image(reference, &config, &layers)
        .await
        .expect("push image")
        .digest
}

impl Bench {
    fn start() -> Option<Self> {
        let skopeo = require("skopeo", "apt-get install skopeo")?;
        let registry = Registry::start(Auth::Anonymous)?;
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let host = registry.host();
        let digest = runtime.block_on(async {
            let client = client(&host);
            let layers: Vec<Bytes> = (0..LAYERS as u64).map(layer).collect();
            let dev = format!("{host}/bench/app:dev").parse().expect("reference");
            let digest = push_image(&client, &dev, &layers).await;
            // A small other image, for resetting the re-tag target between runs.
            let other = format!("{host}/bench/app:other")
                .parse()
                .expect("reference");
            push_image(&client, &other, &[Bytes::from_static(b"other")]).await;
            digest
        });
        Some(Self {
            registry,
            skopeo,
            dir: tempfile::tempdir().expect("tempdir"),
            digest,
            runtime,
        })
    }

    fn host(&self) -> String {
        self.registry.host()
    }

    /// Points `bench/app:staging` at the small other image, so a re-tag has work to do.
    fn reset_staging(&self, host: &str) {
        self.runtime.block_on(async {
            let client = client(host);
            let other = client
                .manifest(
                    &format!("{host}/bench/app:other")
                        .parse()
                        .expect("reference"),
                )
                .await
                .expect("other");
            client
                .put_manifest(
                    &format!("{host}/bench/app:staging")
                        .parse()
                        .expect("reference"),
                    &other,
                )
                .await
                .expect("reset");
        });
    }

    fn policy(&self, host: &str, target_repository: Option<&str>) -> PathBuf {
        let path = self.dir.path().join("policy.yml");
        let staging = target_repository
            .map(|repo| format!("    repository: {host}/{repo}\n"))
            .unwrap_or_default();
        std::fs::write(
            &path,
            format!("version: 1\nenvironments:\n  - name: dev\n  - name: staging\n{staging}"),
        )
        .expect("policy");
        path
    }

    /// promote-digest dev -> staging through `host`; returns the requests it reports.
    fn gantry(&self, host: &str, policy: &Path) -> u64 {
        let output = Command::new(env!("CARGO_BIN_EXE_promote-digest"))
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path())
            .args([
                "--image",
                &format!("{host}/bench/app"),
                "--digest",
                self.digest.as_str(),
            ])
            .args([
                "--source-env",
                "dev",
                "--target-env",
                "staging",
                "--insecure-registry",
                host,
            ])
            .arg("--policy")
            .arg(policy)
            .arg("--json")
            .output()
            .expect("promote-digest");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(json["outputs"]["promoted"], "true", "{json}");
        json["outputs"]["requests"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }

    /// `skopeo copy` of the digest to `target` through `host`, with an empty blob-info cache.
    fn skopeo(&self, host: &str, target: &str) {
        let home = self.dir.path().join("skopeo-home");
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("home");
        for cache in [
            "/var/lib/containers/cache/blob-info-cache-v1.sqlite",
            "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
        ] {
            let _ = std::fs::remove_file(cache);
        }
        let output = Command::new(&self.skopeo)
            .env("HOME", &home)
            .args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker://{host}/bench/app@{}", self.digest))
            .arg(format!("docker://{host}/{target}"))
            .output()
            .expect("skopeo");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Times `run` over `iters` runs, each given what an untimed `setup` prepared.
fn timed<T>(iters: u64, mut setup: impl FnMut() -> T, mut run: impl FnMut(T)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let prepared = setup();
        let started = Instant::now();
        run(prepared);
        total += started.elapsed();
    }
    total
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Requests and uploaded bytes of each tool and operation, through a counting proxy.
fn accounting(bench: &Bench) -> serde_json::Value {
    let proxy = FaultyProxy::start(&bench.host()).expect("proxy");
    let host = proxy.host();
    let mut rows = serde_json::Map::new();
    let mut measure = |name: &str, run: &mut dyn FnMut() -> Option<u64>| {
        let before = (proxy.log().len(), proxy.bytes_up(), proxy.blob_bytes_up());
        let reported = run();
        rows.insert(
            name.to_owned(),
            serde_json::json!({
                "requests": proxy.log().len() - before.0,
                "bytes_up": proxy.bytes_up() - before.1,
                "blob_bytes_up": proxy.blob_bytes_up() - before.2,
                "reported_requests": reported,
            }),
        );
    };
    bench.reset_staging(&host);
    let policy = bench.policy(&host, None);
    measure("retag/gantry", &mut || Some(bench.gantry(&host, &policy)));
    bench.reset_staging(&host);
    measure("retag/skopeo", &mut || {
        bench.skopeo(&host, "bench/app:staging");
        None
    });
    bench.reset_staging(&host);
    measure("retag/gantry-oci copy", &mut || {
        bench.runtime.block_on(async {
            let client = client(&host);
            let source = format!("{host}/bench/app@{}", bench.digest)
                .parse()
                .expect("reference");
            let target = format!("{host}/bench/app:staging")
                .parse()
                .expect("reference");
            client
                .copy(&source, &target, CopyOptions::default())
                .await
                .expect("copy");
            Some(client.counts().requests)
        })
    });
    let repo = format!("bench/count-{}", unique());
    let policy = bench.policy(&host, Some(&repo));
    measure("cross-repo/gantry", &mut || {
        Some(bench.gantry(&host, &policy))
    });
    let repo = format!("bench/count-{}", unique());
    measure("cross-repo/skopeo", &mut || {
        bench.skopeo(&host, &format!("{repo}:staging"));
        None
    });
    serde_json::Value::Object(rows)
}

fn main() {
    let Some(bench) = Bench::start() else { return };
    let out = gantry_testkit::criterion_dir();
    let mut criterion = gantry_testkit::criterion(Duration::from_secs(5));
    let host = bench.host();
    {
        let mut group = criterion.benchmark_group("retag");
        group.sampling_mode(criterion::SamplingMode::Flat);
        let policy = bench.policy(&host, None);
        group.bench_function("gantry", |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    || bench.reset_staging(&host),
                    |()| {
                        bench.gantry(&host, &policy);
                    },
                )
            });
        });
        group.bench_function("skopeo", |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    || bench.reset_staging(&host),
                    |()| bench.skopeo(&host, "bench/app:staging"),
                )
            });
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("cross-repo");
        group.sampling_mode(criterion::SamplingMode::Flat);
        // Ten cold skopeo copies of 200 MB take about twenty seconds here.
        group.measurement_time(Duration::from_secs(30));
        group.bench_function("gantry", |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    || bench.policy(&host, Some(&format!("bench/prod-{}", unique()))),
                    |policy| {
                        bench.gantry(&host, &policy);
                    },
                )
            });
        });
        group.bench_function("skopeo", |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    || format!("bench/prod-{}:staging", unique()),
                    |target| bench.skopeo(&host, &target),
                )
            });
        });
        group.finish();
    }
    criterion.final_summary();
    let version = |program: &Path| {
        Command::new(program)
            .arg("--version")
            .output()
            .map(|o| {
                let text = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let report = serde_json::json!({
        "machine": {
            "cores": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            "skopeo": version(&bench.skopeo),
            "registry": require("docker-registry", "apt-get install docker-registry").map(|p| version(&p)),
        },
        "image": {"layers": LAYERS, "bytes": LAYERS * LAYER_BYTES},
        "registry": "CNCF distribution (Debian docker-registry), loopback, filesystem storage",
        "accounting": accounting(&bench),
    });
    std::fs::create_dir_all(&out).expect("criterion dir");
    std::fs::write(
        out.join("promote-report.json"),
        serde_json::to_vec_pretty(&report).expect("json"),
    )
    .expect("report");
}
