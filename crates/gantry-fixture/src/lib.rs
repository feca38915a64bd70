//! A fixture tool with one input of every kind the runner contract handles (required, boolean,
//! list, secret, free text) and every kind of ending (success, failed check, error, a bug that sets
//! an undeclared output). The contract tests run its real binary; `cargo xtask generate` is tested
//! on its definition.

#![warn(missing_docs)]

use clap::{Parser, ValueEnum};
use gantry_actions::{
    Annotation, Branding, Context, Level, Outcome, OutputSpec, Secret, Tool, ToolSpec,
};

/// How the fixture run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ending {
    /// Exit 0 with every output set.
    Pass,
    /// A failed check: exit 1, outputs still written.
    Fail,
    /// An infrastructure error: exit 2, no outputs.
    Error,
    /// A bug: an output the tool does not declare (exit 2, no outputs).
    UndeclaredOutput,
}

/// Echo inputs back as outputs, to test the runner contract.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
pub struct Args {
    /// Image reference to echo back.
    #[arg(long, required = true, value_name = "REF")]
    pub image: String,

    /// Pretend only; echoed as the `dry-run` output.
    #[arg(long)]
    pub dry_run: bool,

    /// Tags to echo back.
    #[arg(long = "tags", value_name = "TAG")]
    pub tags: Vec<String>,

    /// A password that must never reach the log.
    #[arg(long, value_name = "SECRET")]
    pub registry_password: Option<Secret>,

    /// Free text, echoed as an output and as a notice annotation.
    #[arg(long)]
    pub message: Option<String>,

    /// How the run ends.
    #[arg(long, value_enum, default_value_t = Ending::Pass)]
    pub ending: Ending,

    /// Size of the step summary to write, in bytes.
    #[arg(long, default_value_t = 64)]
    pub summary_bytes: usize,
}

/// The fixture tool.
pub struct Fixture;

impl Tool for Fixture {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "fixture",
        description: "Echo inputs back as outputs, to test gantry's runner contract.",
        branding: Branding {
            icon: "check-circle",
            color: "green",
        },
        outputs: &[
            OutputSpec {
                name: "image",
                description: "The image input, unchanged.",
            },
            OutputSpec {
                name: "tags",
                description: "The tags, one per line.",
            },
            OutputSpec {
                name: "dry-run",
                description: "`true` or `false`.",
            },
            OutputSpec {
                name: "message",
                description: "The message input, unchanged.",
            },
            OutputSpec {
                name: "password-set",
                description: "Whether a password was given.",
            },
        ],
        secret_inputs: &["registry-password"],
        action_defaults: &[("tags", "latest")],
        publish_action: false,
    };

    async fn run(args: Args, ctx: &Context) -> anyhow::Result<Outcome> {
        {
            let _group = ctx.group("fixture: inputs");
            // The whole `Args`, secret included, goes to the log: redaction must hold.
            tracing::info!("fixture running in {:?} mode with {args:?}", ctx.mode);
        }
        if args.ending == Ending::Error {
            return Err(
                anyhow::anyhow!("the registry at {} did not answer", args.image)
                    .context("resolving the fixture image"),
            );
        }
        let mut outcome = Outcome::success()
            .output("image", args.image.clone())
            .output("tags", args.tags.join("\n"))
            .output("dry-run", args.dry_run.to_string())
            .output("password-set", args.registry_password.is_some().to_string())
            .summary(format!("## fixture\n\n{}", "x".repeat(args.summary_bytes)));
        if let Some(message) = &args.message {
            outcome = outcome.output("message", message.clone()).annotate(
                Annotation::new(Level::Notice, message.clone()).title("fixture: message"),
            );
        }
        Ok(match args.ending {
            Ending::Fail => Outcome {
                failure: Some(format!(
                    "expected a pass, found ending=fail for {}",
                    args.image
                )),
                ..outcome
            },
            Ending::UndeclaredOutput => outcome.output("not-declared", "x"),
            Ending::Pass | Ending::Error => outcome,
        })
    }
}

/// The fixture's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<Fixture>();
