//! The real-YAML corpus (`tests/corpus.txt`): every file edited as it is and in three variants
//! (CRLF line ends, a byte-order mark, its final newline toggled), each result compared byte for
//! byte with the expected splice; then ruamel.yaml, a parser that is not ours, loads every file
//! before and after and reports which nodes differ: exactly the changes the engine reported.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gantry_gitops::{Edited, Target, edit};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Debug)]
enum Expect {
    /// (line from 1, its new text without the line end)
    Lines(Vec<(usize, String)>),
    /// A refusal whose message contains this.
    Refused(String),
    /// Not written yet (only while blessing).
    Unset,
}

#[derive(Debug)]
struct Entry {
    file: String,
    target: String,
    expect: Expect,
}

fn manifest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus.txt")
}

/// The manifest: its header (comment lines before the first entry) and the entries.
fn manifest() -> (String, Vec<Entry>) {
    let text = std::fs::read_to_string(manifest_path()).expect("reading tests/corpus.txt");
    let mut header = String::new();
    let mut entries: Vec<Entry> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("file ") {
            let (file, target) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("corpus.txt:{}: `file PATH TARGET`", number + 1));
            entries.push(Entry {
                file: file.to_owned(),
                target: target.to_owned(),
                expect: Expect::Unset,
            });
        } else if let Some(rest) = line.strip_prefix("  ") {
            let entry = entries
                .last_mut()
                .unwrap_or_else(|| panic!("corpus.txt:{}: a line before any file", number + 1));
            if let Some(message) = rest.strip_prefix("refused: ") {
                entry.expect = Expect::Refused(message.to_owned());
            } else {
                let (at, new) = rest
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("corpus.txt:{}: `  LINE: TEXT`", number + 1));
                let at: usize = at
                    .parse()
                    .unwrap_or_else(|_| panic!("corpus.txt:{}: a line number", number + 1));
                match &mut entry.expect {
                    Expect::Lines(lines) => lines.push((at, new.to_owned())),
                    other => *other = Expect::Lines(vec![(at, new.to_owned())]),
                }
            }
        } else if entries.is_empty() {
            header.push_str(line);
            header.push('\n');
        } else {
            assert!(
                line.is_empty(),
                "corpus.txt:{}: unexpected {line:?}",
                number + 1
            );
        }
    }
    (header, entries)
}

fn target(spec: &str) -> Target {
    let (kind, value) = spec.split_once(' ').expect("`KIND VALUE`");
    match kind {
        "image" => Target::Image {
            repository: value.to_owned(),
        },
        "path" => Target::path(value, false).expect("a path"),
        "kustomize" => Target::KustomizeImage {
            name: value.to_owned(),
        },
        "marker" => Target::Marker {
            name: value.to_owned(),
        },
        other => panic!("unknown target kind {other:?}"),
    }
}

/// Where `cargo xtask setup` unpacked the corpus.
fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("GANTRY_YAML_CORPUS").map(PathBuf::from).expect(
        "GANTRY_YAML_CORPUS is not set: `cargo xtask test` (or `cargo xtask setup`) fetches the \
         corpus and sets it",
    );
    assert!(
        dir.join("kubernetes-1.20.2").is_dir(),
        "{} holds no kubernetes-1.20.2: run `cargo xtask setup`",
        dir.display()
    );
    dir.join("kubernetes-1.20.2")
}

/// `text` with the expected lines put in, each keeping its own line end.
fn expected_text(text: &str, lines: &[(usize, String)]) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for (index, line) in text.split_inclusive('\n').enumerate() {
        match lines.iter().find(|(at, _)| *at == index + 1) {
            Some((_, new)) => {
                let end = if line.ends_with("\r\n") {
                    "\r\n"
                } else if line.ends_with('\n') {
                    "\n"
                } else {
                    ""
                };
                let bom = if index == 0 && line.starts_with('\u{feff}') {
                    "\u{feff}"
                } else {
                    ""
                };
                out.push_str(bom);
                out.push_str(new);
                out.push_str(end);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The lines that differ between two texts of the same line count (an edit splices within lines).
fn changed_lines(before: &str, after: &str) -> Vec<(usize, String)> {
    let old: Vec<&str> = before.split('\n').collect();
    let new: Vec<&str> = after.split('\n').collect();
    assert_eq!(old.len(), new.len(), "an edit changed the number of lines");
    old.iter()
        .zip(&new)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(index, (_, b))| (index + 1, b.trim_end_matches('\r').to_owned()))
        .collect()
}

/// The variants of a real file: (name, text).
fn variants(text: &str) -> Vec<(&'static str, String)> {
    let crlf = text.replace('\n', "\r\n");
    let bom = format!("\u{feff}{text}");
    let toggled = match text.strip_suffix('\n') {
        Some(without) => without.to_owned(),
        None => format!("{text}\n"),
    };
    vec![
        ("as it is", text.to_owned()),
        ("CRLF", crlf),
        ("BOM", bom),
        ("final newline toggled", toggled),
    ]
}

fn check(entry: &Entry, original: &str) -> Option<Edited> {
    let targets = [target(&entry.target)];
    let mut first = None;
    for (variant, text) in variants(original) {
        let what = format!("{} ({}) {variant}", entry.file, entry.target);
        let result = edit(&entry.file, &text, &targets, DIGEST);
        match (&entry.expect, result) {
            (Expect::Lines(lines), Ok(edited)) => {
                let expected = expected_text(&text, lines);
                if edited.text != expected {
                    let got = changed_lines(&text, &edited.text);
                    panic!("{what}: changed lines {got:#?}, expected {lines:#?}");
                }
                assert_eq!(
                    edited.changes.len(),
                    lines.len(),
                    "{what}: one change per line"
                );
                let again = edit(&entry.file, &edited.text, &targets, DIGEST)
                    .unwrap_or_else(|e| panic!("{what}: a second edit: {e}"));
                assert!(
                    again.changes.is_empty() && again.text == edited.text,
                    "{what}: a second edit changed something"
                );
                first.get_or_insert(edited);
            }
            (Expect::Refused(part), Err(error)) => {
                let message = error.to_string();
                assert!(
                    message.contains(part.as_str())
                        && message.starts_with(&format!("{}:", entry.file)),
                    "{what}: refused with {message:?}, expected a message naming the file with {part:?}"
                );
            }
            (Expect::Unset, Ok(edited)) => {
                first.get_or_insert(edited);
            }
            (Expect::Unset, Err(_)) => {}
            (Expect::Lines(_), Err(error)) => panic!("{what}: refused: {error}"),
            (Expect::Refused(part), Ok(_)) => {
                panic!("{what}: edited, expected a refusal with {part:?}")
            }
        }
    }
    first
}

/// Writes the manifest again with the engine's results (`GANTRY_CORPUS_BLESS=1`).
fn bless(header: &str, entries: &[Entry], dir: &Path) {
    let mut out = header.to_owned();
    for entry in entries {
        let text = std::fs::read_to_string(dir.join(&entry.file)).expect("reading a corpus file");
        let _ = write!(out, "\nfile {} {}\n", entry.file, entry.target);
        match edit(&entry.file, &text, &[target(&entry.target)], DIGEST) {
            Ok(edited) => {
                for (line, new) in changed_lines(&text, &edited.text) {
                    let _ = writeln!(out, "  {line}: {new}");
                }
            }
            Err(error) => {
                let message = error.to_string();
                let reason = message
                    .split_once(": ")
                    .map_or(message.as_str(), |(_, r)| r);
                let _ = writeln!(out, "  refused: {reason}");
            }
        }
    }
    std::fs::write(manifest_path(), out).expect("writing tests/corpus.txt");
}

#[test]
fn real_files_are_edited_byte_for_byte_and_nothing_else_changes() {
    let (header, entries) = manifest();
    assert!(
        entries.len() >= 40,
        "the corpus holds {} files",
        entries.len()
    );
    let dir = corpus_dir();
    if std::env::var_os("GANTRY_CORPUS_BLESS").is_some() {
        bless(&header, &entries, &dir);
        return;
    }
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut pairs = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        assert!(
            !matches!(entry.expect, Expect::Unset),
            "{}: no expectation",
            entry.file
        );
        let original = std::fs::read_to_string(dir.join(&entry.file))
            .unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        if let Some(edited) = check(entry, &original) {
            let before = scratch.path().join(format!("{index}.before.yaml"));
            let after = scratch.path().join(format!("{index}.after.yaml"));
            std::fs::write(&before, &original).expect("writing");
            std::fs::write(&after, &edited.text).expect("writing");
            let changes: Vec<serde_json::Value> = edited
                .changes
                .iter()
                .map(|c| serde_json::json!([c.document, c.path, c.old, c.new]))
                .collect();
            pairs.push(serde_json::json!({
                "file": entry.file, "before": before, "after": after, "changes": changes,
            }));
        }
    }
    let list = scratch.path().join("pairs.json");
    std::fs::write(&list, serde_json::to_vec(&pairs).expect("JSON")).expect("writing");
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus_oracle.py");
    let output = std::process::Command::new("python3")
        .arg(&oracle)
        .arg(&list)
        .output()
        .expect("running python3 (the set-up's virtual environment, with ruamel.yaml)");
    assert!(
        output.status.success(),
        "ruamel.yaml's comparison failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let checked = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        checked.trim(),
        format!(
            "{} files: the nodes that differ are the changes reported",
            pairs.len()
        )
    );
}
