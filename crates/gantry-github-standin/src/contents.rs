//! Repository files as the contents API serves them: branches of commits, each commit a tree of
//! paths to blobs; a write replaces exactly the blob it names (409 otherwise) and becomes one new
//! commit on its branch. Blob SHAs are git's (SHA-1 of `blob <size>\0<bytes>`).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Shared, error, timestamp, user};

/// One commit of the stand-in's repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommit {
    /// Its SHA.
    pub sha: String,
    /// Its parent.
    pub parent: Option<String>,
    /// Its message.
    pub message: String,
    /// Author `(name, email)`.
    pub author: (String, String),
    /// Committer `(name, email)`.
    pub committer: (String, String),
    /// The paths it changed.
    pub touched: Vec<String>,
    tree: BTreeMap<String, String>,
    tree_sha: String,
    date: String,
}

#[derive(Default)]
pub(crate) struct GitState {
    /// `(owner/repo, branch)` → head commit.
    heads: HashMap<(String, String), String>,
    commits: HashMap<String, GitCommit>,
    blobs: HashMap<String, Vec<u8>>,
    trees: HashMap<String, BTreeMap<String, String>>,
    counter: u64,
}

/// A tree's SHA (of its sorted entries; stable for equal trees).
fn tree_sha(tree: &BTreeMap<String, String>) -> String {
    let mut hasher = sha1_smol::Sha1::new();
    for (path, blob) in tree {
        hasher.update(format!("{path}\0{blob}\n").as_bytes());
    }
    hasher.digest().to_string()
}

/// Git's blob SHA of `bytes`.
pub fn blob_sha(bytes: &[u8]) -> String {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hasher.digest().to_string()
}

/// A label or other name as a URL segment.
pub(crate) fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl GitState {
    /// The tree at `git_ref`: a branch, else a commit SHA.
    fn tree(&self, repository: &str, git_ref: &str) -> Option<&BTreeMap<String, String>> {
        let head = self
            .heads
            .get(&(repository.to_owned(), git_ref.to_owned()))
            .map_or(git_ref, String::as_str);
        self.commits.get(head).map(|c| &c.tree)
    }

    /// The head commit of `branch`.
    pub(crate) fn head(&self, repository: &str, branch: &str) -> Option<String> {
        self.heads
            .get(&(repository.to_owned(), branch.to_owned()))
            .cloned()
    }

    /// Points `branch` at `sha` (creating it).
    pub(crate) fn set_head(&mut self, repository: &str, branch: &str, sha: &str) {
        self.heads
            .insert((repository.to_owned(), branch.to_owned()), sha.to_owned());
    }

    /// Whether the commit exists.
    pub(crate) fn has_commit(&self, sha: &str) -> bool {
        self.commits.contains_key(sha)
    }

    /// Whether `ancestor` is `sha` or one of its ancestors.
    pub(crate) fn descends(&self, sha: &str, ancestor: &str) -> bool {
        let mut next = Some(sha.to_owned());
        while let Some(current) = next {
            if current == ancestor {
                return true;
            }
            next = self.commits.get(&current).and_then(|c| c.parent.clone());
        }
        false
    }

    /// Commits `files` on `branch` (created when missing); returns the commit.
    pub(crate) fn commit(
        &mut self,
        repository: &str,
        branch: &str,
        files: &[(String, Vec<u8>)],
        message: &str,
        author: (String, String),
        committer: (String, String),
    ) -> GitCommit {
        let key = (repository.to_owned(), branch.to_owned());
        let parent = self.heads.get(&key).cloned();
        let mut tree = parent
            .as_ref()
            .and_then(|p| self.commits.get(p))
            .map(|c| c.tree.clone())
            .unwrap_or_default();
        for (path, bytes) in files {
            let sha = blob_sha(bytes);
            self.blobs.insert(sha.clone(), bytes.clone());
            tree.insert(path.clone(), sha);
        }
        let touched = files.iter().map(|(p, _)| p.clone()).collect();
        let commit = self.new_commit(tree, parent, message, author, committer, touched);
        self.heads.insert(key, commit.sha.clone());
        commit
    }

    /// A commit of `tree` on `parent`, on no branch.
    fn new_commit(
        &mut self,
        tree: BTreeMap<String, String>,
        parent: Option<String>,
        message: &str,
        author: (String, String),
        committer: (String, String),
        touched: Vec<String>,
    ) -> GitCommit {
        self.counter += 1;
        let mut hasher = sha1_smol::Sha1::new();
        hasher.update(
            format!("commit {} {:?} {message} {:?}", self.counter, parent, tree).as_bytes(),
        );
        let sha = tree_sha(&tree);
        self.trees.insert(sha.clone(), tree.clone());
        let commit = GitCommit {
            sha: hasher.digest().to_string(),
            parent,
            message: message.to_owned(),
            author,
            committer,
            touched,
            tree,
            tree_sha: sha,
            date: timestamp(),
        };
        self.commits.insert(commit.sha.clone(), commit.clone());
        commit
    }

    /// The file at `path` on `branch`.
    pub(crate) fn file(&self, repository: &str, branch: &str, path: &str) -> Option<Vec<u8>> {
        let sha = self.tree(repository, branch)?.get(path)?;
        self.blobs.get(sha).cloned()
    }

    /// The commits of `branch`, newest first.
    pub(crate) fn log(&self, repository: &str, branch: &str) -> Vec<GitCommit> {
        let mut out = Vec::new();
        let mut next = self
            .heads
            .get(&(repository.to_owned(), branch.to_owned()))
            .cloned();
        while let Some(commit) = next.as_ref().and_then(|sha| self.commits.get(sha)) {
            next.clone_from(&commit.parent);
            out.push(commit.clone());
        }
        out
    }
}

fn content_json(repository: &str, branch: &str, path: &str, sha: &str, size: usize) -> Value {
    let url = format!("https://api.github.com/repos/{repository}/contents/{path}?ref={branch}");
    let html = format!("https://github.com/{repository}/blob/{branch}/{path}");
    let git = format!("https://api.github.com/repos/{repository}/git/blobs/{sha}");
    json!({
        "type": "file",
        "name": path.rsplit('/').next().unwrap_or(path),
        "path": path,
        "sha": sha,
        "size": size,
        "url": url,
        "html_url": html,
        "git_url": git,
        "download_url": format!("https://raw.githubusercontent.com/{repository}/{branch}/{path}"),
        "_links": {"self": url, "git": git, "html": html},
    })
}

fn commit_json(repository: &str, commit: &GitCommit) -> Value {
    let api = format!("https://api.github.com/repos/{repository}");
    let person = |(name, email): &(String, String)| json!({"name": name, "email": email, "date": commit.date});
    json!({
        "sha": commit.sha,
        "node_id": format!("C_kwDO{}", &commit.sha[..12]),
        "url": format!("{api}/git/commits/{}", commit.sha),
        "html_url": format!("https://github.com/{repository}/commit/{}", commit.sha),
        "author": person(&commit.author),
        "committer": person(&commit.committer),
        "message": commit.message,
        "tree": {"sha": commit.tree_sha, "url": format!("{api}/git/trees/{}", commit.tree_sha)},
        "parents": commit.parent.iter().map(|p| json!({
            "sha": p,
            "url": format!("{api}/git/commits/{p}"),
            "html_url": format!("https://github.com/{repository}/commit/{p}"),
        })).collect::<Vec<_>>(),
        "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null},
    })
}

#[derive(serde::Deserialize)]
pub(crate) struct RefQuery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

pub(crate) async fn get_file(
    State(state): State<Shared>,
    UrlPath((owner, repo, path)): UrlPath<(String, String, String)>,
    Query(query): Query<RefQuery>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let branch = query.git_ref.unwrap_or_else(|| "main".to_owned());
    let state = state.lock().expect("fake state");
    let Some(bytes) = state.git.file(&repository, &branch, &path) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut body = content_json(&repository, &branch, &path, &blob_sha(&bytes), bytes.len());
    // GitHub wraps the base64 at 60 characters.
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    body["content"] = json!(format!("{}\n", wrapped.join("\n")));
    body["encoding"] = json!("base64");
    Json(body).into_response()
}

fn person_of(value: Option<&Value>) -> Option<(String, String)> {
    let value = value?;
    Some((
        value.get("name")?.as_str()?.to_owned(),
        value.get("email")?.as_str()?.to_owned(),
    ))
}

pub(crate) async fn put_file(
    State(state): State<Shared>,
    UrlPath((owner, repo, path)): UrlPath<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let branch = body["branch"].as_str().unwrap_or("main").to_owned();
    let Some(bytes) = body["content"]
        .as_str()
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "content is not valid Base64",
        );
    };
    let mut state = state.lock().expect("fake state");
    let existing = state.git.file(&repository, &branch, &path);
    let named = body["sha"].as_str();
    match (&existing, named) {
        (Some(_), None) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid request.\n\n\"sha\" wasn't supplied.",
            );
        }
        (Some(current), Some(sha)) if blob_sha(current) != sha => {
            return error(
                StatusCode::CONFLICT,
                &format!("{path} does not match {sha}"),
            );
        }
        (None, Some(sha)) => {
            return error(
                StatusCode::CONFLICT,
                &format!("{path} does not match {sha}"),
            );
        }
        _ => {}
    }
    let committer = person_of(body.get("committer")).unwrap_or_else(|| {
        (
            "github-actions[bot]".to_owned(),
            "41898282+github-actions[bot]@users.noreply.github.com".to_owned(),
        )
    });
    let author = person_of(body.get("author")).unwrap_or_else(|| committer.clone());
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    let commit = state.git.commit(
        &repository,
        &branch,
        &[(path.clone(), bytes.clone())],
        &message,
        author,
        committer,
    );
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (
        status,
        Json(json!({
            "content": content_json(&repository, &branch, &path, &blob_sha(&bytes), bytes.len()),
            "commit": commit_json(&repository, &commit),
        })),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct CommitsQuery {
    sha: Option<String>,
    path: Option<String>,
    per_page: Option<usize>,
}

pub(crate) async fn list_commits(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(query): Query<CommitsQuery>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let branch = query.sha.unwrap_or_else(|| "main".to_owned());
    let state = state.lock().expect("fake state");
    let api = format!("https://api.github.com/repos/{repository}");
    let list: Vec<Value> = state
        .git
        .log(&repository, &branch)
        .into_iter()
        .filter(|c| query.path.as_ref().is_none_or(|p| c.touched.contains(p)))
        .take(query.per_page.unwrap_or(30))
        .map(|c| {
            let inner = commit_json(&repository, &c);
            json!({
                "url": format!("{api}/commits/{}", c.sha),
                "sha": c.sha,
                "node_id": inner["node_id"],
                "html_url": inner["html_url"],
                "comments_url": format!("{api}/commits/{}/comments", c.sha),
                "commit": {
                    "url": inner["url"],
                    "author": inner["author"],
                    "committer": inner["committer"],
                    "message": c.message,
                    "comment_count": 0,
                    "tree": inner["tree"],
                    "verification": inner["verification"],
                },
                "author": user("gantry-promoter", 7),
                "committer": user("web-flow", 19_864_447),
                "parents": inner["parents"],
            })
        })
        .collect();
    Json(list).into_response()
}

pub(crate) async fn get_commit(
    State(state): State<Shared>,
    UrlPath((owner, repo, sha)): UrlPath<(String, String, String)>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let state = state.lock().expect("fake state");
    match state.git.commits.get(&sha) {
        Some(commit) => Json(commit_json(&repository, commit)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// `POST /git/trees`: a tree from `base_tree` with entries replaced (`content`, or a blob `sha`)
/// or deleted (`sha: null`).
pub(crate) async fn create_tree(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let mut state = state.lock().expect("fake state");
    let mut tree = match body["base_tree"].as_str() {
        None => BTreeMap::new(),
        Some(base) => match state.git.trees.get(base) {
            Some(tree) => tree.clone(),
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "base_tree is not a valid tree oid",
                );
            }
        },
    };
    for entry in body["tree"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(path) = entry["path"].as_str() else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "tree.path is missing");
        };
        if entry["type"] != "blob" || entry["mode"] != "100644" {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "only 100644 blobs are served here",
            );
        }
        if let Some(content) = entry["content"].as_str() {
            let bytes = content.as_bytes().to_vec();
            let sha = blob_sha(&bytes);
            state.git.blobs.insert(sha.clone(), bytes);
            tree.insert(path.to_owned(), sha);
        } else if let Some(sha) = entry["sha"].as_str() {
            if !state.git.blobs.contains_key(sha) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "tree.sha is not a valid blob",
                );
            }
            tree.insert(path.to_owned(), sha.to_owned());
        } else {
            tree.remove(path);
        }
    }
    let sha = tree_sha(&tree);
    let api = format!("https://api.github.com/repos/{repository}");
    let entries: Vec<Value> = tree
        .iter()
        .map(|(path, blob)| {
            json!({
                "path": path, "mode": "100644", "type": "blob", "sha": blob,
                "size": state.git.blobs.get(blob).map_or(0, Vec::len),
                "url": format!("{api}/git/blobs/{blob}"),
            })
        })
        .collect();
    state.git.trees.insert(sha.clone(), tree);
    (
        StatusCode::CREATED,
        Json(json!({"sha": sha, "url": format!("{api}/git/trees/{sha}"), "truncated": false, "tree": entries})),
    )
        .into_response()
}

/// `POST /git/commits`: a commit of a tree on its parents (one here), on no branch.
pub(crate) async fn create_commit(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let mut state = state.lock().expect("fake state");
    let Some(tree) = body["tree"]
        .as_str()
        .and_then(|t| state.git.trees.get(t))
        .cloned()
    else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Tree SHA does not exist");
    };
    let parents: Vec<String> = body["parents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if parents.len() > 1 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "merge commits are not served here",
        );
    }
    if parents.iter().any(|p| !state.git.commits.contains_key(p)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Parent SHA does not exist or is not a commit object",
        );
    }
    let parent = parents.into_iter().next();
    let base = parent
        .as_ref()
        .and_then(|p| state.git.commits.get(p))
        .map(|c| c.tree.clone())
        .unwrap_or_default();
    let touched = tree
        .iter()
        .filter(|(path, blob)| base.get(*path) != Some(*blob))
        .map(|(path, _)| path.clone())
        .collect();
    let committer = person_of(body.get("committer")).unwrap_or_else(|| {
        (
            "github-actions[bot]".to_owned(),
            "41898282+github-actions[bot]@users.noreply.github.com".to_owned(),
        )
    });
    let author = person_of(body.get("author")).unwrap_or_else(|| committer.clone());
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    let commit = state
        .git
        .new_commit(tree, parent, &message, author, committer, touched);
    (StatusCode::CREATED, Json(commit_json(&repository, &commit))).into_response()
}
