use super::*;

const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn path(text: &str) -> Target {
    Target::path(text, false).expect("path")
}

/// Edits `before` and checks the result is exactly `after`.
#[track_caller]
fn splices(before: &str, targets: &[Target], after: &str) -> Edited {
    let edited = edit("f.yaml", before, targets, NEW).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(edited.text, after);
    edited
}

#[test]
fn a_trailing_comment_and_the_quoting_stay() {
    let before = format!(
        "image:\n  repository: ghcr.io/acme/billing  # the app\n  digest: \"{OLD}\" # pinned by gantry\n  tag: ''\n"
    );
    let after = before.replace(OLD, NEW);
    let edited = splices(&before, &[path("image.digest")], &after);
    assert_eq!(edited.previous.as_deref(), Some(OLD));
    assert_eq!(
        edited.changes,
        [Change {
            file: "f.yaml".into(),
            line: 3,
            column: 11,
            document: 0,
            path: "image.digest".into(),
            old: OLD.into(),
            new: NEW.into(),
        }]
    );
}

#[test]
fn a_value_inside_a_flow_mapping_is_written_in_place() {
    let before = format!(
        "image: {{repository: ghcr.io/acme/billing, digest: {OLD}, pullPolicy: IfNotPresent}}\nother: {{digest: {OLD}}}\n"
    );
    let after = before.replacen(OLD, NEW, 1);
    splices(&before, &[path("image.digest")], &after);
}

#[test]
fn crlf_a_bom_and_no_final_newline_stay() {
    let before = format!("\u{feff}# values\r\nimage:\r\n  digest: '{OLD}'\r\n  tag: v1");
    let after = before.replace(OLD, NEW);
    splices(&before, &[path("image.digest")], &after);
}

#[test]
fn every_document_of_a_stream_is_reached() {
    let before = format!(
        "---\nkind: A\nimage:\n  digest: {OLD}\n---\nkind: B\n---\nkind: C\nimage:\n  digest: {OLD}\n...\n"
    );
    let after = before.replace(OLD, NEW);
    let edited = splices(&before, &[path("image.digest")], &after);
    assert_eq!(
        edited
            .changes
            .iter()
            .map(|c| c.document)
            .collect::<Vec<_>>(),
        [0, 2]
    );
}

#[test]
fn an_edit_that_is_already_there_changes_nothing() {
    let before = format!("image:\n  digest: {NEW}\n");
    let edited = splices(&before, &[path("image.digest")], &before);
    assert!(edited.changes.is_empty());
    assert_eq!(edited.previous.as_deref(), Some(NEW));
}

#[test]
fn kustomize_images_by_name_and_a_missing_digest_added() {
    let before = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: ghcr.io/acme/billing\n    newTag: v1.4.2\n  - name: ghcr.io/acme/web   # the front\n    digest: {OLD}\n"
    );
    let targets = [
        Target::KustomizeImage {
            name: "ghcr.io/acme/billing".into(),
        },
        Target::KustomizeImage {
            name: "ghcr.io/acme/web".into(),
        },
    ];
    let after = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: ghcr.io/acme/billing\n    digest: {NEW}\n    newTag: v1.4.2\n  - name: ghcr.io/acme/web   # the front\n    digest: {NEW}\n"
    );
    let edited = splices(&before, &targets, &after);
    assert_eq!(edited.changes[0].line, 5, "{:?}", edited.changes);
    assert_eq!(edited.changes[0].path, "images[0].digest");
}

#[test]
fn image_fields_of_the_repository_in_plain_manifests() {
    let before = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/billing:v1.4.2\n        - name: sidecar\n          image: ghcr.io/acme/proxy:v2\n      initContainers:\n        - image: \"ghcr.io/acme/billing@sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n";
    let after = before
        .replace(
            "ghcr.io/acme/billing:v1.4.2",
            &format!("ghcr.io/acme/billing@{NEW}"),
        )
        .replace(&format!("billing@{OLD}"), &format!("billing@{NEW}"));
    splices(
        before,
        &[Target::Image {
            repository: "ghcr.io/acme/billing".into(),
        }],
        &after,
    );
}

#[test]
fn marker_comments_gantry_and_flux() {
    let before = format!(
        "app:\n  image: ghcr.io/acme/billing@{OLD} # gantry: billing\n  other: ghcr.io/acme/web:v1 # gantry: web\nflux:\n  image: ghcr.io/acme/billing:v1 # {{\"$imagepolicy\": \"flux-system:billing\"}}\n"
    );
    let after = format!(
        "app:\n  image: ghcr.io/acme/billing@{NEW} # gantry: billing\n  other: ghcr.io/acme/web:v1 # gantry: web\nflux:\n  image: ghcr.io/acme/billing@{NEW} # {{\"$imagepolicy\": \"flux-system:billing\"}}\n"
    );
    splices(
        &before,
        &[Target::Marker {
            name: "billing".into(),
        }],
        &after,
    );
}

#[test]
fn refusals_name_the_line_and_change_nothing() {
    let alias = format!("base: &base\n  digest: {OLD}\nimage: *base\n");
    let refused = edit("v.yaml", &alias, &[path("image.digest")], NEW).expect_err("alias");
    assert!(
        refused
            .to_string()
            .starts_with("v.yaml:0: path image.digest: not found"),
        "{refused}"
    );
    let through = edit("v.yaml", &alias, &[path("image")], NEW).expect_err("alias");
    assert!(
        through
            .to_string()
            .starts_with("v.yaml:3: path image: image is an alias"),
        "{through}"
    );
    let anchored = format!("digest: &d {OLD}\nother: *d\n");
    let refused = edit("v.yaml", &anchored, &[path("digest")], NEW).expect_err("anchor");
    assert!(
        refused
            .to_string()
            .starts_with("v.yaml:1: path digest: digest is anchored"),
        "{refused}"
    );
    let block = "image:\n  digest: |\n    sha256:1\n";
    let refused = edit("v.yaml", block, &[path("image.digest")], NEW).expect_err("block");
    assert!(refused.to_string().contains("a block scalar"), "{refused}");
    let tag = "image:\n  tag: v1.4.2\n";
    let refused = edit("v.yaml", tag, &[path("image.tag")], NEW).expect_err("a tag");
    assert_eq!(
        refused.to_string(),
        "v.yaml:2: path image.tag: image.tag holds \"v1.4.2\", which is neither a digest nor a reference with one"
    );
    let missing = "image:\n  repository: x\n";
    assert!(edit("v.yaml", missing, &[path("image.digest")], NEW).is_err());
    let created = edit(
        "v.yaml",
        missing,
        &[Target::path("image.digest", true).expect("path")],
        NEW,
    )
    .expect("created");
    assert_eq!(
        created.text,
        format!("image:\n  repository: x\n  digest: {NEW}\n")
    );
    let broken = edit("v.yaml", "a: [b\n", &[path("a")], NEW).expect_err("not YAML");
    assert!(broken.to_string().starts_with("v.yaml:"), "{broken}");
}

#[test]
fn paths_parse() {
    assert_eq!(
        path("spec.containers[0].image"),
        Target::Path {
            path: vec![
                Step::Key("spec".into()),
                Step::Key("containers".into()),
                Step::Index(0),
                Step::Key("image".into())
            ],
            create: false
        }
    );
    assert_eq!(
        path("a.\"b.c\".d"),
        Target::Path {
            path: vec![
                Step::Key("a".into()),
                Step::Key("b.c".into()),
                Step::Key("d".into())
            ],
            create: false
        }
    );
    for bad in ["", "a..b", "a[x]", "a[0", "a.", "\"a"] {
        assert!(Target::path(bad, false).is_err(), "{bad}");
    }
}

#[test]
fn positions_after_multibyte_text_are_bytes() {
    let before = format!(
        "# café — ünïcode 🚀\nnote: \"grüße\"\nimage: {{name: ärger, digest: {OLD}}} # ✓\n"
    );
    let after = before.replace(OLD, NEW);
    let edited = splices(&before, &[path("image.digest")], &after);
    assert_eq!((edited.changes[0].line, edited.changes[0].column), (3, 30));
}
