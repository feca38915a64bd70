//! The GitHub API transport against the GitHub stand-in behind prism (every request and response
//! checked against GitHub's OpenAPI description): one commit per promotion, trailers git itself
//! parses, idempotent re-runs, and concurrent promotions — different files all land, the same key
//! has exactly one winner and no lost update.

use std::process::Command;
use std::sync::Arc;

use gantry_github::{GitHub, Options, Person, Repository};
use gantry_gitops::Target;
use gantry_gitops::github::{Landed, Write, WriteFiles, write, write_files};
use gantry_gitops::message::Message;
use gantry_testkit::github::{GitHubFake, TOKEN};

const DEPLOY: &str = "acme/deploy";

fn digest(n: u32) -> String {
    format!("sha256:{n:08x}{}", "ab".repeat(28))
}

fn values(digest: &str) -> String {
    format!(
        "# billing, staging\nimage:\n  repository: ghcr.io/acme/billing\n  digest: \"{digest}\" # set by gantry\nreplicas: 2\n"
    )
}

fn client(fake: &GitHubFake) -> GitHub {
    let mut options = Options::new(gantry_secret::Secret::new(TOKEN));
    options.api_url = Some(fake.url());
    GitHub::new(options).expect("client")
}

fn committer() -> Person {
    Person {
        name: "gantry".into(),
        email: "gantry@users.noreply.github.com".into(),
    }
}

/// Promotes `digest` into `file`, with the message promote-digest writes.
async fn promote(github: &GitHub, file: &str, new: &str) -> Landed {
    promote_from(github, file, new, None).await
}

/// Promotes `digest` into `file` over `expected`, the digest the promoter read before its gates.
async fn promote_from(github: &GitHub, file: &str, new: &str, expected: Option<&str>) -> Landed {
    let repository: Repository = DEPLOY.parse().expect("repository");
    let targets = [Target::path("image.digest", false).expect("path")];
    let committer = committer();
    let author = Person {
        name: "lead-lars".into(),
        email: "lead-lars@users.noreply.github.com".into(),
    };
    let message = move |previous: Option<&str>| {
        Message {
            environment: "staging",
            source_environment: Some("dev"),
            image: "ghcr.io/acme/billing",
            digest: new,
            previous,
            run: Some("https://github.com/acme/billing/actions/runs/42"),
        }
        .text()
    };
    write(
        github,
        &Write {
            repository: &repository,
            branch: "main",
            file,
            targets: &targets,
            digest: new,
            expected,
            message: &message,
            author: Some(&author),
            committer: &committer,
        },
    )
    .await
    .expect("write")
}

/// `git interpret-trailers --parse` of a message: git's own reading of the trailers.
fn trailers(message: &str) -> String {
    let mut child = Command::new("git")
        .args(["interpret-trailers", "--parse"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), message.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("git");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_promotion_is_one_commit_and_a_rerun_changes_nothing() {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let before = values(&digest(1));
    fake.commit_files(
        DEPLOY,
        "main",
        &[("apps/billing/staging/values.yaml", before.as_bytes())],
        "init",
    );
    let github = client(&fake);
    let new = digest(2);
    let landed = promote(&github, "apps/billing/staging/values.yaml", &new).await;
    let Landed::Committed {
        commit,
        changes,
        previous,
        attempts,
    } = landed
    else {
        panic!("{landed:?}\n{}", fake.prism_log())
    };
    assert_eq!(
        (attempts, previous.as_deref()),
        (1, Some(digest(1).as_str()))
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].line, 4);
    let after = fake
        .file(DEPLOY, "main", "apps/billing/staging/values.yaml")
        .expect("file");
    assert_eq!(
        String::from_utf8(after).expect("utf-8"),
        values(&new),
        "only the digest changed"
    );
    let log = fake.log(DEPLOY, "main");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].sha, commit);
    assert_eq!(
        log[0].parent.as_deref(),
        Some(log[1].sha.as_str()),
        "no merge commit"
    );
    assert_eq!(log[0].author.0, "lead-lars");
    assert_eq!(log[0].committer.0, "gantry");
    let subject = log[0].message.lines().next().expect("subject");
    assert_eq!(
        subject,
        "promote(staging): billing 00000001abab → 00000002abab"
    );
    assert_eq!(
        trailers(&log[0].message),
        format!(
            "Gantry-Image: ghcr.io/acme/billing\nGantry-Digest: {new}\nGantry-Previous-Digest: {}\nGantry-Environment: staging\nGantry-Source-Environment: dev\nGantry-Run: https://github.com/acme/billing/actions/runs/42\n",
            digest(1)
        )
    );
    // Again: already there, no empty commit.
    let again = promote(&github, "apps/billing/staging/values.yaml", &new).await;
    assert_eq!(
        again,
        Landed::Unchanged {
            previous: Some(new.clone())
        }
    );
    assert_eq!(fake.log(DEPLOY, "main").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_promotions_of_different_files_all_land() {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let files: Vec<String> = (0..20)
        .map(|i| format!("apps/app{i}/values.yaml"))
        .collect();
    let texts: Vec<String> = files.iter().map(|_| values(&digest(1))).collect();
    let seed: Vec<(&str, &[u8])> = files
        .iter()
        .zip(&texts)
        .map(|(f, t)| (f.as_str(), t.as_bytes()))
        .collect();
    fake.commit_files(DEPLOY, "main", &seed, "init");
    let github = Arc::new(client(&fake));
    let tasks: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let (github, file) = (github.clone(), file.clone());
            tokio::spawn(async move {
                promote(
                    &github,
                    &file,
                    &digest(100 + u32::try_from(i).expect("small")),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        let landed = task.await.expect("task");
        assert!(matches!(landed, Landed::Committed { .. }), "{landed:?}");
    }
    for (i, file) in files.iter().enumerate() {
        let text =
            String::from_utf8(fake.file(DEPLOY, "main", file).expect("file")).expect("utf-8");
        assert_eq!(
            text,
            values(&digest(100 + u32::try_from(i).expect("small"))),
            "{file}"
        );
    }
    let log = fake.log(DEPLOY, "main");
    assert_eq!(log.len(), 21, "one commit each, in a line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_promotions_of_one_key_have_one_winner_and_lose_nothing() {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let file = "apps/billing/production/values.yaml";
    fake.commit_files(
        DEPLOY,
        "main",
        &[(file, values(&digest(1)).as_bytes())],
        "init",
    );
    let github = Arc::new(client(&fake));
    let tasks: Vec<_> = (0..20u32)
        .map(|i| {
            let github = github.clone();
            // Each read digest 1 before its gates, as twenty concurrent promotions would.
            tokio::spawn(async move {
                let seen = digest(1);
                (
                    i,
                    promote_from(&github, file, &digest(200 + i), Some(&seen)).await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (i, Landed::Committed { commit, .. }) => winners.push((i, commit)),
            (
                _,
                Landed::Conflict {
                    expected,
                    found,
                    commit,
                },
            ) => conflicts.push((expected, found, commit)),
            (i, other) => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?} {conflicts:?}");
    let (winner, winning_commit) = &winners[0];
    let written = digest(200 + winner);
    assert_eq!(conflicts.len(), 19);
    for (expected, found, commit) in &conflicts {
        assert_eq!(expected.as_deref(), Some(digest(1).as_str()));
        assert_eq!(
            found.as_deref(),
            Some(written.as_str()),
            "names the digest that won"
        );
        assert_eq!(
            commit.as_ref().map(|c| c.sha.as_str()),
            Some(winning_commit.as_str()),
            "and its commit"
        );
    }
    let text = String::from_utf8(fake.file(DEPLOY, "main", file).expect("file")).expect("utf-8");
    assert_eq!(text, values(&written));
    assert_eq!(
        fake.log(DEPLOY, "main").len(),
        2,
        "exactly one commit: nothing overwritten"
    );
}

fn kustomization(digest: &str) -> String {
    format!(
        "resources:\n  - ../../base\nimages:\n  - name: ghcr.io/acme/billing\n    digest: {digest}\n"
    )
}

/// Promotes `new` into an environment's values.yaml and kustomization.yaml as one commit.
async fn promote_both(github: &GitHub, env: &str, new: &str, expected: Option<&str>) -> Landed {
    let repository: Repository = DEPLOY.parse().expect("repository");
    let files = vec![
        (
            format!("apps/billing/{env}/values.yaml"),
            vec![Target::path("image.digest", false).expect("path")],
        ),
        (
            format!("apps/billing/{env}/kustomization.yaml"),
            vec![Target::KustomizeImage {
                name: "ghcr.io/acme/billing".into(),
            }],
        ),
    ];
    let committer = committer();
    let message = move |previous: Option<&str>| format!("promote({env}): {previous:?} → {new}");
    write_files(
        github,
        &WriteFiles {
            repository: &repository,
            branch: "main",
            files: &files,
            digest: new,
            expected,
            message: &message,
            author: None,
            committer: &committer,
        },
    )
    .await
    .expect("write")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_files_are_one_commit_and_ten_concurrent_environments_all_land() {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let envs: Vec<String> = (0..10).map(|i| format!("env{i}")).collect();
    let mut seed = Vec::new();
    for env in &envs {
        seed.push((
            format!("apps/billing/{env}/values.yaml"),
            values(&digest(1)),
        ));
        seed.push((
            format!("apps/billing/{env}/kustomization.yaml"),
            kustomization(&digest(1)),
        ));
    }
    let seed_files: Vec<(&str, &[u8])> = seed
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_bytes()))
        .collect();
    fake.commit_files(DEPLOY, "main", &seed_files, "init");
    let github = Arc::new(client(&fake));

    // One environment: one commit of both files on the head, and a re-run changes nothing.
    let landed = promote_both(&github, "env0", &digest(2), Some(&digest(1))).await;
    let Landed::Committed {
        commit, changes, ..
    } = landed
    else {
        panic!("{landed:?}\n{}", fake.prism_log())
    };
    assert_eq!(changes.len(), 2);
    let log = fake.log(DEPLOY, "main");
    assert_eq!((log.len(), log[0].sha.as_str()), (2, commit.as_str()));
    assert_eq!(
        log[0].touched,
        [
            "apps/billing/env0/kustomization.yaml",
            "apps/billing/env0/values.yaml"
        ]
    );
    assert_eq!(
        fake.file(DEPLOY, "main", "apps/billing/env0/kustomization.yaml"),
        Some(kustomization(&digest(2)).into_bytes())
    );
    let again = promote_both(&github, "env0", &digest(2), None).await;
    assert!(matches!(again, Landed::Unchanged { .. }), "{again:?}");
    // Someone else's digest in the first file meanwhile: a conflict, nothing written.
    let conflict = promote_both(&github, "env0", &digest(3), Some(&digest(1))).await;
    assert!(
        matches!(&conflict, Landed::Conflict { found: Some(f), .. } if *f == digest(2)),
        "{conflict:?}"
    );
    assert_eq!(fake.log(DEPLOY, "main").len(), 2);

    // Nine more environments at once: every one lands, one commit each, none lost.
    let tasks: Vec<_> = envs[1..]
        .iter()
        .map(|env| {
            let (github, env) = (github.clone(), env.clone());
            tokio::spawn(
                async move { promote_both(&github, &env, &digest(9), Some(&digest(1))).await },
            )
        })
        .collect();
    for task in tasks {
        let landed = task.await.expect("task");
        assert!(matches!(landed, Landed::Committed { .. }), "{landed:?}");
    }
    assert_eq!(fake.log(DEPLOY, "main").len(), 11);
    for env in &envs[1..] {
        assert_eq!(
            fake.file(
                DEPLOY,
                "main",
                &format!("apps/billing/{env}/kustomization.yaml")
            ),
            Some(kustomization(&digest(9)).into_bytes()),
            "{env}"
        );
        assert_eq!(
            fake.file(DEPLOY, "main", &format!("apps/billing/{env}/values.yaml")),
            Some(values(&digest(9)).into_bytes()),
            "{env}"
        );
    }
}
