//! The runner's file commands: `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`.
//!
//! Outputs are written in one append at the end of a step, so a step that fails half-way leaves no
//! partial outputs behind. Multi-line values use a heredoc with a random delimiter; a value that
//! contains the delimiter is refused rather than written ambiguously.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The runner's cap on one step's summary file.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum FileCommandError {
    #[error(
        "output name {name:?} is not valid: it must be non-empty and contain no '=', '<<' or line break"
    )]
    InvalidName { name: String },
    #[error("output {name:?} contains the heredoc delimiter; refusing to write an ambiguous value")]
    DelimiterInValue { name: String },
    #[error("could not get random bytes for a heredoc delimiter")]
    Random(#[source] getrandom::Error),
    #[error("writing {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("line {line} of the output file: {reason}")]
    Parse { line: usize, reason: String },
}

fn random_delimiter() -> Result<String, FileCommandError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(FileCommandError::Random)?;
    let mut delimiter = String::from("ghadelimiter_");
    for byte in bytes {
        let _ = write!(delimiter, "{byte:02x}");
    }
    Ok(delimiter)
}

/// Renders outputs in the runner's `GITHUB_OUTPUT` format.
pub fn render_outputs<'a>(
    outputs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, FileCommandError> {
    let mut text = String::new();
    for (name, value) in outputs {
        if name.is_empty()
            || name.contains('=')
            || name.contains("<<")
            || name.contains(['\n', '\r'])
        {
            return Err(FileCommandError::InvalidName {
                name: name.to_owned(),
            });
        }
        if value.contains(['\n', '\r']) {
            let delimiter = random_delimiter()?;
            if value.contains(&delimiter) {
                return Err(FileCommandError::DelimiterInValue {
                    name: name.to_owned(),
                });
            }
            let _ = write!(text, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
        } else {
            let _ = writeln!(text, "{name}={value}");
        }
    }
    Ok(text)
}

/// Appends `text` to `path` in a single write.
pub fn append(path: &Path, text: &str) -> Result<(), FileCommandError> {
    let io = |source| FileCommandError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)
}

/// Parses a `GITHUB_OUTPUT` file by the runner's rules (`FileCommandManager`'s key-value reader):
/// `name=value` when `=` comes before any `<<`, else `name<<DELIM` up to a line equal to `DELIM`;
/// empty lines are skipped; the newline before the delimiter is not part of the value. Later
/// values of a name replace earlier ones.
pub fn parse_outputs(text: &str) -> Result<BTreeMap<String, String>, FileCommandError> {
    let lines = split_lines_keeping_ends(text);
    let mut values = BTreeMap::new();
    let mut index = 0;
    while index < lines.len() {
        let (line, _) = lines[index];
        index += 1;
        if line.is_empty() {
            continue;
        }
        let line_no = index;
        let err = |reason: String| FileCommandError::Parse {
            line: line_no,
            reason,
        };
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let (key, value) = (&line[..e], &line[e + 1..]);
                if key.is_empty() {
                    return Err(err(format!(
                        "invalid format {line:?}: name must not be empty"
                    )));
                }
                values.insert(key.to_owned(), value.to_owned());
            }
            (_, Some(h)) => {
                let (key, delimiter) = (&line[..h], &line[h + 2..]);
                if key.is_empty() || delimiter.is_empty() {
                    return Err(err(format!("invalid format {line:?}")));
                }
                let mut value = String::new();
                let mut pending_newline: Option<&str> = None;
                loop {
                    let Some(&(next, newline)) = lines.get(index) else {
                        return Err(err(format!("matching delimiter not found {delimiter:?}")));
                    };
                    index += 1;
                    if next == delimiter {
                        break;
                    }
                    if newline.is_empty() {
                        return Err(err("EOF marker missing new line".to_owned()));
                    }
                    if let Some(nl) = pending_newline.take() {
                        value.push_str(nl);
                    }
                    value.push_str(next);
                    pending_newline = Some(newline);
                }
                values.insert(key.to_owned(), value);
            }
            _ => return Err(err(format!("invalid format {line:?}"))),
        }
    }
    Ok(values)
}

/// Splits into `(line, line_ending)` pairs; the last line may have an empty ending.
fn split_lines_keeping_ends(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('\n') {
        let (line, ending) = match rest[..i].strip_suffix('\r') {
            Some(line) => (line, "\r\n"),
            None => (&rest[..i], "\n"),
        };
        out.push((line, ending));
        rest = &rest[i + 1..];
    }
    if !rest.is_empty() {
        out.push((rest, ""));
    }
    out
}

/// Cuts a summary to the runner's cap, at a character boundary, with a closing note.
pub fn cap_summary(markdown: &str) -> String {
    if markdown.len() <= SUMMARY_LIMIT {
        return markdown.to_owned();
    }
    let note = format!(
        "\n\n> [!WARNING]\n> Summary truncated: it was {} bytes, over the runner's limit of {SUMMARY_LIMIT}.\n",
        markdown.len()
    );
    let mut cut = SUMMARY_LIMIT - note.len();
    while !markdown.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{note}", &markdown[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multiline_values_round_trip_through_the_runner_rules() {
        let outputs = [
            ("digest", "sha256:abc"),
            ("report", "line 1\nline 2=x\n\nline<<4"),
            ("empty", ""),
            ("crlf", "a\r\nb"),
            ("trailing", "ends with newline\n"),
        ];
        let text = render_outputs(outputs).expect("render");
        let parsed = parse_outputs(&text).expect("parse");
        for (name, value) in outputs {
            // The runner splits on LF and CRLF and joins with the original line endings.
            assert_eq!(parsed[name], value, "{name}");
        }
        assert!(text.contains("report<<ghadelimiter_"));
        assert!(text.starts_with("digest=sha256:abc\n"));
    }

    #[test]
    fn delimiters_differ_between_values() {
        let text = render_outputs([("a", "1\n2"), ("b", "3\n4")]).expect("render");
        let delims: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once("<<").map(|(_, d)| d))
            .collect();
        assert_eq!(delims.len(), 2);
        assert_ne!(delims[0], delims[1]);
    }

    #[test]
    fn refuses_bad_names() {
        for name in ["", "a=b", "a<<b", "a\nb"] {
            assert!(matches!(
                render_outputs([(name, "v")]),
                Err(FileCommandError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn parser_rejects_what_the_runner_rejects() {
        assert!(parse_outputs("=value\n").is_err());
        assert!(parse_outputs("name<<EOF\nvalue\n").is_err());
        assert!(parse_outputs("no separator\n").is_err());
        assert!(parse_outputs("name<<\nx\n").is_err());
        // `=` before `<<` means a plain value that happens to contain `<<`.
        assert_eq!(parse_outputs("a=b<<c\n").expect("parse")["a"], "b<<c");
    }

    #[test]
    fn summary_is_capped_at_a_char_boundary_with_a_note() {
        let big = "é".repeat(SUMMARY_LIMIT);
        let capped = cap_summary(&big);
        assert!(capped.len() <= SUMMARY_LIMIT);
        assert!(capped.contains("Summary truncated"));
        assert_eq!(cap_summary("small"), "small");
    }
}
