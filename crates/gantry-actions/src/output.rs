//! The output layer: every line gantry prints that is not one of its own workflow commands goes
//! through here, so that text from outside (a registry's error body, a certificate's identity, a
//! gate's output) can never become a command the runner obeys.
//!
//! GitHub's runner takes a line as a command when it starts with `::` after leading white space,
//! or when it holds `##[` anywhere (the older form); Azure Pipelines takes `##vso[` anywhere.
//! [`neutralise`] breaks each of those, visibly and without dropping text: a line that would start
//! with `::` is quoted with `> `, and `##[` / `##vso[` become `# #[` / `# #vso[`. It applies on
//! every system, not only inside Actions: the same binary runs on Azure DevOps and GitLab, and a
//! laptop loses nothing by it. Gantry's own commands (`::error`, `::add-mask::`, `::group::`) are
//! written by [`crate::Commands`], never through here.

/// `text` with every line made harmless to a CI log parser.
pub fn neutralise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let start = line.trim_start();
        if start.starts_with("::") {
            out.push_str("> ");
        }
        out.push_str(&neutralise_markers(line, "# #"));
    }
    out
}

/// Breaks `##[` and `##vso[` with `replacement` for the `##`.
fn neutralise_markers(line: &str, replacement: &str) -> String {
    if !line.contains("##") {
        return line.to_owned();
    }
    line.replace("##[", &format!("{replacement}["))
        .replace("##vso[", &format!("{replacement}vso["))
}

/// A JSON document on one line, with `##[`/`##vso[` written as `#\u0023[`: the same JSON value,
/// no command. (A JSON line never starts with `::`.)
pub fn neutralise_json(line: &str) -> String {
    neutralise_markers(line, "#\\u0023")
}

/// Prints `text` and a newline on stdout.
#[expect(clippy::print_stdout, reason = "this is the output layer")]
pub fn out(text: &str) {
    println!("{}", neutralise(text));
}

/// Prints a JSON line on stdout.
#[expect(clippy::print_stdout, reason = "this is the output layer")]
pub fn out_json(line: &str) {
    println!("{}", neutralise_json(line));
}

/// Prints `text` and a newline on stderr.
#[expect(clippy::print_stderr, reason = "this is the output layer")]
pub fn err(text: &str) {
    eprintln!("{}", neutralise(text));
}

/// A writer for `tracing` that neutralises what it is given (one event per write).
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeStderr;

impl std::io::Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(neutralise(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SafeStderr {
    type Writer = SafeStderr;
    fn make_writer(&'a self) -> Self::Writer {
        SafeStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_in_untrusted_text_are_broken_visibly() {
        let hostile = "MANIFEST_INVALID bad\n::set-output name=verified::true\n  ::stop-commands::x\nok ##[error]no ##vso[task.setvariable variable=x]1";
        let safe = neutralise(hostile);
        assert_eq!(
            safe,
            "MANIFEST_INVALID bad\n> ::set-output name=verified::true\n>   ::stop-commands::x\nok # #[error]no # #vso[task.setvariable variable=x]1"
        );
        for line in safe.lines() {
            assert!(!line.trim_start().starts_with("::"), "{line}");
            assert!(!line.contains("##[") && !line.contains("##vso["), "{line}");
        }
        assert_eq!(neutralise("plain: text"), "plain: text");
    }

    #[test]
    fn json_keeps_its_value() {
        let line = serde_json::json!({"error": "x ##[set-output name=a]b"}).to_string();
        let safe = neutralise_json(&line);
        assert!(!safe.contains("##["), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back["error"], "x ##[set-output name=a]b");
    }
}
