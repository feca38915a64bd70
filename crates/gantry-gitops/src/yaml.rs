//! Every node of a YAML stream (all documents), with its path and, for scalars, where it starts
//! in the text: what an edit locates its target by, and what the check after an edit compares.
//!
//! Built on yaml-rust2's event parser (the parser under marked-yaml, which the policy uses): its
//! events carry the position of each scalar and the anchors and aliases that marked-yaml refuses,
//! and it reads every document of a stream.

use std::fmt::Write as _;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A key (a scalar key's value; a complex key is `?`).
    Key(String),
    /// An index.
    Index(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(key) => f.write_str(key),
            Self::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from a document's root.
pub type Path = Vec<Step>;

/// Writes a path as `a.b[0].c`.
pub fn show(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Index(index) => {
                let _ = write!(text, "[{index}]");
            }
        }
    }
    text
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain.
    Plain,
    /// `'single'`.
    Single,
    /// `"double"`.
    Double,
    /// `|` or `>`.
    Block,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A scalar value (keys are recorded as the steps of paths).
    Scalar {
        /// Its value.
        value: String,
        /// Its style.
        style: Style,
        /// Its first byte in the parsed text.
        start: usize,
    },
    /// A mapping.
    Mapping,
    /// A sequence.
    Sequence,
    /// An alias (`*name`) of an anchored node.
    Alias,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Which document of the stream, from 0.
    pub document: usize,
    /// Its path.
    pub path: Path,
    /// What it is.
    pub kind: Kind,
    /// It carries an anchor (`&name`): other nodes may be aliases of it.
    pub anchored: bool,
    /// Where its key starts (a byte of the parsed text), when it is a mapping's value under a
    /// scalar key.
    pub key_start: Option<usize>,
}

/// Why a text is not YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// The line (from 1).
    pub line: usize,
    /// What the parser said.
    pub message: String,
}

enum Frame {
    Mapping {
        key: Option<Step>,
        key_start: Option<usize>,
        path: Path,
        /// The next scalar is a key.
        expecting_key: bool,
    },
    Sequence {
        next: usize,
        path: Path,
    },
}

struct Walker {
    nodes: Vec<Node>,
    stack: Vec<Frame>,
    document: usize,
    started: bool,
}

impl Walker {
    /// The path of the node that comes next and where its key starts, or `None` when it is a
    /// mapping key.
    fn next_path(&mut self) -> Option<(Path, Option<usize>)> {
        match self.stack.last_mut() {
            None => Some((Vec::new(), None)),
            Some(Frame::Mapping {
                key,
                key_start,
                path,
                expecting_key,
            }) => {
                if *expecting_key {
                    None
                } else {
                    let mut path = path.clone();
                    path.push(key.take().unwrap_or(Step::Key("?".to_owned())));
                    *expecting_key = true;
                    Some((path, key_start.take()))
                }
            }
            Some(Frame::Sequence { next, path }) => {
                let mut path = path.clone();
                path.push(Step::Index(*next));
                *next += 1;
                Some((path, None))
            }
        }
    }

    /// A key that is not a plain scalar (a mapping or sequence as a key): its path step is `?`.
    fn complex_key(&mut self) {
        if let Some(Frame::Mapping {
            key, expecting_key, ..
        }) = self.stack.last_mut()
            && *expecting_key
        {
            *key = Some(Step::Key("?".to_owned()));
            *expecting_key = false;
        }
    }

    fn push(&mut self, (path, key_start): (Path, Option<usize>), kind: Kind, anchored: bool) {
        self.nodes.push(Node {
            document: self.document,
            path,
            kind,
            anchored,
            key_start,
        });
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::DocumentStart => {
                if self.started {
                    self.document += 1;
                }
                self.started = true;
                self.stack.clear();
            }
            Event::Scalar(value, style, anchor, _) => {
                if let Some(next) = self.next_path() {
                    let style = match style {
                        TScalarStyle::Plain => Style::Plain,
                        TScalarStyle::SingleQuoted => Style::Single,
                        TScalarStyle::DoubleQuoted => Style::Double,
                        TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                    };
                    let start = mark.index();
                    self.push(
                        next,
                        Kind::Scalar {
                            value,
                            style,
                            start,
                        },
                        anchor > 0,
                    );
                } else if let Some(Frame::Mapping {
                    key,
                    key_start,
                    expecting_key,
                    ..
                }) = self.stack.last_mut()
                {
                    *key = Some(Step::Key(value));
                    *key_start = Some(mark.index());
                    *expecting_key = false;
                }
            }
            Event::Alias(_) => {
                if let Some(next) = self.next_path() {
                    self.push(next, Kind::Alias, false);
                } else {
                    self.complex_key();
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                let mapping = matches!(event, Event::MappingStart(..));
                let Some(next) = self.next_path() else {
                    self.complex_key();
                    // The key's own nodes are not addressable: they get the `?` path.
                    let path = vec![Step::Key("?".to_owned())];
                    self.stack.push(if mapping {
                        Frame::Mapping {
                            key: None,
                            key_start: None,
                            path,
                            expecting_key: true,
                        }
                    } else {
                        Frame::Sequence { next: 0, path }
                    });
                    return;
                };
                let path = next.0.clone();
                self.push(
                    next,
                    if mapping {
                        Kind::Mapping
                    } else {
                        Kind::Sequence
                    },
                    anchor > 0,
                );
                self.stack.push(if mapping {
                    Frame::Mapping {
                        key: None,
                        key_start: None,
                        path,
                        expecting_key: true,
                    }
                } else {
                    Frame::Sequence { next: 0, path }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// Every node of every document of `text`, in document order.
pub fn nodes(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut walker = Walker {
        nodes: Vec::new(),
        stack: Vec::new(),
        document: 0,
        started: false,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut walker, true).map_err(|error| YamlError {
        line: error.marker().line(),
        message: error.info().to_owned(),
    })?;
    let mut nodes = walker.nodes;
    to_bytes(text, &mut nodes);
    Ok(nodes)
}

/// The parser counts positions in characters; edits splice bytes. Every position is converted in
/// one pass over the text (sorted first: keys and values interleave).
fn to_bytes(text: &str, nodes: &mut [Node]) {
    let mut positions: Vec<usize> = nodes
        .iter()
        .flat_map(|n| {
            let start = match n.kind {
                Kind::Scalar { start, .. } => Some(start),
                _ => None,
            };
            start.into_iter().chain(n.key_start)
        })
        .collect();
    positions.sort_unstable();
    positions.dedup();
    let mut bytes = std::collections::HashMap::with_capacity(positions.len());
    let mut wanted = positions.iter().peekable();
    for (chars, (offset, _)) in text.char_indices().enumerate() {
        while wanted.peek().is_some_and(|w| **w == chars) {
            bytes.insert(chars, offset);
            wanted.next();
        }
        if wanted.peek().is_none() {
            break;
        }
    }
    let at = |chars: usize| bytes.get(&chars).copied().unwrap_or(text.len());
    for node in nodes {
        if let Kind::Scalar { start, .. } = &mut node.kind {
            *start = at(*start);
        }
        node.key_start = node.key_start.map(at);
    }
}
