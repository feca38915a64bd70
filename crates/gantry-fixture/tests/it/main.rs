//! Contract tests: the real `gantry-fixture` binary, run as the runner and as a shell would run it.

mod action;
mod cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SECRET: &str = "hunter2-Zq8v!secret";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_gantry-fixture")
}

/// A temporary runner: `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files and a clean environment.
pub struct Runner {
    pub dir: tempfile::TempDir,
}

impl Default for Runner {
    fn default() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
}

impl Runner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn output_file(&self) -> PathBuf {
        self.dir.path().join("github_output")
    }

    pub fn summary_file(&self) -> PathBuf {
        self.dir.path().join("step_summary")
    }

    /// Runs `gantry-fixture fixture --action` with the runner's variables plus `inputs`, every
    /// declared input present (empty when not given), as the runner does.
    pub fn run(&self, inputs: &[(&str, &str)], extra_env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(binary());
        command
            .args(["fixture", "--action"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        command
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.output_file())
            .env("GITHUB_STEP_SUMMARY", self.summary_file())
            .env("GITHUB_REPOSITORY", "acme/billing");
        for name in [
            "image",
            "dry-run",
            "tags",
            "registry-password",
            "message",
            "ending",
            "summary-bytes",
        ] {
            let value = inputs
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, v)| *v);
            command.env(format!("INPUT_{}", name.to_uppercase()), value);
        }
        command.envs(extra_env.iter().copied());
        command.output().expect("run gantry-fixture")
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Asserts that `SECRET` shows up only inside `::add-mask::` commands, which the runner consumes.
pub fn assert_secret_only_masked(output: &Output) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        for line in text(bytes).lines() {
            if line.contains(SECRET) {
                assert!(
                    line.starts_with("::add-mask::"),
                    "secret leaked on {stream}: {line}"
                );
            }
        }
    }
}
