//! The git transport against a real git server (`git http-backend` behind basic auth): one
//! commit of several files, trailers and identities git reads back, idempotent re-runs, races on
//! one branch that all land when they touch different files and have one winner when they touch
//! one key, and credentials that never show.

use std::sync::Arc;

use gantry_github::Person;
use gantry_gitops::Target;
use gantry_gitops::git::{GitWrite, Remote, write};
use gantry_gitops::github::Landed;
use gantry_gitops::message::Message;
use gantry_testkit::git::{GitServer, PASSWORD, USER, git};

fn digest(n: u32) -> String {
    format!("sha256:{n:08x}{}", "cd".repeat(28))
}

fn values(digest: &str) -> String {
    format!("image:\n  repository: ghcr.io/acme/billing\n  digest: {digest}  # gantry\n")
}

fn kustomization(digest: &str) -> String {
    format!(
        "kind: Kustomization\nimages:\n  - name: ghcr.io/acme/billing\n    digest: '{digest}'\n"
    )
}

fn committer() -> Person {
    Person {
        name: "gantry".into(),
        email: "gantry@example.com".into(),
    }
}

struct Promotion {
    url: String,
    password: gantry_secret::Secret,
    files: Vec<(String, Vec<Target>)>,
}

impl Promotion {
    fn new(url: &str, files: &[&str]) -> Self {
        let targets = |file: &str| {
            if file.ends_with("kustomization.yaml") {
                vec![Target::KustomizeImage {
                    name: "ghcr.io/acme/billing".into(),
                }]
            } else {
                vec![Target::path("image.digest", false).expect("path")]
            }
        };
        Self {
            url: url.to_owned(),
            password: gantry_secret::Secret::new(PASSWORD),
            files: files
                .iter()
                .map(|f| ((*f).to_owned(), targets(f)))
                .collect(),
        }
    }

    async fn run(
        &self,
        new: &str,
        expected: Option<&str>,
    ) -> Result<Landed, gantry_gitops::github::WriteError> {
        let remote = Remote {
            url: &self.url,
            username: Some(USER),
            password: Some(&self.password),
        };
        let message = |previous: Option<&str>| {
            Message {
                environment: "production",
                source_environment: Some("canary"),
                image: "ghcr.io/acme/billing",
                digest: new,
                previous,
                run: None,
            }
            .text()
        };
        let author = Person {
            name: "lead-lars".into(),
            email: "lars@example.com".into(),
        };
        write(&GitWrite {
            remote: &remote,
            branch: "main",
            files: &self.files,
            digest: new,
            expected,
            message: &message,
            author: Some(&author),
            committer: &committer(),
        })
        .await
    }
}

fn show(server: &GitServer, file: &str) -> String {
    git(
        &server.bare("deploy.git"),
        &["show", &format!("main:{file}")],
    )
    .expect("show")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_commit_of_several_files_with_trailers_and_identities() {
    let Some(server) = GitServer::start().expect("git server") else {
        return;
    };
    let (v, k) = (values(&digest(1)), kustomization(&digest(1)));
    let url = server
        .repository(
            "deploy.git",
            &[
                ("apps/billing/prod/values.yaml", v.as_bytes()),
                ("apps/billing/prod/kustomization.yaml", k.as_bytes()),
            ],
        )
        .expect("repository");
    let promotion = Promotion::new(
        &url,
        &[
            "apps/billing/prod/values.yaml",
            "apps/billing/prod/kustomization.yaml",
        ],
    );
    let landed = promotion.run(&digest(2), None).await.expect("write");
    let Landed::Committed {
        commit,
        changes,
        previous,
        attempts,
    } = landed
    else {
        panic!("{landed:?}")
    };
    assert_eq!(
        (attempts, previous.as_deref()),
        (1, Some(digest(1).as_str()))
    );
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.file.as_str(), c.line))
            .collect::<Vec<_>>(),
        [
            ("apps/billing/prod/values.yaml", 3),
            ("apps/billing/prod/kustomization.yaml", 4)
        ]
    );
    assert_eq!(
        show(&server, "apps/billing/prod/values.yaml"),
        values(&digest(2))
    );
    assert_eq!(
        show(&server, "apps/billing/prod/kustomization.yaml"),
        kustomization(&digest(2))
    );
    let bare = server.bare("deploy.git");
    let log = git(&bare, &["log", "--format=%H %P|%an|%cn|%s", "main"]).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    let (head, rest) = lines[0].split_once(' ').expect("parents");
    assert_eq!(head, commit);
    assert_eq!(
        rest.split('|').collect::<Vec<_>>(),
        [
            git(&bare, &["rev-parse", "main~1"]).expect("parent").trim(),
            "lead-lars",
            "gantry",
            "promote(production): billing 00000001cdcd → 00000002cdcd"
        ]
    );
    let trailers = git(
        &bare,
        &["log", "-1", "--format=%(trailers:only,unfold)", "main"],
    )
    .expect("trailers");
    assert_eq!(
        trailers.trim(),
        format!(
            "Gantry-Image: ghcr.io/acme/billing\nGantry-Digest: {}\nGantry-Previous-Digest: {}\nGantry-Environment: production\nGantry-Source-Environment: canary",
            digest(2),
            digest(1)
        )
    );
    let again = promotion.run(&digest(2), None).await.expect("write");
    assert_eq!(
        again,
        Landed::Unchanged {
            previous: Some(digest(2))
        }
    );
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"])
            .expect("count")
            .trim(),
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_all_land_on_different_files_and_one_wins_a_key() {
    let Some(server) = GitServer::start().expect("git server") else {
        return;
    };
    let texts: Vec<(String, String)> = (0..6)
        .map(|i| (format!("apps/app{i}/values.yaml"), values(&digest(1))))
        .collect();
    let files: Vec<(&str, &[u8])> = texts
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_bytes()))
        .collect();
    let url = server.repository("deploy.git", &files).expect("repository");
    // Six promotions of six files at once: all land, one commit each, in a line.
    let tasks: Vec<_> = (0..6u32)
        .map(|i| {
            let promotion = Promotion::new(&url, &[&format!("apps/app{i}/values.yaml")]);
            tokio::spawn(async move { promotion.run(&digest(10 + i), None).await })
        })
        .collect();
    for task in tasks {
        let landed = task.await.expect("task").expect("write");
        assert!(matches!(landed, Landed::Committed { .. }), "{landed:?}");
    }
    for i in 0..6u32 {
        assert_eq!(
            show(&server, &format!("apps/app{i}/values.yaml")),
            values(&digest(10 + i))
        );
    }
    let bare = server.bare("deploy.git");
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"])
            .expect("count")
            .trim(),
        "7"
    );
    assert_eq!(
        git(&bare, &["rev-list", "--merges", "--count", "main"])
            .expect("merges")
            .trim(),
        "0"
    );

    // Six promotions of one key, each having read digest 10 first: one winner, five conflicts
    // naming what won.
    let promotion = Arc::new(Promotion::new(&url, &["apps/app0/values.yaml"]));
    let tasks: Vec<_> = (0..6u32)
        .map(|i| {
            let promotion = promotion.clone();
            tokio::spawn(async move {
                let seen = digest(10);
                (
                    i,
                    promotion
                        .run(&digest(100 + i), Some(&seen))
                        .await
                        .expect("write"),
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.expect("task") {
            (i, Landed::Committed { .. }) => winners.push(i),
            (_, Landed::Conflict { found, .. }) => {
                conflicts += 1;
                assert!(found.is_some_and(|f| f.starts_with("sha256:000000")));
            }
            (i, other) => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 5), "{winners:?}");
    assert_eq!(
        show(&server, "apps/app0/values.yaml"),
        values(&digest(100 + winners[0]))
    );
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"])
            .expect("count")
            .trim(),
        "8"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_pushes_nothing_and_never_shows() {
    let Some(server) = GitServer::start().expect("git server") else {
        return;
    };
    let v = values(&digest(1));
    let url = server
        .repository("deploy.git", &[("values.yaml", v.as_bytes())])
        .expect("repository");
    let mut promotion = Promotion::new(&url, &["values.yaml"]);
    promotion.password = gantry_secret::Secret::new("wrong-s3cret-value");
    let error = promotion.run(&digest(2), None).await.expect_err("refused");
    let text = format!("{error} {error:?}");
    assert!(text.contains("fetch"), "{text}");
    assert!(!text.contains("wrong-s3cret-value"), "{text}");
    assert_eq!(show(&server, "values.yaml"), v);
}
