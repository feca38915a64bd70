//! The generator, on the fixture tool's definition.

use gantry_actions::ToolEntry;
use xtask::generate::{self, BEGIN, END};
use xtask::lint::FIXTURE_IMAGE;

const FIXTURE: ToolEntry = gantry_fixture::ENTRY;

#[test]
fn action_yml_of_the_fixture() {
    insta::assert_snapshot!(generate::action_yml(&FIXTURE, FIXTURE_IMAGE).expect("render"));
}

#[test]
fn readme_block_of_the_fixture() {
    insta::assert_snapshot!(generate::readme_block(&FIXTURE));
}

#[test]
fn every_clap_input_and_declared_output_is_in_the_action() {
    let yml = generate::action_yml(&FIXTURE, FIXTURE_IMAGE).expect("render");
    let command = FIXTURE.command();
    for arg in gantry_actions::inputs::inputs(&command) {
        let name = gantry_actions::inputs::input_name(arg);
        assert!(
            yml.contains(&format!("\n  {name}:\n")),
            "input {name} missing"
        );
    }
    for output in FIXTURE.spec.outputs {
        assert!(
            yml.contains(&format!("\n  {}:\n", output.name)),
            "output {} missing",
            output.name
        );
    }
    assert!(
        !yml.contains("  action:\n") && !yml.contains("  json:\n"),
        "front-end flags are not inputs"
    );
}

#[test]
fn only_digest_pinned_images_are_accepted() {
    for bad in [
        "ghcr.io/gantry-dev/gantry:latest",
        "ghcr.io/gantry-dev/gantry@sha256:abc",
        "ghcr.io/gantry-dev/gantry@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "gantry@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        let err = generate::action_yml(&FIXTURE, bad).expect_err(bad);
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn splicing_keeps_prose_and_replaces_only_the_block() {
    let fresh = generate::splice_readme(None, &FIXTURE).expect("new readme");
    assert!(fresh.starts_with("# gantry fixture\n"));
    let edited = fresh.replace(
        "# gantry fixture\n",
        "# gantry fixture\n\nHand-written prose.\n",
    ) + "\n## Notes\n\nMore prose.\n";
    let stale = edited.replace("| `image` | yes |", "| `image` | no |");
    let spliced = generate::splice_readme(Some(&stale), &FIXTURE).expect("splice");
    assert_eq!(
        spliced, edited,
        "the block is regenerated, prose before and after kept"
    );
    assert!(generate::splice_readme(Some("no markers"), &FIXTURE).is_err());
    assert_eq!(spliced.matches(BEGIN).count(), 1);
    assert_eq!(spliced.matches(END).count(), 1);
}

#[test]
fn check_reports_drift_and_generate_clears_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = vec![(
        dir.path().join("actions/fixture/action.yml"),
        "wanted\n".to_owned(),
    )];
    assert_eq!(
        generate::drift(&files),
        vec![files[0].0.clone()],
        "missing file is drift"
    );
    std::fs::create_dir_all(dir.path().join("actions/fixture")).expect("mkdir");
    std::fs::write(&files[0].0, "edited by hand\n").expect("write");
    assert_eq!(generate::drift(&files).len(), 1, "edited file is drift");
    std::fs::write(&files[0].0, "wanted\n").expect("write");
    assert!(generate::drift(&files).is_empty());
}

#[test]
fn a_published_tool_needs_the_image_pin() {
    let mut spec = *FIXTURE.spec;
    spec.publish_action = true;
    let spec: &'static gantry_actions::ToolSpec = Box::leak(Box::new(spec));
    let published = FIXTURE.with_spec(spec);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = generate::wanted_files(dir.path(), &[published], None).expect_err("no pin");
    assert!(
        err.to_string().contains("actions/IMAGE is missing"),
        "{err}"
    );
    let files =
        generate::wanted_files(dir.path(), &[published], Some(FIXTURE_IMAGE)).expect("files");
    let names: Vec<_> = files
        .iter()
        .map(|(p, _)| p.strip_prefix(dir.path()).expect("under root").to_owned())
        .collect();
    assert_eq!(
        names,
        [
            std::path::Path::new("actions/fixture/action.yml"),
            std::path::Path::new("actions/fixture/README.md")
        ]
    );
}

#[test]
fn names_must_be_kebab_case() {
    for good in ["image", "image-ref", "sha256-tag", "a1"] {
        generate::validate_name("input", good).expect(good);
    }
    for bad in [
        "Image",
        "image_ref",
        "image--ref",
        "-image",
        "image-",
        "1image",
        "",
    ] {
        let err = generate::validate_name("input", bad).expect_err(bad);
        assert!(err.to_string().contains("is not kebab-case"), "{err}");
    }
    let mut spec = *FIXTURE.spec;
    spec.outputs = &[gantry_actions::OutputSpec {
        name: "imageDigest",
        description: "x",
    }];
    let spec: &'static gantry_actions::ToolSpec = Box::leak(Box::new(spec));
    let err = generate::action_yml(&FIXTURE.with_spec(spec), FIXTURE_IMAGE)
        .expect_err("camelCase output");
    assert!(
        err.to_string()
            .contains("fixture output name \"imageDigest\""),
        "{err}"
    );
}

/// The root action runs each tool with every one of its inputs, and build-sign-promote in order,
/// all in the pinned image.
#[test]
fn the_root_action_runs_every_tool_with_all_its_inputs() {
    let yml = generate::root_action_yml(gantry::TOOLS, FIXTURE_IMAGE).expect("render");
    let doc = &yaml_rust2::YamlLoader::load_from_str(&yml).expect("YAML")[0];
    assert_eq!(doc["runs"]["using"].as_str(), Some("composite"));
    assert_eq!(doc["inputs"]["tool"]["required"].as_bool(), Some(true));
    let steps = doc["runs"]["steps"].as_vec().expect("steps");
    let step = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    for tool in gantry::TOOLS.iter().filter(|t| t.spec.publish_action) {
        let name = tool.spec.name;
        let run = step(name);
        assert_eq!(
            run["uses"].as_str(),
            Some(format!("docker://{FIXTURE_IMAGE}").as_str())
        );
        assert_eq!(
            run["with"]["args"].as_str(),
            Some(format!("{name} --action").as_str())
        );
        assert_eq!(
            run["if"].as_str(),
            Some(format!("inputs.tool == '{name}'").as_str())
        );
        for input in generate::input_docs(tool) {
            assert!(
                !doc["inputs"][input.name.as_str()].is_badvalue(),
                "{name}'s input {} is the root action's",
                input.name
            );
            let variable = gantry_actions::inputs::variable_name(&input.name);
            assert_eq!(
                run["env"][variable.as_str()].as_str(),
                Some(format!("${{{{ inputs.{} }}}}", input.name).as_str()),
                "{name} gets {}",
                input.name
            );
        }
        for output in tool.spec.outputs {
            let value = doc["outputs"][output.name]["value"]
                .as_str()
                .unwrap_or_default();
            assert!(
                value.contains(&format!("steps.{name}.outputs.{}", output.name)),
                "{name}'s output {} is the root action's: {value}",
                output.name
            );
        }
    }
    let sequence: Vec<&str> = steps
        .iter()
        .filter_map(|s| s["id"].as_str()?.strip_prefix("sequence-"))
        .collect();
    assert_eq!(
        sequence,
        [
            "build",
            "sign-image",
            "sbom-attach",
            "verify-image",
            "promote-digest"
        ]
    );
    let verify = step("sequence-verify-image");
    assert!(
        verify["env"]["INPUT_IMAGE"]
            .as_str()
            .is_some_and(|v| v.contains("steps.sequence-build.outputs.digest || inputs.digest")),
        "verify takes the digest that was built or given"
    );
    assert_eq!(
        verify["env"]["INPUT_REQUIRE-ATTESTATION"].as_str(),
        Some("${{ inputs.require-attestation || 'cyclonedx' }}")
    );
    // A github-token default every tool shares survives the union.
    assert_eq!(
        doc["inputs"]["github-token"]["default"].as_str(),
        Some("${{ github.token }}")
    );
}

/// The reusable workflows run the pinned image: `generate` moves every pin to it, and `--check`
/// calls a stale one drift.
#[test]
fn reusable_workflows_follow_the_pinned_image() {
    let old = "ghcr.io/gantry-dev/gantry@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let text = format!(
        "on:\n  workflow_call:\njobs:\n  a:\n    steps:\n      - uses: docker://{old}\n      - env:\n          GANTRY_IMAGE: {old}\n      - uses: docker://ghcr.io/other/image@sha256:2222222222222222222222222222222222222222222222222222222222222222\n"
    );
    let repinned = generate::repin_workflow(&text, FIXTURE_IMAGE);
    assert_eq!(repinned.matches(FIXTURE_IMAGE).count(), 2, "{repinned}");
    assert!(!repinned.contains(old));
    assert!(
        repinned.contains("ghcr.io/other/image@sha256:2222"),
        "others are left alone"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("mkdir");
    std::fs::write(workflows.join("reusable.yml"), &text).expect("write");
    std::fs::write(workflows.join("ci.yml"), format!("on: push\n# {old}\n")).expect("write");
    let files = generate::wanted_files(dir.path(), &[], Some(FIXTURE_IMAGE)).expect("files");
    assert_eq!(
        files.len(),
        1,
        "only the reusable workflow is the generator's"
    );
    assert_eq!(
        generate::drift(&files),
        vec![workflows.join("reusable.yml")]
    );
    std::fs::write(&files[0].0, &files[0].1).expect("write");
    assert!(generate::drift(&files).is_empty());
}
