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
