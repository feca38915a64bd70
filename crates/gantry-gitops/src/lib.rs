//! GitOps promotion: the digest written into the files a GitOps tool (Argo CD, Flux) deploys
//! from, changing nothing else.
//!
//! **Edits are splices.** The parser finds where each target scalar starts; the YAML grammar says
//! where it ends ([`splice`]); the new value replaces exactly those bytes, in the old value's
//! style. Every other byte — comments, quoting, indentation, anchors, CRLF line ends, a byte-order
//! mark, a final newline or its absence, other documents of the stream, flow collections — stays
//! as it was. Then the result is parsed again and compared node by node with the original: the
//! targets hold the new value and no other node changed, or the edit is refused.
//!
//! Refused, with the file's line: a target written through an alias or that anchors a node others
//! alias (the change would reach them too), a block scalar, a plain scalar folded over several
//! lines, a target that is not there (unless `create` asks for a new key in an existing block
//! mapping), a value that holds neither a digest nor a reference with one.

#![warn(missing_docs)]

pub mod argocd;
pub mod git;
pub mod github;
pub mod message;
pub mod pull;
pub mod repo;
pub mod splice;
pub mod yaml;

use std::collections::HashMap;

use yaml::{Kind, Node, Step, Style};

/// What an edit points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path of keys (`image.digest`, `containers[0].image`) in every document that has it
    /// (Helm values).
    Path {
        /// The steps.
        path: Vec<Step>,
        /// Add the last key to its existing (block) mapping when it is missing.
        create: bool,
    },
    /// A kustomization's `images[]` entry whose `name` is this: its `digest` (added when missing).
    KustomizeImage {
        /// The image name the entry matches.
        name: String,
    },
    /// Every `image:` field whose repository is this (plain manifests).
    Image {
        /// The repository (`ghcr.io/acme/billing`).
        repository: String,
    },
    /// The value on each line tagged `# gantry: NAME`, or Flux's `# {"$imagepolicy": "ns:NAME"}`.
    Marker {
        /// The marker's name.
        name: String,
    },
}

impl Target {
    /// Parses a dotted path: `image.digest`, `containers[0].image`, `a."dotted.key".b`.
    pub fn path(text: &str, create: bool) -> Result<Self, String> {
        let mut steps = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("an empty path".to_owned());
        }
        while !rest.is_empty() {
            let (key, after) = if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| format!("path {text:?}: an unclosed quote"))?;
                (quoted[..end].to_owned(), &quoted[end + 1..])
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                (rest[..end].to_owned(), &rest[end..])
            };
            if !key.is_empty() {
                steps.push(Step::Key(key));
            }
            rest = after;
            while let Some(inner) = rest.strip_prefix('[') {
                let end = inner
                    .find(']')
                    .ok_or_else(|| format!("path {text:?}: an unclosed ["))?;
                let index = inner[..end]
                    .parse()
                    .map_err(|_| format!("path {text:?}: {:?} is not an index", &inner[..end]))?;
                steps.push(Step::Index(index));
                rest = &inner[end + 1..];
            }
            if let Some(after) = rest.strip_prefix('.') {
                if after.is_empty() || after.starts_with(['.', '[']) {
                    return Err(format!("path {text:?}: an empty key"));
                }
                rest = after;
            } else if !rest.is_empty() {
                return Err(format!("path {text:?}: unexpected {rest:?}"));
            }
        }
        Ok(Self::Path {
            path: steps,
            create,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path { path, .. } => write!(f, "path {}", yaml::show(path)),
            Self::KustomizeImage { name } => write!(f, "kustomize image {name}"),
            Self::Image { repository } => write!(f, "image fields of {repository}"),
            Self::Marker { name } => write!(f, "marker {name}"),
        }
    }
}

/// One scalar changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file.
    pub file: String,
    /// Its line (from 1).
    pub line: usize,
    /// Its column (from 1, in characters).
    pub column: usize,
    /// The document of the stream (from 0).
    pub document: usize,
    /// Its path.
    pub path: String,
    /// The value before.
    pub old: String,
    /// The value after.
    pub new: String,
}

/// An edited file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The new text (the old one when nothing changed).
    pub text: String,
    /// What changed, in file order; empty when every target already held the digest.
    pub changes: Vec<Change>,
    /// The digest the targets held before (the first one found), when they held one.
    pub previous: Option<String>,
}

/// Why a file was not edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file is not YAML.
    #[error("{file}:{line}: not YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// The edit cannot be made safely.
    #[error("{file}:{line}: {message}")]
    Refused {
        /// The file.
        file: String,
        /// The line (0 when the whole file is meant).
        line: usize,
        /// Why.
        message: String,
    },
}

/// A digest-like value: `sha256:` and 64 hex digits (or any `algorithm:hex` the caller gives).
fn is_digest(value: &str) -> bool {
    value.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && hex.len() >= 32
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// A reference's repository: without `@digest` and without a `:tag` after the last `/`.
fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// The new value for a scalar that holds a digest, a reference with one, or (for `reference`
/// targets) a reference with a tag: `Ok((new, old digest))`.
fn replaced(old: &str, digest: &str, reference: bool) -> Result<(String, Option<String>), String> {
    if is_digest(old) {
        return Ok((digest.to_owned(), Some(old.to_owned())));
    }
    if let Some((name, old_digest)) = old.split_once('@') {
        return Ok((format!("{name}@{digest}"), Some(old_digest.to_owned())));
    }
    if old.is_empty() && !reference {
        return Ok((digest.to_owned(), None));
    }
    if reference && !old.is_empty() {
        return Ok((format!("{}@{digest}", repository_of(old)), None));
    }
    Err(format!(
        "holds {old:?}, which is neither a digest nor a reference with one"
    ))
}

/// The source text with a byte-order mark set apart: (BOM bytes, the rest).
fn split_bom(text: &str) -> (usize, &str) {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => ('\u{feff}'.len_utf8(), rest),
        None => (0, text),
    }
}

/// Line and column (from 1) of byte `offset`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |newline| &before[newline + 1..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// One planned replacement: bytes `start..end` (in the parsed text) become `new`.
struct Splice {
    start: usize,
    end: usize,
    new_text: String,
    change: Change,
    key: (usize, Vec<Step>),
    new_value: String,
}

/// One planned insertion of a new key.
struct Insert {
    at: usize,
    line: String,
    key: (usize, Vec<Step>),
    value: String,
}

struct Planner<'a> {
    file: &'a str,
    text: &'a str,
    nodes: &'a [Node],
    digest: &'a str,
    splices: Vec<Splice>,
    inserts: Vec<Insert>,
    previous: Option<String>,
    /// The stream's line end (`\r\n` when its first line ends so).
    newline: &'static str,
}

impl Planner<'_> {
    fn refuse(&self, offset: usize, message: String) -> EditError {
        EditError::Refused {
            file: self.file.to_owned(),
            line: position(self.text, offset).0,
            message,
        }
    }

    fn whole(&self, message: String) -> EditError {
        EditError::Refused {
            file: self.file.to_owned(),
            line: 0,
            message,
        }
    }

    /// Plans the replacement of `node`'s value by what [`replaced`] makes of it.
    fn replace(&mut self, node: &Node, reference: bool, what: &str) -> Result<(), EditError> {
        let key_offset = node.key_start.unwrap_or(0);
        let (value, style, start) = match &node.kind {
            Kind::Scalar {
                value,
                style,
                start,
            } => (value, *style, *start),
            Kind::Alias => {
                return Err(self.refuse(
                    key_offset,
                    format!("{what}: {} is an alias (*name): writing through it would change the anchored node and every other alias of it", yaml::show(&node.path)),
                ));
            }
            Kind::Mapping | Kind::Sequence => {
                return Err(self.refuse(
                    key_offset,
                    format!(
                        "{what}: {} is a mapping or sequence, not a value",
                        yaml::show(&node.path)
                    ),
                ));
            }
        };
        if node.anchored && self.nodes.iter().any(|n| n.kind == Kind::Alias) {
            return Err(self.refuse(
                start,
                format!("{what}: {} is anchored (&name) and the file has aliases: the change would reach them too", yaml::show(&node.path)),
            ));
        }
        let (start, end) = splice::scalar_range(self.text, start, style, value).map_err(|m| {
            self.refuse(start, format!("{what}: {} is {m}", yaml::show(&node.path)))
        })?;
        let (new_value, old_digest) = replaced(value, self.digest, reference)
            .map_err(|m| self.refuse(start, format!("{what}: {} {m}", yaml::show(&node.path))))?;
        if self.previous.is_none() {
            self.previous.clone_from(&old_digest);
        }
        let key = (node.document, node.path.clone());
        if self.splices.iter().any(|s| s.key == key) || new_value == *value {
            return Ok(());
        }

        let (line, column) = position(self.text, start);
        self.splices.push(Splice {
            start,
            end,
            new_text: splice::render(&new_value, style),
            change: Change {
                file: self.file.to_owned(),
                line,
                column,
                document: node.document,
                path: yaml::show(&node.path),
                old: value.clone(),
                new: new_value.clone(),
            },
            key,
            new_value,
        });
        Ok(())
    }

    /// Plans a new `key: value` line in the block mapping at `parent` of `document`, after the
    /// line of its first entry, at that entry's indentation.
    fn insert(
        &mut self,
        document: usize,
        parent: &[Step],
        key: &str,
        what: &str,
    ) -> Result<(), EditError> {
        let first = self
            .nodes
            .iter()
            .filter(|n| {
                n.document == document
                    && n.path.len() == parent.len() + 1
                    && n.path.starts_with(parent)
            })
            .find(|n| n.key_start.is_some())
            .ok_or_else(|| {
                self.whole(format!(
                    "{what}: {} has no entry to place {key} beside",
                    yaml::show(parent)
                ))
            })?;
        let key_offset = first.key_start.unwrap_or_default();
        let line_start = self.text[..key_offset].rfind('\n').map_or(0, |n| n + 1);
        let before_key = &self.text[line_start..key_offset];
        if before_key.contains(['{', '[', ',']) || before_key.contains('#') {
            return Err(self.refuse(
                key_offset,
                format!(
                    "{what}: {} is a flow mapping: add {key} by hand",
                    yaml::show(parent)
                ),
            ));
        }
        let Kind::Scalar {
            value,
            style,
            start,
        } = &first.kind
        else {
            return Err(self.refuse(
                key_offset,
                format!(
                    "{what}: the first entry of {} is not a one-line value: add {key} by hand",
                    yaml::show(parent)
                ),
            ));
        };
        let (_, end) = splice::scalar_range(self.text, *start, *style, value)
            .map_err(|m| self.refuse(key_offset, format!("{what}: {m}")))?;
        let line_end = self.text[end..]
            .find('\n')
            .map_or(self.text.len(), |n| end + n);
        let line_end = if self.text[..line_end].ends_with('\r') {
            line_end - 1
        } else {
            line_end
        };
        let indent = before_key.chars().count();
        let mut path = parent.to_vec();
        path.push(Step::Key(key.to_owned()));
        let rendered = splice::render(self.digest, Style::Plain);
        self.inserts.push(Insert {
            at: line_end,
            line: format!("{}{}{key}: {rendered}", self.newline, " ".repeat(indent)),
            key: (document, path),
            value: self.digest.to_owned(),
        });
        Ok(())
    }

    /// A path in every document that has it (or its parent mapping, with `create`).
    fn plan_path(&mut self, path: &[Step], create: bool, what: &str) -> Result<bool, EditError> {
        let mut documents: Vec<usize> = self.nodes.iter().map(|n| n.document).collect();
        documents.dedup();
        let mut matched = false;
        for document in documents {
            if let Some(node) = self
                .nodes
                .iter()
                .find(|n| n.document == document && n.path == path)
            {
                matched = true;
                let node = node.clone();
                self.replace(&node, false, what)?;
            } else if create
                && let Some((Step::Key(key), parent)) = path.split_last()
                && self
                    .nodes
                    .iter()
                    .any(|n| n.document == document && n.path == parent && n.kind == Kind::Mapping)
            {
                matched = true;
                self.insert(document, parent, key, what)?;
            }
        }
        Ok(matched)
    }

    /// Each `images[]` entry named `name`: its `digest`, added when missing.
    fn plan_kustomize(&mut self, name: &str, what: &str) -> Result<bool, EditError> {
        let entries: Vec<(usize, Vec<Step>)> = self
            .nodes
            .iter()
            .filter(|n| {
                n.path.len() == 3
                    && n.path[0] == Step::Key("images".to_owned())
                    && matches!(n.path[1], Step::Index(_))
                    && n.path[2] == Step::Key("name".to_owned())
                    && matches!(&n.kind, Kind::Scalar { value, .. } if value == name)
            })
            .map(|n| (n.document, n.path[..2].to_vec()))
            .collect();
        for (document, entry) in &entries {
            let mut digest_path = entry.clone();
            digest_path.push(Step::Key("digest".to_owned()));
            if let Some(node) = self
                .nodes
                .iter()
                .find(|n| n.document == *document && n.path == digest_path)
            {
                let node = node.clone();
                self.replace(&node, false, what)?;
            } else {
                self.insert(*document, entry, "digest", what)?;
            }
        }
        Ok(!entries.is_empty())
    }

    fn plan(&mut self, target: &Target) -> Result<(), EditError> {
        let what = target.to_string();
        let mut matched = false;
        match target {
            Target::Path { path, create } => matched = self.plan_path(path, *create, &what)?,
            Target::KustomizeImage { name } => matched = self.plan_kustomize(name, &what)?,
            Target::Image { repository } => {
                let fields: Vec<Node> = self
                    .nodes
                    .iter()
                    .filter(|n| {
                        n.path.last() == Some(&Step::Key("image".to_owned()))
                            && matches!(&n.kind, Kind::Scalar { value, .. } if repository_of(value) == repository)
                    })
                    .cloned()
                    .collect();
                for node in fields {
                    matched = true;
                    self.replace(&node, true, &what)?;
                }
            }
            Target::Marker { name } => {
                let lines = marker_lines(self.text, name);
                for (line_start, line_end) in lines {
                    let on_line: Vec<Node> = self
                        .nodes
                        .iter()
                        .filter(|n| match &n.kind {
                            Kind::Scalar { start, .. } => {
                                let at = *start;
                                at >= line_start && at < line_end
                            }
                            _ => false,
                        })
                        .cloned()
                        .collect();
                    let Some(node) = on_line.last() else {
                        return Err(self.refuse(
                            line_start,
                            format!("{what}: the marked line holds no value"),
                        ));
                    };
                    matched = true;
                    self.replace(node, true, &what)?;
                }
            }
        }
        if !matched {
            return Err(self.whole(format!(
                "{what}: not found{}",
                match target {
                    Target::Path { create: false, .. } =>
                        " (create: true adds the last key to an existing mapping)",
                    _ => "",
                }
            )));
        }
        Ok(())
    }
}

/// The byte ranges of lines that carry the marker `name`: `# gantry: name` or Flux's
/// `# {"$imagepolicy": "namespace:name"}` (its `:tag` and `:name` forms are refused elsewhere:
/// a digest is neither).
fn marker_lines(text: &str, name: &str) -> Vec<(usize, usize)> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let comment = line.find(" #").map(|i| &line[i + 2..]);
        let marked = comment.is_some_and(|comment| {
            let comment = comment.trim();
            comment
                .strip_prefix("gantry:")
                .is_some_and(|rest| rest.trim() == name)
                || comment
                    .strip_prefix("{\"$imagepolicy\":")
                    .and_then(|rest| rest.trim().strip_suffix('}'))
                    .map(|policy| policy.trim().trim_matches('"'))
                    .and_then(|policy| policy.split_once(':'))
                    .is_some_and(|(_, policy)| policy == name)
        });
        if marked {
            lines.push((offset, offset + line.len()));
        }
        offset += line.len();
    }
    lines
}

/// Writes `digest` into `text` (the file `file`) at every target, changing no other byte, then
/// checks the result node by node. `digest` is `sha256:…`; `image` targets and markers get
/// `repository@digest`.
pub fn edit(file: &str, text: &str, targets: &[Target], digest: &str) -> Result<Edited, EditError> {
    let (bom, body) = split_bom(text);
    let yaml_error = |e: yaml::YamlError| EditError::Yaml {
        file: file.to_owned(),
        line: e.line,
        message: e.message,
    };
    let nodes = yaml::nodes(body).map_err(yaml_error)?;
    let newline = if body.split('\n').next().is_some_and(|l| l.ends_with('\r')) {
        "\r\n"
    } else {
        "\n"
    };
    let mut planner = Planner {
        file,
        text: body,
        nodes: &nodes,
        digest,
        splices: Vec::new(),
        inserts: Vec::new(),
        previous: None,
        newline,
    };
    for target in targets {
        planner.plan(target)?;
    }
    let Planner {
        splices,
        inserts,
        previous,
        ..
    } = planner;
    // Apply from the end, so earlier offsets hold.
    let mut pieces: Vec<(usize, usize, String)> = splices
        .iter()
        .map(|s| (s.start, s.end, s.new_text.clone()))
        .chain(inserts.iter().map(|i| (i.at, i.at, i.line.clone())))
        .collect();
    pieces.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    // Two targets on one scalar (a path and a marker) are one splice.
    pieces.dedup_by_key(|(start, _, _)| *start);
    let mut out = body.to_owned();
    for (start, end, new) in &pieces {
        out.replace_range(*start..*end, new);
    }
    let mut expected: HashMap<(usize, Vec<Step>), String> = splices
        .iter()
        .map(|s| (s.key.clone(), s.new_value.clone()))
        .collect();
    expected.extend(inserts.iter().map(|i| (i.key.clone(), i.value.clone())));
    let after = yaml::nodes(&out).map_err(|e| EditError::Refused {
        file: file.to_owned(),
        line: e.line,
        message: format!(
            "the edited file would not be YAML ({}): nothing written",
            e.message
        ),
    })?;
    verify(file, &nodes, &after, &expected)?;
    let mut changes: Vec<Change> = splices.into_iter().map(|s| s.change).collect();
    for insert in &inserts {
        // The new line follows the line of `at`, pushed down by the lines inserted above it.
        let above = inserts.iter().filter(|other| other.at < insert.at).count();
        let indent = insert
            .line
            .trim_start_matches(['\r', '\n'])
            .chars()
            .take_while(|c| *c == ' ')
            .count();
        changes.push(Change {
            file: file.to_owned(),
            line: position(body, insert.at).0 + 1 + above,
            column: indent + 1,
            document: insert.key.0,
            path: yaml::show(&insert.key.1),
            old: String::new(),
            new: insert.value.clone(),
        });
    }
    changes.sort_by_key(|c| (c.line, c.column));
    let mut text_out = String::with_capacity(out.len() + bom);
    text_out.push_str(&text[..bom]);
    text_out.push_str(&out);
    Ok(Edited {
        text: text_out,
        changes,
        previous,
    })
}

/// The edited stream's nodes are the original's, with `expected` values at their paths (new keys
/// among them) and nothing else changed.
fn verify(
    file: &str,
    before: &[Node],
    after: &[Node],
    expected: &HashMap<(usize, Vec<Step>), String>,
) -> Result<(), EditError> {
    let refuse = |message: String| EditError::Refused {
        file: file.to_owned(),
        line: 0,
        message: format!("the edit did not verify ({message}): nothing written"),
    };
    let shape = |node: &Node| match &node.kind {
        Kind::Scalar { value, style, .. } => format!("{value:?} {style:?}"),
        other => format!("{other:?}"),
    };
    // The edited stream's nodes by document and path, in order (a path may repeat: `?` keys).
    let mut remaining: HashMap<(usize, &[Step]), std::collections::VecDeque<&Node>> =
        HashMap::new();
    for node in after {
        remaining
            .entry((node.document, node.path.as_slice()))
            .or_default()
            .push_back(node);
    }
    for node in before {
        let key = (node.document, node.path.clone());
        let Some(now) = remaining
            .get_mut(&(node.document, node.path.as_slice()))
            .and_then(std::collections::VecDeque::pop_front)
        else {
            return Err(refuse(format!("{} is gone", yaml::show(&node.path))));
        };
        let want = match (expected.get(&key), &node.kind) {
            (Some(value), Kind::Scalar { style, .. }) => format!("{value:?} {style:?}"),
            _ => shape(node),
        };
        let got = shape(now);
        // A plain value that needed quotes is the one allowed change of style.
        let relaxed = expected.contains_key(&key)
            && matches!(&now.kind, Kind::Scalar { value, .. } if Some(value) == expected.get(&key));
        if got != want && !relaxed {
            return Err(refuse(format!(
                "{} was {} and is {got}, expected {want}",
                yaml::show(&node.path),
                shape(node)
            )));
        }
        if now.anchored != node.anchored {
            return Err(refuse(format!(
                "{} lost or gained an anchor",
                yaml::show(&node.path)
            )));
        }
    }
    for extra in remaining.into_values().flatten() {
        let key = (extra.document, extra.path.clone());
        match (expected.get(&key), &extra.kind) {
            (Some(value), Kind::Scalar { value: got, .. }) if got == value => {}
            _ => {
                return Err(refuse(format!("{} appeared", yaml::show(&extra.path))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
