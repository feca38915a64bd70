//! Finding real components on `PATH`, or skipping loudly.

use std::path::{Path, PathBuf};

/// Whether the tests run in CI (`CI=true`), where a missing component is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn which(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The path of `binary`, or `None` after a loud skip message; panics in CI.
///
/// `install` says how to get it, e.g. `apt-get install docker-registry`.
#[expect(
    clippy::print_stderr,
    reason = "a skipped real-component test must be loud"
)]
pub fn require(binary: &str, install: &str) -> Option<PathBuf> {
    if let Some(path) = which(binary) {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "{binary} is not on PATH, and CI=true makes a missing real component a failure\nhint: {install} (bash .ci/run does)"
    );
    eprintln!(
        "\n!!!!!!!! SKIPPED: {binary} is not on PATH, so this real-component test did not run.\n!!!!!!!! hint: {install} (bash .ci/run does); with CI=true this is a failure.\n"
    );
    None
}
