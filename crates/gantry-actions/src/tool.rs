//! What a tool is: a clap `Args`, a spec of its outputs, and an async `run`.

use std::future::Future;
use std::pin::Pin;

use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

use crate::commands::Annotation;
use crate::context::GitHubContext;

/// How a process ends: 0 success, 1 a check failed, 2 usage or infrastructure error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exit 0: everything checked out.
    Success,
    /// Exit 1: a check failed.
    Failure,
    /// Exit 2: bad usage, or something could not be reached or read.
    Error,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Error => 2,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        Self::from(status.code())
    }
}

/// Icon and colour of an action on the Marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branding {
    /// A Feather icon name.
    pub icon: &'static str,
    /// A Marketplace colour name.
    pub color: &'static str,
}

/// One declared output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSpec {
    /// The output's name (kebab-case).
    pub name: &'static str,
    /// What it holds, for `action.yml` and the README.
    pub description: &'static str,
}

/// What a tool declares about itself beyond its clap definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// Subcommand, action folder and binary name, kebab-case.
    pub name: &'static str,
    /// One sentence for `action.yml`'s `description`.
    pub description: &'static str,
    /// Icon and colour on the Marketplace.
    pub branding: Branding,
    /// Every output the tool may set, in the order they are written.
    pub outputs: &'static [OutputSpec],
    /// Inputs whose values are masked in the runner's log before anything else runs.
    pub secret_inputs: &'static [&'static str],
    /// Defaults that exist only in `action.yml`, such as `github-token: ${{ github.token }}`.
    pub action_defaults: &'static [(&'static str, &'static str)],
    /// Whether `cargo xtask generate` writes `actions/<name>/`.
    pub publish_action: bool,
}

/// Which front end runs the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inside a GitHub Actions step: inputs from `INPUT_*`, outputs to the runner's files.
    Action,
    /// A plain command line (another CI system, a laptop).
    Cli,
}

/// Everything a tool may know about where it runs.
#[derive(Debug, Clone)]
pub struct Context {
    /// The front end that runs the tool.
    pub mode: Mode,
    /// What the runner says about the run (empty outside Actions).
    pub github: GitHubContext,
}

impl Context {
    /// An OIDC token for `audience` from GitHub Actions, masked in the runner's log before it
    /// is used (in action mode: nothing else in the process knows to mask it).
    pub async fn id_token(
        &self,
        audience: &str,
    ) -> Result<gantry_secret::Secret, crate::OidcError> {
        let token = self.github.request_id_token(audience).await?;
        if self.mode == Mode::Action {
            crate::Commands::add_mask(token.expose());
        }
        Ok(token)
    }

    /// A collapsible `::group::` in action mode; nothing on a plain command line, where stdout
    /// belongs to the tool's output (`--json`).
    pub fn group(&self, name: &str) -> Option<crate::commands::Group> {
        (self.mode == Mode::Action).then(|| crate::commands::Commands::group(name))
    }
}

/// The result of a run that completed: its outputs, its summary and whether its checks passed.
///
/// A failed check is an `Outcome` with `failure` set (exit 1, outputs still written, as
/// `verified=false` must be); an `Err` from `run` is an infrastructure or usage error (exit 2, no
/// outputs at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `(name, value)` of every output set, in the order set.
    pub outputs: Vec<(String, String)>,
    /// Markdown for the step summary.
    pub summary: Option<String>,
    /// Why the check failed (exit 1); `None` on success.
    pub failure: Option<String>,
    /// Annotations to write besides the failure's.
    pub annotations: Vec<Annotation>,
    /// One sentence that says what happened, for people: the first line of the plain output and
    /// of the step's log.
    pub headline: Option<String>,
    /// The failure is not a failed check but something that stopped the run from deciding
    /// (exit 2), reported with its outputs and summary all the same.
    pub undecided: bool,
}

impl Outcome {
    /// A passing outcome with nothing set yet.
    pub fn success() -> Self {
        Self::default()
    }

    /// A completed run whose check failed: exit 1 with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            failure: Some(message.into()),
            ..Self::default()
        }
    }

    /// A completed run that could not decide (exit 2 with `message`), whose outputs and summary
    /// are still written: canary-watch holding a canary it could not judge.
    pub fn undecided(message: impl Into<String>) -> Self {
        Self {
            failure: Some(message.into()),
            undecided: true,
            ..Self::default()
        }
    }

    /// Every output of a tool at once, typed (see [`crate::outputs!`]).
    #[must_use]
    pub fn with_outputs(mut self, outputs: &impl crate::Outputs) -> Self {
        self.outputs.extend(
            outputs
                .pairs()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        self
    }

    #[must_use]
    /// One output by name (tools use [`Self::with_outputs`]; names are checked against the spec).
    pub fn output(mut self, name: &str, value: impl Into<String>) -> Self {
        self.outputs.push((name.to_owned(), value.into()));
        self
    }

    #[must_use]
    /// The sentence that says what happened.
    pub fn headline(mut self, sentence: impl Into<String>) -> Self {
        self.headline = Some(sentence.into());
        self
    }

    #[must_use]
    /// The step summary (Markdown).
    pub fn summary(mut self, markdown: impl Into<String>) -> Self {
        self.summary = Some(markdown.into());
        self
    }

    #[must_use]
    /// An annotation to write.
    pub fn annotate(mut self, annotation: Annotation) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// The outputs set so far, in order.
    pub fn outputs(&self) -> &[(String, String)] {
        &self.outputs
    }

    /// Why the outcome failed, when it did.
    pub fn failure_message(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Exit 2 when undecided, 1 when a check failed, else 0.
    pub fn status(&self) -> ExitStatus {
        if self.failure.is_some() && self.undecided {
            ExitStatus::Error
        } else if self.failure.is_some() {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }

    /// Checks that every output is declared and set once, and orders them as declared.
    pub fn checked_outputs(&self, spec: &ToolSpec) -> anyhow::Result<Vec<(&str, &str)>> {
        let mut ordered = Vec::with_capacity(self.outputs.len());
        for (name, _) in &self.outputs {
            anyhow::ensure!(
                spec.outputs.iter().any(|o| o.name == name),
                "tool {} set output {name:?}, which it does not declare (declared: {})",
                spec.name,
                spec.outputs
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            anyhow::ensure!(
                self.outputs.iter().filter(|(n, _)| n == name).count() == 1,
                "tool {} set output {name:?} more than once",
                spec.name
            );
        }
        for declared in spec.outputs {
            if let Some((name, value)) = self.outputs.iter().find(|(n, _)| n == declared.name) {
                ordered.push((name.as_str(), value.as_str()));
            }
        }
        Ok(ordered)
    }
}

/// A gantry tool. Its `Args` long flags are exactly its kebab-case input names.
pub trait Tool: 'static {
    /// The tool's arguments: its command line and, through the runner contract, its inputs.
    type Args: clap::Parser + Send + 'static;
    /// Name, description, outputs and action settings.
    const SPEC: ToolSpec;
    /// Runs the tool: `Ok` with the outcome of a completed run (passed or failed), `Err` for usage or infrastructure errors.
    fn run(args: Self::Args, ctx: &Context)
    -> impl Future<Output = anyhow::Result<Outcome>> + Send;
}

type RunFuture = Pin<Box<dyn Future<Output = anyhow::Result<Outcome>> + Send>>;

/// A tool with its types erased, so a multi-call binary can hold a list of them.
#[derive(Clone, Copy)]
pub struct ToolEntry {
    /// The tool's spec.
    pub spec: &'static ToolSpec,
    command: fn() -> Command,
    run: fn(ArgMatches, Context) -> RunFuture,
}

impl std::fmt::Debug for ToolEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolEntry")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

fn run_erased<T: Tool>(matches: ArgMatches, ctx: Context) -> RunFuture {
    Box::pin(async move {
        let args = T::Args::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!("{e}"))?;
        T::run(args, &ctx).await
    })
}

impl ToolEntry {
    /// The entry of tool `T`.
    pub const fn of<T: Tool>() -> Self {
        Self {
            spec: &T::SPEC,
            command: <T::Args as CommandFactory>::command,
            run: run_erased::<T>,
        }
    }

    /// The same tool described by another spec (tests of generated files use this).
    #[must_use]
    pub const fn with_spec(self, spec: &'static ToolSpec) -> Self {
        Self { spec, ..self }
    }

    /// The tool's clap command, named after the tool.
    pub fn command(&self) -> Command {
        (self.command)()
            .name(self.spec.name)
            .bin_name(self.spec.name)
    }

    pub(crate) fn run(&self, matches: ArgMatches, ctx: Context) -> RunFuture {
        (self.run)(matches, ctx)
    }
}
