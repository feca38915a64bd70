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
pub fn require(binary: &str, install: &str) -> Option<PathBuf> {
    require_in(binary, install, in_ci())
}

/// [`require`] with the CI decision made by the caller.
pub fn require_in(binary: &str, install: &str, ci: bool) -> Option<PathBuf> {
    which(binary).or_else(|| missing(&format!("{binary} is not on PATH"), install, ci))
}

/// Where the npm test peers are installed (`crates/gantry-testkit/node`).
pub fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// `path` below [`node_dir`] when the npm packages are installed, or `None` after a loud skip
/// naming `what` (a failure with `CI=true`).
pub fn require_node(path: &str, what: &str) -> Option<PathBuf> {
    let found = node_dir().join(path);
    if found.exists() {
        return Some(found);
    }
    missing(
        &format!("{what} is not installed ({})", found.display()),
        "npm ci --prefix crates/gantry-testkit/node",
        in_ci(),
    )
}

/// A Python whose `module` imports (`python3 -c "import module"`), or `None` after a loud skip
/// (a failure with `CI=true`); `install` says how to get it, e.g. `pip install sigstore==4.5.1`.
pub fn require_python_module(module: &str, install: &str) -> Option<PathBuf> {
    let python = require("python3", "apt-get install python3")?;
    let imports = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if imports {
        return Some(python);
    }
    missing(
        &format!("the Python module {module} is not installed"),
        install,
        in_ci(),
    )
}

/// A missing component: a panic in CI, else a loud skip. Always `None`.
fn missing(problem: &str, install: &str, ci: bool) -> Option<PathBuf> {
    shout(&skip_message(problem, install, ci));
    None
}

/// What a skip says; a panic in CI, where a missing component is a failure.
fn skip_message(problem: &str, install: &str, ci: bool) -> String {
    assert!(
        !ci,
        "{problem}, and CI=true makes a missing real component a failure\nhint: {install} (cargo xtask setup does)"
    );
    format!(
        "SKIPPED: {problem}, so this real-component test did not run.\nhint: {install} (cargo xtask setup does); with CI=true this is a failure."
    )
}

/// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, and a
/// skip nobody sees is a silent skip.
pub fn shout(message: &str) {
    use std::io::Write as _;
    let mut framed = String::from("\n");
    for line in message.lines() {
        framed.push_str("!!!!!!!! ");
        framed.push_str(line);
        framed.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(framed.as_bytes());
}

/// A server process started by [`spawn_announced`]; stopped on drop.
pub struct Service(std::process::Child);

impl Service {
    /// Stops the process (what it wrote stays).
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a server that prints its URL (`http://…`) as the first line of stdout, its stderr going
/// to `log`: the process and the URL, or what went wrong (no URL within 20 s, with the log).
pub fn spawn_announced(
    mut command: std::process::Command,
    log: &Path,
) -> Result<(Service, String), String> {
    use std::io::BufRead as _;
    let mut service = Service(
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .map_err(|e| format!("starting {command:?}: {e}"))?,
    );
    let stdout = service.0.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_default();
    if !line.starts_with("http://") {
        service.stop();
        return Err(format!(
            "first line {line:?}; stderr: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        ));
    }
    Ok((service, line.trim().to_owned()))
}

/// A root filesystem built by `cargo xtask setup` for the SBOM tests (`minbase`, `lang`: see
/// `crates/gantry-sbom/tests/fixtures/build-rootfs.sh`), found through `GANTRY_SBOM_FIXTURES`
/// (which `cargo xtask test` sets), or `None` after a loud skip (a failure with `CI=true`).
pub fn sbom_rootfs(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("GANTRY_SBOM_FIXTURES").map(PathBuf::from);
    match dir.map(|d| d.join(name)) {
        Some(found) if found.join("var/lib/dpkg/status").is_file() => Some(found),
        found => missing(
            &format!(
                "the root filesystem {name:?} is not built ({})",
                found.map_or_else(
                    || "GANTRY_SBOM_FIXTURES is not set".to_owned(),
                    |f| f.display().to_string()
                )
            ),
            "cargo xtask setup, then GANTRY_SBOM_FIXTURES=<target>/fixtures/sbom",
            in_ci(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{require_in, skip_message, which};

    #[test]
    fn a_present_component_is_found_in_and_out_of_ci() {
        for ci in [false, true] {
            assert!(
                require_in("sh", "apt-get install dash", ci).is_some_and(|p| p.ends_with("sh"))
            );
        }
    }

    // The skip itself is checked without printing its banner: a banner in the test output
    // would look like a real skip to anyone reading the log.
    #[test]
    fn a_missing_component_skips_outside_ci() {
        assert_eq!(which("gantry-no-such-component"), None);
        let said = skip_message("gantry-no-such-component is not on PATH", "nothing", false);
        assert!(
            said.starts_with("SKIPPED: gantry-no-such-component"),
            "{said}"
        );
    }

    #[test]
    #[should_panic(expected = "CI=true makes a missing real component a failure")]
    fn a_missing_component_fails_in_ci() {
        let _ = require_in("gantry-no-such-component", "nothing", true);
    }
}
