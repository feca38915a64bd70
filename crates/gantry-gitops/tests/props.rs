//! Random YAML files (block and flow mappings, sequences, three quoting styles, trailing comments,
//! CRLF or LF, with or without a final newline), rendered while recording where each value's text
//! lies: editing any digest-holding path changes exactly that value's bytes, nothing else.

use gantry_gitops::yaml::Step;
use gantry_gitops::{Target, edit};
use proptest::prelude::*;

const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[derive(Debug, Clone)]
enum Value {
    /// A scalar: its text and style (0 plain, 1 single, 2 double).
    Leaf(String, u8),
    /// A block (false) or flow (true) mapping.
    Map(Vec<(String, Value)>, bool),
    /// A block sequence.
    Seq(Vec<Value>),
}

fn leaf() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}")),
        "[a-z][a-z0-9-]{0,8}",
        "[a-z]{1,6}\\.[a-z]{1,6}/[a-z]{1,8}:v[0-9]\\.[0-9]",
    ];
    (text, 0u8..3).prop_map(|(text, style)| Value::Leaf(text, style))
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 1..4)).prop_map(Value::Seq),
            (
                prop::collection::btree_map("[a-h]{1,3}", inner, 1..5),
                any::<bool>()
            )
                .prop_map(|(entries, flow)| Value::Map(entries.into_iter().collect(), flow)),
            (prop::collection::btree_map("[a-h]{1,3}", leaf(), 1..4))
                .prop_map(|entries| Value::Map(entries.into_iter().collect(), true)),
        ]
    })
}

/// The text, and where each leaf's value text lies: (path, start, end, style, value).
struct Rendered {
    text: String,
    leaves: Vec<(Vec<Step>, usize, usize, u8, String)>,
}

struct Writer {
    out: String,
    leaves: Vec<(Vec<Step>, usize, usize, u8, String)>,
    newline: &'static str,
    step: usize,
    comments: bool,
}

impl Writer {
    fn scalar(&mut self, path: &[Step], text: &str, style: u8) {
        let written = match style {
            1 => format!("'{text}'"),
            2 => format!("\"{text}\""),
            _ => text.to_owned(),
        };
        let start = self.out.len();
        self.out.push_str(&written);
        self.leaves
            .push((path.to_vec(), start, self.out.len(), style, text.to_owned()));
    }

    fn end_line(&mut self) {
        if self.comments {
            self.out.push_str(" # note");
        }
        self.out.push_str(self.newline);
    }

    fn flow(&mut self, path: &[Step], entries: &[(String, Value)]) -> bool {
        if !entries.iter().all(|(_, v)| matches!(v, Value::Leaf(..))) {
            return false;
        }
        self.out.push('{');
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.out.push_str(key);
            self.out.push_str(": ");
            let Value::Leaf(text, style) = value else {
                unreachable!()
            };
            let mut child = path.to_vec();
            child.push(Step::Key(key.clone()));
            self.scalar(&child, text, *style);
        }
        self.out.push('}');
        true
    }

    /// Writes `value` as the value of a key (already written) at `indent`.
    fn value(&mut self, path: &[Step], value: &Value, indent: usize) {
        match value {
            Value::Leaf(text, style) => {
                self.out.push(' ');
                self.scalar(path, text, *style);
                self.end_line();
            }
            Value::Map(entries, flow) => {
                if *flow {
                    self.out.push(' ');
                    if self.flow(path, entries) {
                        self.end_line();
                        return;
                    }
                    self.out.pop();
                }
                self.out.push_str(self.newline);
                self.map(path, entries, indent + self.step);
            }
            Value::Seq(items) => {
                self.out.push_str(self.newline);
                for (i, item) in items.iter().enumerate() {
                    let mut child = path.to_vec();
                    child.push(Step::Index(i));
                    self.out.push_str(&" ".repeat(indent + self.step));
                    self.out.push('-');
                    match item {
                        Value::Map(entries, _) => {
                            self.out.push_str(self.newline);
                            self.map(&child, entries, indent + 2 * self.step);
                        }
                        Value::Seq(_) => {
                            self.out.push_str(" []");
                            self.out.push_str(self.newline);
                        }
                        leaf @ Value::Leaf(..) => self.value(&child, leaf, indent + self.step),
                    }
                }
            }
        }
    }

    fn map(&mut self, path: &[Step], entries: &[(String, Value)], indent: usize) {
        for (key, value) in entries {
            let mut child = path.to_vec();
            child.push(Step::Key(key.clone()));
            self.out.push_str(&" ".repeat(indent));
            self.out.push_str(key);
            self.out.push(':');
            self.value(&child, value, indent);
        }
    }
}

/// How a file is laid out.
#[expect(
    clippy::struct_excessive_bools,
    reason = "four independent switches of the layout"
)]
struct Layout {
    crlf: bool,
    wide: bool,
    comments: bool,
    final_newline: bool,
}

fn render(root: &[(String, Value)], layout: &Layout) -> Rendered {
    let mut writer = Writer {
        out: String::new(),
        leaves: Vec::new(),
        newline: if layout.crlf { "\r\n" } else { "\n" },
        step: if layout.wide { 4 } else { 2 },
        comments: layout.comments,
    };
    writer.map(&[], root, 0);
    if !layout.final_newline {
        let trimmed = writer.out.trim_end_matches(['\r', '\n']).len();
        writer.out.truncate(trimmed);
    }
    Rendered {
        text: writer.out,
        leaves: writer.leaves,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn an_edit_changes_exactly_its_value(
        root in prop::collection::btree_map("[a-h]{1,3}", tree(), 1..6),
        crlf: bool,
        wide: bool,
        comments: bool,
        final_newline: bool,
        pick: prop::sample::Index,
    ) {
        let root: Vec<(String, Value)> = root.into_iter().collect();
        let rendered = render(&root, &Layout { crlf, wide, comments, final_newline });
        let digests: Vec<_> = rendered
            .leaves
            .iter()
            .filter(|(_, _, _, _, value)| value.starts_with("sha256:"))
            .collect();
        prop_assume!(!digests.is_empty());
        let (path, start, end, style, _) = digests[pick.index(digests.len())].clone();
        let edited = edit(
            "random.yaml",
            &rendered.text,
            &[Target::Path { path: path.clone(), create: false }],
            NEW,
        );
        let edited = edited.map_err(|e| TestCaseError::fail(format!("{e}\n{}", rendered.text)))?;
        let written = match style {
            1 => format!("'{NEW}'"),
            2 => format!("\"{NEW}\""),
            _ => NEW.to_owned(),
        };
        let expected = format!("{}{written}{}", &rendered.text[..start], &rendered.text[end..]);
        prop_assert_eq!(edited.text, expected, "{}", rendered.text);
        prop_assert_eq!(edited.changes.len(), 1);
    }
}
