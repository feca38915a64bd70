//! The two front ends of every tool, over one clap parser.
//!
//! `gantry <tool> [ARGS]` (or a binary named after the tool) parses the command line; `--action`
//! instead reads the step's `INPUT_*` variables, turns them into argv for the same parser, and
//! writes outputs, a summary and annotations the way the runner expects.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::json;

use crate::commands::{Annotation, Commands, Level};
use crate::context::GitHubContext;
use crate::files;
use crate::inputs;
use crate::tool::{Context, ExitStatus, Mode, Outcome, ToolEntry};
use crate::{env, logging, output};

const ACTION_FLAG: &str = "action";
const JSON_FLAG: &str = "json";

/// A tool's subcommand: its own arguments plus `--action` and `--json`.
pub fn tool_command(entry: &ToolEntry) -> Command {
    entry
        .command()
        .arg(
            Arg::new(ACTION_FLAG)
                .long(ACTION_FLAG)
                .action(ArgAction::SetTrue)
                .exclusive(true)
                .help("Run as a GitHub container action: read inputs from INPUT_* and write outputs to GITHUB_OUTPUT")
                .help_heading("Front end"),
        )
        .arg(
            Arg::new(JSON_FLAG)
                .long(JSON_FLAG)
                .action(ArgAction::SetTrue)
                .help("Print the outcome as one JSON object on stdout")
                .help_heading("Front end"),
        )
}

/// The root command of a multi-call binary: `root` with one subcommand per tool.
pub fn command(root: Command, tools: &[ToolEntry]) -> Command {
    root.subcommand_required(true)
        .arg_required_else_help(true)
        .subcommands(tools.iter().map(tool_command))
}

/// argv with busybox-style dispatch: a binary (or link) named after a tool runs that tool.
pub fn multicall_argv(root_name: &str, tools: &[ToolEntry], argv: Vec<OsString>) -> Vec<OsString> {
    let invoked = argv
        .first()
        .map(Path::new)
        .and_then(Path::file_stem)
        .and_then(|s| s.to_str())
        .unwrap_or(root_name)
        .to_owned();
    if let Some(tool) = tools.iter().find(|t| t.spec.name == invoked) {
        let mut out = vec![OsString::from(root_name), OsString::from(tool.spec.name)];
        out.extend(argv.into_iter().skip(1));
        out
    } else {
        argv
    }
}

/// Runs the tool the parsed subcommand names; `None` when it is not a tool (the caller handles its
/// own subcommands).
pub fn dispatch(tools: &[ToolEntry], matches: &ArgMatches) -> Option<ExitStatus> {
    let (name, sub) = matches.subcommand()?;
    let entry = tools.iter().find(|t| t.spec.name == name)?;
    Some(run_entry(entry, sub))
}

/// Entry point of a multi-call binary whose subcommands are all tools.
pub fn main(root: Command, tools: &[ToolEntry]) -> ExitCode {
    main_with(root, tools, |_, _| None)
}

/// Entry point of a multi-call binary with tools and subcommands of its own, which `extra` runs
/// (returning `None` for a name it does not know).
pub fn main_with(
    root: Command,
    tools: &[ToolEntry],
    extra: impl FnOnce(&str, &ArgMatches) -> Option<ExitStatus>,
) -> ExitCode {
    let root_name = root.get_name().to_owned();
    let argv = multicall_argv(&root_name, tools, std::env::args_os().collect());
    let matches = match command(root, tools).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => return clap_exit(&e),
    };
    if let Some(status) = dispatch(tools, &matches) {
        return status.into();
    }
    let status = matches
        .subcommand()
        .and_then(|(name, sub)| extra(name, sub));
    status.unwrap_or(ExitStatus::Error).into()
}

/// Prints a clap error or help and returns its exit code (0 for help and version, 2 for usage).
pub fn clap_exit(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

/// Runs a future on a fresh runtime.
pub fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    Ok(runtime.block_on(future))
}

fn run_entry(entry: &ToolEntry, matches: &ArgMatches) -> ExitStatus {
    let json = matches.get_flag(JSON_FLAG);
    if matches.get_flag(ACTION_FLAG) {
        logging::init(Mode::Action);
        run_action(entry, &|name| std::env::var(name).ok())
    } else {
        logging::init(Mode::Cli);
        let ctx = Context {
            mode: Mode::Cli,
            github: GitHubContext::from_env(),
        };
        let result = block_on(entry.run(matches.clone(), ctx)).and_then(|r| r);
        report_cli(entry, result, json)
    }
}

fn report_cli(entry: &ToolEntry, result: anyhow::Result<Outcome>, json: bool) -> ExitStatus {
    let name = entry.spec.name;
    let checked = result.and_then(|outcome| {
        let outputs: Vec<(String, String)> = outcome
            .checked_outputs(entry.spec)?
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok((outcome, outputs))
    });
    match checked {
        Ok((outcome, outputs)) => {
            let status = outcome.status();
            if json {
                let outputs: serde_json::Map<String, serde_json::Value> =
                    outputs.into_iter().map(|(k, v)| (k, v.into())).collect();
                let body = json!({
                    "tool": name,
                    "status": if status == ExitStatus::Success { "success" } else { "failed" },
                    "exit-code": status.code(),
                    "outputs": outputs,
                    "failure": outcome.failure,
                    "headline": outcome.headline,
                    "summary": outcome.summary,
                });
                output::out_json(&body.to_string());
            } else {
                if let Some(headline) = &outcome.headline {
                    output::out(headline);
                }
                // Empty outputs say nothing a person needs; --json keeps them all.
                for (key, value) in outputs.iter().filter(|(_, v)| !v.is_empty()) {
                    output::out(&format!("{key}: {value}"));
                }
            }
            for annotation in &outcome.annotations {
                output::err(&format!(
                    "{}: {}",
                    level_word(annotation.level),
                    annotation.message
                ));
            }
            if let Some(failure) = &outcome.failure {
                output::err(&format!("error: {name}: {failure}"));
            }
            status
        }
        Err(error) => {
            if json {
                let body = json!({
                    "tool": name,
                    "status": "error",
                    "exit-code": ExitStatus::Error.code(),
                    "error": format!("{error:#}"),
                });
                output::out_json(&body.to_string());
            }
            output::err(&format!("error: {name}: {error:#}"));
            ExitStatus::Error
        }
    }
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    }
}

/// Runs `entry` as a container action with input variables read through `lookup`.
pub fn run_action(entry: &ToolEntry, lookup: &dyn Fn(&str) -> Option<String>) -> ExitStatus {
    let name = entry.spec.name;
    // Masks go first, before anything that might echo a value.
    for secret in entry.spec.secret_inputs {
        if let Some(value) = lookup(&inputs::variable_name(secret)) {
            Commands::add_mask(&value);
        }
    }
    let result = action_outcome(entry, lookup);
    match result {
        Ok(status) => status,
        Err(error) => {
            let message = format!("{error:#}");
            output::err(&format!("error: {name}: {message}"));
            Commands::annotate(
                &Annotation::new(Level::Error, message).title(format!("gantry {name}")),
            );
            ExitStatus::Error
        }
    }
}

fn action_outcome(
    entry: &ToolEntry,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ExitStatus> {
    let name = entry.spec.name;
    let output_file = lookup(env::GITHUB_OUTPUT)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let Some(output_file) = output_file else {
        anyhow::bail!(
            "GITHUB_OUTPUT is not set, so there is nowhere to write outputs\nhint: --action is for GitHub Actions steps; run `gantry {name} --help` for the command line"
        );
    };
    let argv = inputs::argv_from_inputs(&entry.command(), lookup)?;
    let matches = entry
        .command()
        .try_get_matches_from(std::iter::once(OsString::from(name)).chain(argv))
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))?;
    let ctx = Context {
        mode: Mode::Action,
        github: GitHubContext::from_lookup(lookup),
    };
    let outcome = block_on(entry.run(matches, ctx))??;
    if let Some(headline) = &outcome.headline {
        output::err(headline);
    }
    let outputs = files::render_outputs(outcome.checked_outputs(entry.spec)?)?;
    files::append(&output_file, &outputs)?;
    let summary_on = lookup(env::GANTRY_STEP_SUMMARY)
        .filter(|v| !v.is_empty())
        .map_or(Ok(true), |v| {
            inputs::parse_bool(env::GANTRY_STEP_SUMMARY, &v)
        })?;
    let summary_file = lookup(env::GITHUB_STEP_SUMMARY).filter(|v| !v.is_empty());
    if let (true, Some(path), Some(markdown)) = (summary_on, summary_file, &outcome.summary) {
        files::append(Path::new(&path), &files::cap_summary(markdown))?;
    }
    for annotation in &outcome.annotations {
        Commands::annotate(annotation);
    }
    if let Some(failure) = &outcome.failure {
        Commands::annotate(
            &Annotation::new(Level::Error, failure.clone())
                .title(format!("gantry {name}: check failed")),
        );
    }
    Ok(outcome.status())
}
