//! `action.yml` and README input/output tables from a tool's clap definition and declared outputs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Arg;
use gantry_actions::ToolEntry;
use gantry_actions::inputs::{inputs, is_flag, is_list};

/// Marks the generated part of a tool's README; prose around it is kept.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: cargo xtask generate -->";
pub const END: &str = "<!-- END GENERATED -->";
/// The repository actions are used from, as `uses: <REPO>/actions/<tool>@<sha>`.
pub const ACTIONS_REPO: &str = "gantry-dev/gantry";
/// Holds the image every action runs, pinned by digest; the release workflow updates it.
pub const IMAGE_FILE: &str = "actions/IMAGE";

/// One input as an action declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDoc {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub default: Option<String>,
}

/// Checks that `image` is `registry/repository@sha256:<64 hex>`: actions never run a mutable tag.
pub fn validate_image(image: &str) -> anyhow::Result<()> {
    let (name, digest) = image
        .split_once("@sha256:")
        .with_context(|| format!("action image {image:?} is not pinned: expected <registry>/<repository>@sha256:<64 hex digits>"))?;
    anyhow::ensure!(
        digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "action image {image:?} has a malformed digest: expected 64 lowercase hex digits after sha256:"
    );
    anyhow::ensure!(
        name.contains('/') && !name.starts_with('/') && !name.ends_with('/'),
        "action image {image:?} must name a registry and repository, e.g. ghcr.io/{ACTIONS_REPO}"
    );
    Ok(())
}

/// The argument's help as a sentence: clap drops the doc comment's final period.
fn help_text(arg: &Arg) -> String {
    let mut text = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    text.truncate(text.trim_end().len());
    if !text.is_empty() && !text.ends_with(['.', '!', '?', ':']) {
        text.push('.');
    }
    text
}

/// The inputs of a tool, in clap's order.
pub fn input_docs(tool: &ToolEntry) -> Vec<InputDoc> {
    let command = tool.command();
    inputs(&command)
        .map(|arg| {
            let name = gantry_actions::inputs::input_name(arg);
            let mut description = help_text(arg);
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if !values.is_empty() && !is_flag(arg) {
                let _ = write!(description, " One of: {}.", values.join(", "));
            }
            if is_list(arg) {
                description.push_str(" One per line.");
            }
            if tool.spec.secret_inputs.contains(&name.as_str()) {
                description.push_str(" Secret: masked in the log.");
            }
            let default = tool
                .spec
                .action_defaults
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| {
                    is_flag(arg).then(|| {
                        (!matches!(arg.get_action(), clap::ArgAction::SetTrue)).to_string()
                    })
                })
                .or_else(|| {
                    let values: Vec<String> = arg
                        .get_default_values()
                        .iter()
                        .map(|v| v.to_string_lossy().into_owned())
                        .collect();
                    (!values.is_empty()).then(|| values.join("\n"))
                });
            InputDoc {
                name,
                description: description.trim().to_owned(),
                required: arg.is_required_set(),
                default,
            }
        })
        .collect()
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Checks that a tool, input or output name is kebab-case: `a-z`, digits and single hyphens.
pub fn validate_name(kind: &str, name: &str) -> anyhow::Result<()> {
    let kebab = name.split('-').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }) && name.starts_with(|c: char| c.is_ascii_lowercase());
    anyhow::ensure!(
        kebab,
        "{kind} name {name:?} is not kebab-case (expected e.g. \"image-ref\")"
    );
    Ok(())
}

/// The `action.yml` of a tool running `image`.
pub fn action_yml(tool: &ToolEntry, image: &str) -> anyhow::Result<String> {
    validate_image(image)?;
    let spec = tool.spec;
    validate_name("tool", spec.name)?;
    let docs = input_docs(tool);
    for input in &docs {
        validate_name(&format!("{} input", spec.name), &input.name)?;
    }
    for output in spec.outputs {
        validate_name(&format!("{} output", spec.name), output.name)?;
    }
    let mut out = String::new();
    writeln!(
        out,
        "# Generated by `cargo xtask generate` from the clap definition of `gantry {}`. Do not edit.",
        spec.name
    )?;
    writeln!(out, "name: {}", quoted(&format!("gantry {}", spec.name)))?;
    writeln!(out, "description: {}", quoted(spec.description))?;
    writeln!(out, "author: gantry")?;
    writeln!(
        out,
        "branding:\n  icon: {}\n  color: {}",
        spec.branding.icon, spec.branding.color
    )?;
    if !docs.is_empty() {
        writeln!(out, "inputs:")?;
    }
    for input in &docs {
        writeln!(out, "  {}:", input.name)?;
        writeln!(out, "    description: {}", quoted(&input.description))?;
        writeln!(out, "    required: {}", input.required)?;
        if let Some(default) = &input.default {
            writeln!(out, "    default: {}", quoted(default))?;
        }
    }
    if !spec.outputs.is_empty() {
        writeln!(out, "outputs:")?;
    }
    for output in spec.outputs {
        writeln!(
            out,
            "  {}:\n    description: {}",
            output.name,
            quoted(output.description)
        )?;
    }
    writeln!(
        out,
        "runs:\n  using: docker\n  image: {}",
        quoted(&format!("docker://{image}"))
    )?;
    writeln!(out, "  args:\n    - {}\n    - --action", spec.name)?;
    Ok(out)
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

/// The generated block of a tool's README: usage, inputs and outputs.
pub fn readme_block(tool: &ToolEntry) -> String {
    let spec = tool.spec;
    let docs = input_docs(tool);
    let mut out = format!(
        "{BEGIN}\n\n## Usage\n\n```yaml\n- uses: {ACTIONS_REPO}/actions/{}@<commit-sha> # vX.Y.Z\n",
        spec.name
    );
    let required: Vec<&InputDoc> = docs.iter().filter(|d| d.required).collect();
    if !required.is_empty() {
        out.push_str("  with:\n");
        for input in required {
            let _ = writeln!(out, "    {}: …", input.name);
        }
    }
    let _ = write!(
        out,
        "```\n\nOn any other CI system: `gantry {} --help`.\n\n## Inputs\n\n| name | required | default | description |\n|---|---|---|---|\n",
        spec.name
    );
    for input in &docs {
        let default = input
            .default
            .as_deref()
            .map(|d| format!("`{}`", cell(d)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{}` | {} | {default} | {} |",
            input.name,
            if input.required { "yes" } else { "no" },
            cell(&input.description)
        );
    }
    out.push_str("\n## Outputs\n\n| name | description |\n|---|---|\n");
    for output in spec.outputs {
        let _ = writeln!(out, "| `{}` | {} |", output.name, cell(output.description));
    }
    let _ = write!(out, "\n{END}\n");
    out
}

/// Replaces the generated block of `readme` (or appends one to a new README).
pub fn splice_readme(existing: Option<&str>, tool: &ToolEntry) -> anyhow::Result<String> {
    let block = readme_block(tool);
    let Some(existing) = existing else {
        return Ok(format!(
            "# gantry {}\n\n{}\n\n{block}",
            tool.spec.name, tool.spec.description
        ));
    };
    let start = existing
        .find(BEGIN)
        .context("README has no generated block start marker")?;
    let end = existing[start..]
        .find(END)
        .map(|i| start + i + END.len())
        .context("README has no generated block end marker")?;
    let rest = existing[end..]
        .strip_prefix('\n')
        .unwrap_or(&existing[end..]);
    Ok(format!("{}{block}{rest}", &existing[..start]))
}

/// Every file `generate` owns, with its wanted content.
pub fn wanted_files(
    root: &Path,
    tools: &[ToolEntry],
    image: Option<&str>,
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    for tool in tools.iter().filter(|t| t.spec.publish_action) {
        let image = image.with_context(|| {
            format!("{IMAGE_FILE} is missing; it pins the image the actions run")
        })?;
        let dir = root.join("actions").join(tool.spec.name);
        files.push((dir.join("action.yml"), action_yml(tool, image)?));
        let readme_path = dir.join("README.md");
        let existing = std::fs::read_to_string(&readme_path).ok();
        files.push((readme_path, splice_readme(existing.as_deref(), tool)?));
    }
    Ok(files)
}

/// Files whose content differs from what `generate` would write.
pub fn drift(files: &[(PathBuf, String)]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|(path, wanted)| {
            std::fs::read_to_string(path).ok().as_deref() != Some(wanted.as_str())
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// Reads the pinned image, if the file exists.
pub fn read_image(root: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(root.join(IMAGE_FILE)) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {IMAGE_FILE}")),
    }
}
