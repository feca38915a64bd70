//! `cargo xtask <task>`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use xtask::{bench, dist, generate, lint, pack, setup, workspace_root};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "gantry's developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write actions/<tool>/action.yml and README tables from the clap definitions.
    Generate {
        /// Change nothing; fail when a generated file is stale.
        #[arg(long)]
        check: bool,
    },
    /// Install what the tests and lints need (Debian, npm and Python packages), when missing.
    Setup,
    /// Run action-validator, actionlint and zizmor over every action and workflow.
    Lint,
    /// Build the static release binary and print its path.
    Dist,
    /// Build the static binary's scratch image (reproducible) as an OCI layout; print its digest.
    Pack {
        /// Where to write the OCI layout (default: <target>/pack/layout).
        #[arg(long)]
        layout: Option<std::path::PathBuf>,
        /// Also push the image here, e.g. ghcr.io/gantry-dev/gantry:v0.1.0.
        #[arg(long, value_name = "REFERENCE")]
        push: Option<String>,
    },
    /// Build the static binary and run `gantry demo` with it: the README's main job.
    Demo,
    /// Run a benchmark against its peer (criterion) and write the ratios into BENCHMARKS.md.
    Bench {
        /// Which benchmark: promote or verify.
        name: String,
    },
    /// Build the static binary, then run the whole test suite against it (the README's command).
    Test {
        /// Passed on to `cargo test`, e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask reports to the developer"
)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.task {
        Task::Generate { check } => run_generate(&root, check),
        Task::Setup => setup::ensure(&root).map(|_| true),
        Task::Lint => setup::ensure(&root).and_then(|ready| run_lint(&root, &ready)),
        Task::Dist => dist::build(&root).map(|path| {
            println!("{}", path.display());
            true
        }),
        Task::Pack { layout, push } => dist::build(&root).and_then(|binary| {
            let layout = layout.unwrap_or_else(|| pack::default_layout(&root));
            let digest = pack::pack(&binary, &layout, push.as_deref())?;
            eprintln!(
                "wrote {} (tag {})",
                layout.display(),
                env!("CARGO_PKG_VERSION")
            );
            println!("{digest}");
            Ok(true)
        }),
        Task::Demo => dist::build(&root).and_then(|binary| {
            Ok(std::process::Command::new(binary)
                .arg("demo")
                .status()
                .context("running gantry demo")?
                .success())
        }),
        Task::Bench { name } => bench::run(&root, &name).map(|section| {
            println!("{section}");
            true
        }),
        Task::Test { args } => run_tests(&root, &args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask reports to the developer"
)]
fn run_generate(root: &std::path::Path, check: bool) -> anyhow::Result<bool> {
    let image = generate::read_image(root)?;
    let files = generate::wanted_files(root, gantry::TOOLS, image.as_deref())?;
    let stale = generate::drift(&files);
    if check {
        for path in &stale {
            eprintln!(
                "stale: {}",
                path.strip_prefix(root).unwrap_or(path).display()
            );
        }
        if !stale.is_empty() {
            eprintln!("generated files are out of date\nhint: cargo xtask generate");
        }
        return Ok(stale.is_empty());
    }
    for (path, content) in files.iter().filter(|(p, _)| stale.contains(p)) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, content)?;
        println!(
            "wrote {}",
            path.strip_prefix(root).unwrap_or(path).display()
        );
    }
    println!("{} generated file(s), {} updated", files.len(), stale.len());
    Ok(true)
}

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask reports to the developer"
)]
fn run_lint(root: &std::path::Path, ready: &setup::Ready) -> anyhow::Result<bool> {
    let (actions, workflows) = lint::lint_targets(root)?;
    // The generator's output is linted too, on the fixture tool, before any real tool relies on it.
    let scratch = tempfile::tempdir()?;
    let fixture = scratch.path().join("actions/fixture/action.yml");
    std::fs::create_dir_all(fixture.parent().unwrap_or(scratch.path()))?;
    std::fs::write(
        &fixture,
        generate::action_yml(&gantry_fixture::ENTRY, lint::FIXTURE_IMAGE)?,
    )?;
    let mut all_actions = actions.clone();
    all_actions.push(fixture);
    println!(
        "linting {} action(s) and {} workflow(s)",
        all_actions.len(),
        workflows.len()
    );
    let failed = lint::lint(root, ready, &all_actions, &workflows)?;
    if failed.is_empty() {
        println!("lint: clean");
        return Ok(true);
    }
    eprintln!("lint failed: {}", failed.join(", "));
    Ok(false)
}

/// Runs `cargo test` against the static binary, echoing its output, and closes with one
/// `N passed, N failed, N skipped` line summed over every test binary (cargo's own last line is a
/// doc-test run that may hold no test at all).
#[expect(clippy::print_stdout, reason = "xtask reports to the developer")]
fn run_tests(root: &std::path::Path, args: &[String]) -> anyhow::Result<bool> {
    use std::io::BufRead as _;
    let ready = setup::ensure(root)?;
    let binary = dist::build(root)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = std::process::Command::new(cargo)
        .current_dir(root)
        .args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .args(args)
        .env("GANTRY_DIST_BINARY", binary)
        .env("PATH", ready.path_var())
        .envs(ready.env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut totals = xtask::TestTotals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            totals.add_line(&line);
        }
    }
    let status = child.wait()?;
    println!(
        "\ntests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    Ok(status.success())
}
