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
    let sequenced = SEQUENCE.iter().all(|name| {
        tools
            .iter()
            .any(|t| t.spec.name == *name && t.spec.publish_action)
    });
    if let Some(image) = image.filter(|_| sequenced) {
        files.push((root.join("action.yml"), root_action_yml(tools, image)?));
    }
    if let Some(image) = image {
        for (path, text) in reusable_workflows(root)? {
            files.push((path, repin_workflow(&text, image)));
        }
    }
    Ok(files)
}

/// The reusable workflows (`on: workflow_call`) in `.github/workflows`, with their text: they
/// run the pinned image.
pub fn reusable_workflows(root: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let dir = root.join(".github/workflows");
    let mut found = Vec::new();
    if !dir.is_dir() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if text.lines().any(|l| l.trim_end() == "  workflow_call:") {
            found.push((path, text));
        }
    }
    found.sort();
    Ok(found)
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

/// The root action's own inputs, before the tools' union.
const ROOT_INPUTS: [(&str, &str); 5] = [
    (
        "tool",
        "What runs: a tool (`sign-image`, `verify-image`, `sbom-attach`, `promote-digest`, `dispatch-integration`, `canary-watch`), or `build-sign-promote`: build and push `context` (when given, else `digest` names what was pushed), sign, attach the signed SBOM, verify both for this workflow's identity (or `certificate-identity`), and promote to `target-env` (when given).",
    ),
    (
        "context",
        "`build-sign-promote`: the Docker build context; empty: the image is already pushed and `digest` names it. The build is tagged with the commit SHA and `source-env`.",
    ),
    (
        "file",
        "`build-sign-promote`: the Dockerfile (default `<context>/Dockerfile`).",
    ),
    (
        "platforms",
        "`build-sign-promote`: platforms to build, e.g. `linux/amd64,linux/arm64`.",
    ),
    (
        "build-args",
        "`build-sign-promote`: build arguments, one `KEY=VALUE` per line.",
    ),
];

/// The tools `build-sign-promote` runs, in order.
pub const SEQUENCE: [&str; 4] = [
    "sign-image",
    "sbom-attach",
    "verify-image",
    "promote-digest",
];

/// One input of the root action: the union over the tools that take it.
struct UnionInput {
    name: String,
    description: String,
    default: Option<String>,
    tools: Vec<&'static str>,
}

/// Every tool input, once: the first tool's description (with the tools that take it named), and
/// a default only where every tool that takes the input agrees on it.
fn union_inputs(tools: &[&ToolEntry]) -> Vec<UnionInput> {
    let mut union: Vec<UnionInput> = Vec::new();
    let mut defaults: Vec<Vec<Option<String>>> = Vec::new();
    for tool in tools {
        for input in input_docs(tool) {
            if let Some(i) = union.iter().position(|u| u.name == input.name) {
                union[i].tools.push(tool.spec.name);
                defaults[i].push(input.default);
            } else {
                union.push(UnionInput {
                    name: input.name,
                    description: input.description,
                    default: None,
                    tools: vec![tool.spec.name],
                });
                defaults.push(vec![input.default]);
            }
        }
    }
    for (input, seen) in union.iter_mut().zip(defaults) {
        if seen.windows(2).all(|w| w[0] == w[1]) {
            input.default = seen.into_iter().next().flatten();
        }
        if input.tools.len() == tools.len() {
            input.description.push_str(" (every tool)");
        } else {
            let _ = write!(input.description, " ({})", input.tools.join(", "));
        }
    }
    union
}

/// The `env:` of a step running `tool` with each of its inputs taken from the root action's, and
/// `overrides` (input, expression) in their place.
fn tool_env(out: &mut String, tool: &ToolEntry, overrides: &[(&str, &str)]) {
    out.push_str("      env:\n");
    for input in input_docs(tool) {
        let value = overrides
            .iter()
            .find(|(name, _)| *name == input.name)
            .map_or_else(
                || format!("${{{{ inputs.{} }}}}", input.name),
                |(_, v)| (*v).to_owned(),
            );
        let _ = writeln!(
            out,
            "        {}: {}",
            gantry_actions::inputs::variable_name(&input.name),
            quoted(&value)
        );
    }
}

/// A composite step running `tool` in the pinned image.
fn tool_step(
    out: &mut String,
    id: &str,
    condition: &str,
    tool: &ToolEntry,
    image: &str,
    overrides: &[(&str, &str)],
) {
    let _ = writeln!(
        out,
        "    - id: {id}\n      name: {}\n      if: {}\n      uses: {}\n      with:\n        args: {} --action",
        quoted(&format!("gantry {}", tool.spec.name)),
        quoted(condition),
        quoted(&format!("docker://{image}")),
        tool.spec.name
    );
    tool_env(out, tool, overrides);
}

/// The root `action.yml`: a composite action that runs one tool (`tool:`), or the
/// build-sign-promote sequence, in the image every tool action runs.
pub fn root_action_yml(tools: &[ToolEntry], image: &str) -> anyhow::Result<String> {
    validate_image(image)?;
    let tools: Vec<&ToolEntry> = tools.iter().filter(|t| t.spec.publish_action).collect();
    let find = |name: &str| {
        tools
            .iter()
            .copied()
            .find(|t| t.spec.name == name)
            .with_context(|| format!("build-sign-promote runs {name}, which is not a tool"))
    };
    let union = union_inputs(&tools);
    let mut out = String::from(
        "# Generated by `cargo xtask generate` from the tools' clap definitions. Do not edit.\n",
    );
    out.push_str("name: \"gantry\"\n");
    writeln!(
        out,
        "description: {}",
        quoted(
            "Sign, verify, SBOM, integration-test, promote and canary-watch container images by digest: one tool per step, or build-sign-promote in one."
        )
    )?;
    out.push_str("author: gantry\nbranding:\n  icon: package\n  color: blue\ninputs:\n");
    for (name, description) in ROOT_INPUTS {
        writeln!(
            out,
            "  {name}:\n    description: {}\n    required: {}",
            quoted(description),
            name == "tool"
        )?;
    }
    for input in &union {
        validate_name("root input", &input.name)?;
        anyhow::ensure!(
            ROOT_INPUTS.iter().all(|(name, _)| *name != input.name),
            "the tools' input {:?} collides with the root action's own",
            input.name
        );
        writeln!(
            out,
            "  {}:\n    description: {}\n    required: false",
            input.name,
            quoted(&input.description)
        )?;
        if let Some(default) = &input.default {
            writeln!(out, "    default: {}", quoted(default))?;
        }
    }
    let mut outputs: Vec<(&str, &str, Vec<String>)> = Vec::new();
    let mut produced = |step: &str, tool: &ToolEntry| {
        for output in tool.spec.outputs {
            let reference = format!("steps.{step}.outputs.{}", output.name);
            match outputs.iter_mut().find(|(name, _, _)| *name == output.name) {
                Some((_, _, steps)) => steps.push(reference),
                None => outputs.push((output.name, output.description, vec![reference])),
            }
        }
    };
    for tool in &tools {
        produced(tool.spec.name, tool);
    }
    for name in SEQUENCE {
        produced(&format!("sequence-{name}"), find(name)?);
    }
    out.push_str("outputs:\n");
    for (name, description, steps) in &outputs {
        writeln!(
            out,
            "  {name}:\n    description: {}\n    value: {}",
            quoted(description),
            quoted(&format!("${{{{ {} }}}}", steps.join(" || ")))
        )?;
    }
    out.push_str("runs:\n  using: composite\n  steps:\n");
    let names: Vec<String> = tools
        .iter()
        .map(|t| format!("'{}'", t.spec.name))
        .chain(std::iter::once("'build-sign-promote'".to_owned()))
        .collect();
    writeln!(
        out,
        "    - name: \"gantry: which tool\"\n      if: {}\n      shell: bash\n      env:\n        TOOL: \"${{{{ inputs.tool }}}}\"\n      run: |\n        echo \"gantry: tool must be one of {}; found: ${{TOOL}}\" >&2\n        exit 2",
        quoted(&format!(
            "!contains(fromJSON('[{}]'), inputs.tool)",
            names.join(", ").replace('\'', "\"")
        )),
        names.join(", ").replace('\'', "")
    )?;
    for tool in &tools {
        let condition = format!("inputs.tool == '{}'", tool.spec.name);
        tool_step(&mut out, tool.spec.name, &condition, tool, image, &[]);
    }
    sequence_steps(&mut out, &find, image)?;
    Ok(out)
}

/// `build-sign-promote`: buildx, the build (when `context` is given), then [`SEQUENCE`], each
/// on the digest the build reported or `digest` named.
fn sequence_steps<'a>(
    out: &mut String,
    find: &dyn Fn(&str) -> anyhow::Result<&'a ToolEntry>,
    image: &str,
) -> anyhow::Result<()> {
    const WHEN: &str = "inputs.tool == 'build-sign-promote'";
    const BUILD: &str = "inputs.tool == 'build-sign-promote' && inputs.context != ''";
    writeln!(
        out,
        "    - if: {}\n      uses: docker/setup-buildx-action@{SETUP_BUILDX}\n    - id: sequence-build\n      if: {}\n      uses: docker/build-push-action@{BUILD_PUSH}\n      with:\n        context: \"${{{{ inputs.context }}}}\"\n        file: \"${{{{ inputs.file }}}}\"\n        platforms: \"${{{{ inputs.platforms }}}}\"\n        build-args: \"${{{{ inputs.build-args }}}}\"\n        push: true\n        tags: \"${{{{ inputs.image }}}}:${{{{ github.sha }}}}\\n${{{{ inputs.source-env != '' && format('{{0}}:{{1}}', inputs.image, inputs.source-env) || '' }}}}\"\n        provenance: false",
        quoted(BUILD),
        quoted(BUILD)
    )?;
    let digest = "${{ steps.sequence-build.outputs.digest || inputs.digest }}";
    let pinned = format!("${{{{ inputs.image }}}}@{digest}");
    let identity = "${{ inputs.certificate-identity-regexp == '' && (inputs.certificate-identity || format('{0}/{1}', github.server_url, github.workflow_ref)) || inputs.certificate-identity }}";
    for name in SEQUENCE {
        let tool = find(name)?;
        let id = format!("sequence-{name}");
        let (condition, overrides): (String, Vec<(&str, &str)>) = match name {
            "promote-digest" => (
                format!("{WHEN} && inputs.target-env != ''"),
                vec![("digest", digest)],
            ),
            "verify-image" => (
                WHEN.to_owned(),
                vec![
                    ("image", pinned.as_str()),
                    ("certificate-identity", identity),
                    (
                        "require-attestation",
                        "${{ inputs.require-attestation || 'cyclonedx' }}",
                    ),
                ],
            ),
            "sbom-attach" => (
                WHEN.to_owned(),
                vec![("image", pinned.as_str()), ("attest", "true")],
            ),
            _ => (WHEN.to_owned(), vec![("image", pinned.as_str())]),
        };
        tool_step(out, &id, &condition, tool, image, &overrides);
    }
    Ok(())
}

/// docker/setup-buildx-action v3.11.1.
const SETUP_BUILDX: &str = "e468171a9de216ec08956ac3ada2f0791b6bd435 # v3.11.1";
/// docker/build-push-action v6.18.0.
const BUILD_PUSH: &str = "263435318d21b8e681c14492fe198d362a7d2c83 # v6.18.0";

/// The image every reusable workflow runs, pinned by digest: `ghcr.io/gantry-dev/gantry@sha256:…`
/// wherever it appears in `text`, replaced by `image`.
pub fn repin_workflow(text: &str, image: &str) -> String {
    let (name, _) = image.split_once("@sha256:").unwrap_or((image, ""));
    let needle = format!("{name}@sha256:");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        out.push_str(&rest[..at]);
        let after = &rest[at + needle.len()..];
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(image);
        rest = &after[hex..];
    }
    out.push_str(rest);
    out
}
