//! Workflow commands: annotations, masks and groups, written the way the runner parses them.
//!
//! The runner reads `::command key=value,…::message` lines from stdout and stderr. Untrusted text
//! inside a command must be escaped, or a newline in it ends the command and the rest of the text is
//! parsed as a command of its own (a registry error body could otherwise unmask a secret).

use std::fmt;
use std::io::Write;

/// Escapes a command's message: `%`, CR and LF, as `@actions/core` does.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property value: the message escapes plus `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Severity of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fails the run's check in the UI (`::error`).
    Error,
    /// A warning (`::warning`).
    Warning,
    /// A notice (`::notice`).
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        }
    }
}

/// An annotation shown on the run and, with a file, on the changed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// How severe it is.
    pub level: Level,
    /// The text (escaped when written).
    pub message: String,
    /// A title shown above the message.
    pub title: Option<String>,
    /// The file it points at, relative to the repository.
    pub file: Option<String>,
    /// The first line it points at.
    pub line: Option<u32>,
    /// The last line it points at.
    pub end_line: Option<u32>,
    /// The first column it points at.
    pub col: Option<u32>,
    /// The last column it points at.
    pub end_column: Option<u32>,
}

impl Annotation {
    /// An annotation of `level` saying `message`.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            title: None,
            file: None,
            line: None,
            end_line: None,
            col: None,
            end_column: None,
        }
    }

    #[must_use]
    /// With a title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    #[must_use]
    /// Pointing at `file`, at `line` when given.
    pub fn file(mut self, file: impl Into<String>, line: Option<u32>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let numbers = [
            ("line", self.line),
            ("endLine", self.end_line),
            ("col", self.col),
            ("endColumn", self.end_column),
        ];
        let properties: Vec<String> = [("title", self.title.clone()), ("file", self.file.clone())]
            .into_iter()
            .chain(
                numbers
                    .into_iter()
                    .map(|(k, v)| (k, v.map(|n| n.to_string()))),
            )
            .filter_map(|(key, value)| value.map(|v| format!("{key}={}", escape_property(&v))))
            .collect();
        let separator = if properties.is_empty() { "" } else { " " };
        write!(
            f,
            "::{}{separator}{}::{}",
            self.level.command(),
            properties.join(","),
            escape_data(&self.message)
        )
    }
}

/// The lines that make the runner mask `secret` in all later output.
///
/// The runner matches masks line by line, so a multi-line secret is masked whole and line by line.
pub fn add_mask_lines(secret: &str) -> Vec<String> {
    let mut lines = Vec::new();
    if secret.is_empty() {
        return lines;
    }
    lines.push(format!("::add-mask::{}", escape_data(secret)));
    if secret.contains(['\n', '\r']) {
        lines.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| format!("::add-mask::{}", escape_data(l))),
        );
    }
    lines
}

/// Writes workflow commands to stdout, where the runner reads them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commands;

impl Commands {
    fn emit(line: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves nothing to tell; the command is best effort like the runner's own.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Writes `annotation` as its workflow command.
    pub fn annotate(annotation: &Annotation) {
        Self::emit(&annotation.to_string());
    }

    /// Masks `secret` (whole and line by line) in all later output.
    pub fn add_mask(secret: &str) {
        for line in add_mask_lines(secret) {
            Self::emit(&line);
        }
    }

    /// Opens a collapsible group; it closes when the guard drops.
    pub fn group(name: &str) -> Group {
        Self::emit(&format!("::group::{}", escape_data(name)));
        Group(())
    }
}

/// Closes its `::group::` on drop.
#[derive(Debug)]
pub struct Group(());

impl Drop for Group {
    fn drop(&mut self) {
        Commands::emit("::endgroup::");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_percent_cr_lf_in_messages_and_more_in_properties() {
        assert_eq!(escape_data("100%\r\ndone"), "100%25%0D%0Adone");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn annotation_with_all_properties() {
        let mut a = Annotation::new(Level::Error, "digest mismatch\nexpected sha256:a")
            .title("verify: sig")
            .file(".github/gantry.yml", Some(12));
        a.col = Some(3);
        assert_eq!(
            a.to_string(),
            "::error title=verify%3A sig,file=.github/gantry.yml,line=12,col=3::digest mismatch%0Aexpected sha256:a"
        );
    }

    #[test]
    fn annotation_without_properties_has_no_space() {
        assert_eq!(
            Annotation::new(Level::Notice, "hi").to_string(),
            "::notice::hi"
        );
        assert_eq!(
            Annotation::new(Level::Warning, "w").to_string(),
            "::warning::w"
        );
    }

    #[test]
    fn multiline_secret_is_masked_whole_and_per_line() {
        assert_eq!(
            add_mask_lines("line-one\n line-two \n"),
            vec![
                "::add-mask::line-one%0A line-two %0A",
                "::add-mask::line-one",
                "::add-mask::line-two"
            ]
        );
        assert!(add_mask_lines("").is_empty());
    }
}
