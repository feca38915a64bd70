//! Real components for gantry's tests, started on loopback and stopped on drop.
//!
//! Tests run against the real thing (CNCF distribution from Debian's `docker-registry`, skopeo,
//! umoci, …), never a mock of it. When a component is missing on a developer's machine the test says
//! so loudly on stderr and returns early; with `CI=true` a missing component fails the test, so CI
//! can never go green by skipping.

#![warn(missing_docs)]

pub mod argocd;
pub mod component;
pub mod git;
pub mod github;
pub mod peers;
pub mod pki;
pub mod prism;
pub mod prometheus;
pub mod proxy;
pub mod registry;
mod server;
pub mod token;
pub mod tuf;

pub use component::{in_ci, require, shout};

/// Where criterion benchmarks write (`<target>/criterion`), for `cargo xtask bench` to read.
pub fn criterion_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            std::path::PathBuf::from,
        )
        .join("criterion")
}

/// The project's criterion settings: ten samples of real requests (no warm-up worth having),
/// measured for `measurement`, written to [`criterion_dir`]; command-line options still apply.
pub fn criterion(measurement: std::time::Duration) -> criterion::Criterion {
    criterion::Criterion::default()
        .output_directory(&criterion_dir())
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(1))
        .measurement_time(measurement)
        .configure_from_args()
}

/// A tool's `--json` report on stdout; a panic showing both streams when there is none.
pub fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}); stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub use github::GitHubFake;
pub use pki::TestCa;
pub use proxy::{Fault, FaultyProxy};
pub use registry::{Auth, Backend, Registry, TEST_HOST_NAME};
pub use server::HttpsServer;

/// This process's peak memory, for tests that bound it (Linux `/proc`): [`PeakMemory::start`]
/// resets the peak to the current resident size, [`PeakMemory::growth`] is how far the peak rose
/// above it since. Alone in a test binary, so no other test adds to the peak.
pub struct PeakMemory {
    before: u64,
}

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a /proc/self/status field")
        * 1024
}

impl PeakMemory {
    /// Resets the peak (Linux: writing 5 to `clear_refs` clears `VmHWM`) and remembers the
    /// resident size.
    pub fn start() -> Self {
        std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
        Self {
            before: status_bytes("VmRSS:"),
        }
    }

    /// Bytes the peak rose above the resident size at the start.
    pub fn growth(&self) -> u64 {
        status_bytes("VmHWM:").saturating_sub(self.before)
    }
}
