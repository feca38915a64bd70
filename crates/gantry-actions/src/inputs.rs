//! `INPUT_*` variables to argv for the tool's own clap parser.
//!
//! The runner sets every declared input, to `""` when the workflow gave none, and does not enforce
//! `required: true`. So an empty value means "unset", required inputs are checked here with a message
//! that names the input, and everything else is left to the same parser the CLI uses.

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};

use crate::env::INPUT_PREFIX;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum InputError {
    #[error(
        "input '{input}' is required but was not set\nhint: add `{input}:` under `with:` in the step"
    )]
    Missing { input: String },
    #[error(
        "input '{input}' must be one of true, True, TRUE, false, False, FALSE (YAML 1.2 core schema), found {found:?}"
    )]
    NotABoolean { input: String, found: String },
}

/// The variable name the runner uses for `input`: uppercased, spaces to `_`, hyphens kept.
pub fn variable_name(input: &str) -> String {
    format!("{INPUT_PREFIX}{}", input.replace(' ', "_").to_uppercase())
}

/// Parses a boolean input by the YAML 1.2 core schema the runner's `getBooleanInput` accepts.
pub fn parse_bool(input: &str, value: &str) -> Result<bool, InputError> {
    match value {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        other => Err(InputError::NotABoolean {
            input: input.to_owned(),
            found: other.to_owned(),
        }),
    }
}

/// The inputs of a command: its named arguments (by their long flag) and positional ones (by
/// their id, in kebab-case: a subcommand word such as `report`), built-ins excluded.
pub fn inputs(command: &Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|arg| {
        (arg.get_long().is_some() || arg.is_positional())
            && !matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
            && !arg.is_hide_set()
    })
}

/// An argument's input name: its long flag, or a positional argument's id in kebab-case.
pub fn input_name(arg: &Arg) -> String {
    arg.get_long().map_or_else(
        || arg.get_id().as_str().replace('_', "-"),
        ToOwned::to_owned,
    )
}

/// Whether an argument takes a newline-separated list.
pub fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// Whether an argument is a boolean switch.
pub fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Builds argv (without the program name) for `command` from input variables read through `lookup`.
pub fn argv_from_inputs(
    command: &Command,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<OsString>, InputError> {
    let mut argv = Vec::new();
    let mut positional = Vec::new();
    for arg in inputs(command) {
        let input = input_name(arg);
        let name = input.as_str();
        let value = lookup(&variable_name(name)).filter(|v| !v.is_empty());
        let Some(value) = value else {
            if arg.is_required_set() {
                return Err(InputError::Missing {
                    input: name.to_owned(),
                });
            }
            continue;
        };
        if arg.is_positional() {
            positional.push(OsString::from(value.trim()));
        } else if is_flag(arg) {
            let on = parse_bool(name, value.trim())?;
            let set_true = matches!(arg.get_action(), ArgAction::SetTrue);
            if on == set_true {
                argv.push(format!("--{name}").into());
            }
        } else if is_list(arg) {
            let items: Vec<&str> = value
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect();
            if items.is_empty() && arg.is_required_set() {
                return Err(InputError::Missing {
                    input: name.to_owned(),
                });
            }
            argv.extend(
                items
                    .into_iter()
                    .map(|item| format!("--{name}={item}").into()),
            );
        } else {
            argv.push(format!("--{name}={value}").into());
        }
    }
    // Positional values first; after `--`, none of them can be read as a flag.
    if positional.is_empty() {
        return Ok(argv);
    }
    let mut all = Vec::with_capacity(positional.len() + argv.len() + 1);
    all.extend(argv);
    all.push(OsString::from("--"));
    all.extend(positional);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(clap::Parser, Debug)]
    struct Args {
        #[arg(long, required = true)]
        image_ref: String,
        #[arg(long)]
        dry_run: bool,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        note: Option<String>,
    }

    fn argv(vars: &[(&str, &str)]) -> Result<Vec<String>, InputError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let command = <Args as clap::CommandFactory>::command();
        argv_from_inputs(&command, |name| vars.get(name).cloned()).map(|v| {
            v.into_iter()
                .map(|s| s.into_string().expect("utf8"))
                .collect()
        })
    }

    #[test]
    fn names_keep_hyphens_and_empty_means_unset() {
        let got = argv(&[
            ("INPUT_IMAGE-REF", "ghcr.io/o/r:1"),
            ("INPUT_NOTE", ""),
            ("INPUT_DRY-RUN", ""),
        ])
        .expect("argv");
        assert_eq!(got, ["--image-ref=ghcr.io/o/r:1"]);
    }

    #[test]
    fn values_starting_with_a_hyphen_stay_values() {
        let got = argv(&[("INPUT_IMAGE-REF", "x"), ("INPUT_NOTE", "--dry-run")]).expect("argv");
        let parsed =
            <Args as clap::Parser>::try_parse_from(std::iter::once("t".to_owned()).chain(got))
                .expect("parse");
        assert_eq!(parsed.note.as_deref(), Some("--dry-run"));
        assert!(!parsed.dry_run);
    }

    #[test]
    fn booleans_accept_only_the_core_schema() {
        for on in ["true", "True", "TRUE"] {
            assert_eq!(
                argv(&[("INPUT_IMAGE-REF", "x"), ("INPUT_DRY-RUN", on)]).expect("argv")[1],
                "--dry-run"
            );
        }
        for off in ["false", "False", "FALSE"] {
            assert_eq!(
                argv(&[("INPUT_IMAGE-REF", "x"), ("INPUT_DRY-RUN", off)])
                    .expect("argv")
                    .len(),
                1
            );
        }
        for bad in ["yes", "1", "on", "tRue"] {
            assert_eq!(
                argv(&[("INPUT_IMAGE-REF", "x"), ("INPUT_DRY-RUN", bad)]),
                Err(InputError::NotABoolean {
                    input: "dry-run".into(),
                    found: bad.into()
                })
            );
        }
    }

    #[test]
    fn lists_are_newline_separated_with_blank_lines_dropped() {
        let got =
            argv(&[("INPUT_IMAGE-REF", "x"), ("INPUT_TAG", "a\n\n  b  \r\nc\n")]).expect("argv");
        assert_eq!(got, ["--image-ref=x", "--tag=a", "--tag=b", "--tag=c"]);
    }

    #[test]
    fn a_missing_required_input_is_named() {
        let err = argv(&[("INPUT_IMAGE-REF", "")]).expect_err("must fail");
        assert_eq!(
            err,
            InputError::Missing {
                input: "image-ref".into()
            }
        );
        assert!(err.to_string().contains("input 'image-ref' is required"));
    }

    #[test]
    fn variable_names_follow_the_runner() {
        assert_eq!(variable_name("github-token"), "INPUT_GITHUB-TOKEN");
        assert_eq!(variable_name("my input"), "INPUT_MY_INPUT");
    }
}

#[cfg(test)]
mod positional_tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Args {
        #[arg(value_enum, default_value_t = Mode::Dispatch)]
        command: Mode,
        #[arg(long)]
        note: Option<String>,
    }

    #[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
    enum Mode {
        Dispatch,
        Report,
    }

    #[test]
    fn a_positional_word_is_an_input_by_its_id() {
        let command = <Args as clap::CommandFactory>::command();
        let names: Vec<String> = inputs(&command).map(input_name).collect();
        assert_eq!(names, ["command", "note"]);
        let argv = argv_from_inputs(&command, |name| match name {
            "INPUT_COMMAND" => Some("report".to_owned()),
            "INPUT_NOTE" => Some("--x".to_owned()),
            _ => None,
        })
        .expect("argv");
        let parsed = <Args as clap::Parser>::try_parse_from(
            std::iter::once(OsString::from("tool")).chain(argv),
        )
        .expect("parses");
        assert_eq!(parsed.command, Mode::Report);
        assert_eq!(parsed.note.as_deref(), Some("--x"));
        let none = argv_from_inputs(&command, |_| None).expect("argv");
        assert!(none.is_empty(), "no `--` without positional values");
    }
}
