//! Branches as git references and pull requests between them: a reference is created once (422
//! when it exists), moved only forward unless forced; one open pull request per head and base
//! (422 on a second), updated in place, with requested reviewers and labels.

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{Shared, error, timestamp, user};

/// A pull request of the stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// Its number.
    pub number: u64,
    /// `owner/repo`.
    pub repository: String,
    /// Its title.
    pub title: String,
    /// Its body.
    pub body: String,
    /// The head branch.
    pub head: String,
    /// The base branch.
    pub base: String,
    /// `open` or `closed`.
    pub state: String,
    /// Its labels.
    pub labels: Vec<String>,
    /// Requested reviewers (users).
    pub reviewers: Vec<String>,
    /// Requested reviewers (team slugs).
    pub teams: Vec<String>,
    /// Auto-merge, when turned on: the method and the head commit it may merge.
    pub auto_merge: Option<(String, String)>,
    created_at: String,
    updated_at: String,
}

#[derive(Default)]
pub(crate) struct PullState {
    pub(crate) pulls: Vec<Pull>,
}

/// A repository as GitHub's `repository` schema has it: the minimal one's fields and the ones
/// the full schema requires besides.
fn repository_json(repository: &str) -> Value {
    let mut value = crate::repository(repository, 1_296_269);
    for (field, extra) in [
        (
            "clone_url",
            json!(format!("https://github.com/{repository}.git")),
        ),
        (
            "git_url",
            json!(format!("git://github.com/{repository}.git")),
        ),
        ("ssh_url", json!(format!("git@github.com:{repository}.git"))),
        ("svn_url", json!(format!("https://github.com/{repository}"))),
        ("mirror_url", Value::Null),
        ("homepage", Value::Null),
        ("language", Value::Null),
        ("license", Value::Null),
        ("default_branch", json!("main")),
        ("pushed_at", json!(timestamp())),
        ("created_at", json!("2026-01-01T00:00:00Z")),
        ("updated_at", json!(timestamp())),
    ] {
        value[field] = extra;
    }
    for field in [
        "forks",
        "forks_count",
        "open_issues",
        "open_issues_count",
        "stargazers_count",
        "watchers",
        "watchers_count",
    ] {
        value[field] = json!(0);
    }
    value["size"] = json!(1);
    for (field, on) in [
        ("has_downloads", true),
        ("has_issues", true),
        ("has_projects", false),
        ("has_wiki", false),
        ("has_pages", false),
        ("archived", false),
        ("disabled", false),
    ] {
        value[field] = json!(on);
    }
    value
}

fn label_json(repository: &str, name: &str, id: usize) -> Value {
    json!({
        "id": 208_045_946 + id,
        "node_id": format!("LA_kwDO{id:08}"),
        "url": format!("https://api.github.com/repos/{repository}/labels/{}", crate::contents::encode(name)),
        "name": name,
        "description": "",
        "color": "ededed",
        "default": false,
    })
}

/// A pull request as the `pull-request` schema has it (`full`) or `pull-request-simple`.
fn pull_json(pull: &Pull, head_sha: &str, base_sha: &str, full: bool) -> Value {
    let repository = &pull.repository;
    let owner = repository.split('/').next().unwrap_or_default();
    let api = format!("https://api.github.com/repos/{repository}");
    let url = format!("{api}/pulls/{}", pull.number);
    let html = format!("https://github.com/{repository}/pull/{}", pull.number);
    let link = |href: String| json!({"href": href});
    let side = |branch: &str, sha: &str| {
        json!({
            "label": format!("{owner}:{branch}"),
            "ref": branch,
            "sha": sha,
            "user": user(owner, 583_231),
            "repo": repository_json(repository),
        })
    };
    let mut value = json!({
        "url": url,
        "id": 1_000_000 + pull.number,
        "node_id": format!("PR_kwDO{:08}", pull.number),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": format!("{api}/issues/{}", pull.number),
        "commits_url": format!("{url}/commits"),
        "review_comments_url": format!("{url}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{api}/issues/{}/comments", pull.number),
        "statuses_url": format!("{api}/statuses/{head_sha}"),
        "number": pull.number,
        "state": pull.state,
        "locked": false,
        "title": pull.title,
        "user": user("gantry-promoter", 7),
        "body": pull.body,
        "labels": pull.labels.iter().enumerate().map(|(i, l)| label_json(repository, l, i)).collect::<Vec<_>>(),
        "milestone": null,
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "closed_at": null,
        "merged_at": null,
        "merge_commit_sha": null,
        "assignee": null,
        "requested_reviewers": pull.reviewers.iter().enumerate().map(|(i, r)| user(r, 9_000 + i as u64)).collect::<Vec<_>>(),
        "head": side(&pull.head, head_sha),
        "base": side(&pull.base, base_sha),
        "_links": {
            "self": link(url.clone()),
            "html": link(html.clone()),
            "issue": link(format!("{api}/issues/{}", pull.number)),
            "comments": link(format!("{api}/issues/{}/comments", pull.number)),
            "review_comments": link(format!("{url}/comments")),
            "review_comment": link(format!("{api}/pulls/comments{{/number}}")),
            "commits": link(format!("{url}/commits")),
            "statuses": link(format!("{api}/statuses/{head_sha}")),
        },
        "author_association": "NONE",
        "auto_merge": pull.auto_merge.as_ref().map(|(method, _)| json!({
            "enabled_by": user("gantry-promoter", 7),
            "merge_method": method.to_lowercase(),
            "commit_title": format!("{} (#{})", pull.title, pull.number),
            "commit_message": "",
        })),
        "draft": false,
    });
    if full {
        for (field, number) in [
            ("additions", 1),
            ("deletions", 1),
            ("changed_files", 1),
            ("commits", 1),
            ("comments", 0),
            ("review_comments", 0),
        ] {
            value[field] = json!(number);
        }
        value["merged"] = json!(false);
        value["mergeable"] = Value::Null;
        value["mergeable_state"] = json!("unknown");
        value["maintainer_can_modify"] = json!(false);
        value["merged_by"] = Value::Null;
    }
    value
}

fn ref_json(repository: &str, name: &str, sha: &str) -> Value {
    let api = format!("https://api.github.com/repos/{repository}");
    json!({
        "ref": format!("refs/{name}"),
        "node_id": format!("REF_kwDO{}", &sha[..8.min(sha.len())]),
        "url": format!("{api}/git/refs/{name}"),
        "object": {"type": "commit", "sha": sha, "url": format!("{api}/git/commits/{sha}")},
    })
}

pub(crate) async fn get_ref(
    State(state): State<Shared>,
    UrlPath((owner, repo, name)): UrlPath<(String, String, String)>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let state = state.lock().expect("fake state");
    match name
        .strip_prefix("heads/")
        .and_then(|branch| state.git.head(&repository, branch))
    {
        Some(sha) => Json(ref_json(&repository, &name, &sha)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

pub(crate) async fn create_ref(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let (Some(name), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.");
    };
    let Some(branch) = name.strip_prefix("refs/heads/") else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Reference name must start with 'refs/'.",
        );
    };
    let mut state = state.lock().expect("fake state");
    if state.git.head(&repository, branch).is_some() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Reference already exists");
    }
    if !state.git.has_commit(sha) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Object does not exist");
    }
    state.git.set_head(&repository, branch, sha);
    (
        StatusCode::CREATED,
        Json(ref_json(&repository, &format!("heads/{branch}"), sha)),
    )
        .into_response()
}

pub(crate) async fn update_ref(
    State(state): State<Shared>,
    UrlPath((owner, repo, name)): UrlPath<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let Some(sha) = body["sha"].as_str() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.");
    };
    let force = body["force"].as_bool().unwrap_or(false);
    let Some(branch) = name.strip_prefix("heads/") else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Reference does not exist");
    };
    let mut state = state.lock().expect("fake state");
    let Some(current) = state.git.head(&repository, branch) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Reference does not exist");
    };
    if !state.git.has_commit(sha) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Object does not exist");
    }
    if !force && !state.git.descends(sha, &current) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Update is not a fast forward",
        );
    }
    state.git.set_head(&repository, branch, sha);
    Json(ref_json(&repository, &name, sha)).into_response()
}

fn shas(state: &crate::FakeState, pull: &Pull) -> (String, String) {
    let head = state
        .git
        .head(&pull.repository, &pull.head)
        .unwrap_or_default();
    let base = state
        .git
        .head(&pull.repository, &pull.base)
        .unwrap_or_default();
    (head, base)
}

#[derive(serde::Deserialize)]
pub(crate) struct PullsQuery {
    head: Option<String>,
    base: Option<String>,
    state: Option<String>,
}

pub(crate) async fn list_pulls(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(query): Query<PullsQuery>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let state = state.lock().expect("fake state");
    let wanted = query.state.unwrap_or_else(|| "open".to_owned());
    let list: Vec<Value> = state
        .pulls
        .pulls
        .iter()
        .filter(|p| p.repository == repository)
        .filter(|p| wanted == "all" || p.state == wanted)
        .filter(|p| {
            query
                .head
                .as_ref()
                .is_none_or(|h| *h == format!("{owner}:{}", p.head))
        })
        .filter(|p| query.base.as_ref().is_none_or(|b| *b == p.base))
        .map(|p| {
            let (head, base) = shas(&state, p);
            pull_json(p, &head, &base, false)
        })
        .collect();
    Json(list).into_response()
}

pub(crate) async fn create_pull(
    State(state): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let (Some(title), Some(head), Some(base)) = (
        body["title"].as_str(),
        body["head"].as_str(),
        body["base"].as_str(),
    ) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    };
    let head = head.rsplit(':').next().unwrap_or(head).to_owned();
    let mut state = state.lock().expect("fake state");
    if state.git.head(&repository, &head).is_none() || state.git.head(&repository, base).is_none() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    if state.pulls.pulls.iter().any(|p| {
        p.repository == repository && p.head == head && p.base == base && p.state == "open"
    }) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("A pull request already exists for {owner}:{head}."),
        );
    }
    let now = timestamp();
    let pull = Pull {
        number: state.pulls.pulls.len() as u64 + 1,
        repository,
        title: title.to_owned(),
        body: body["body"].as_str().unwrap_or_default().to_owned(),
        head,
        base: base.to_owned(),
        state: "open".to_owned(),
        labels: Vec::new(),
        reviewers: Vec::new(),
        teams: Vec::new(),
        auto_merge: None,
        created_at: now.clone(),
        updated_at: now,
    };
    state.pulls.pulls.push(pull.clone());
    let (head_sha, base_sha) = shas(&state, &pull);
    (
        StatusCode::CREATED,
        Json(pull_json(&pull, &head_sha, &base_sha, true)),
    )
        .into_response()
}

fn find<'a>(
    state: &'a mut crate::FakeState,
    repository: &str,
    number: u64,
) -> Option<&'a mut Pull> {
    state
        .pulls
        .pulls
        .iter_mut()
        .find(|p| p.repository == repository && p.number == number)
}

pub(crate) async fn update_pull(
    State(state): State<Shared>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let mut state = state.lock().expect("fake state");
    let Some(pull) = find(&mut state, &repository, number) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Some(title) = body["title"].as_str() {
        title.clone_into(&mut pull.title);
    }
    if let Some(text) = body["body"].as_str() {
        text.clone_into(&mut pull.body);
    }
    if let Some(new_state) = body["state"].as_str() {
        new_state.clone_into(&mut pull.state);
    }
    pull.updated_at = timestamp();
    let pull = pull.clone();
    let (head, base) = shas(&state, &pull);
    Json(pull_json(&pull, &head, &base, true)).into_response()
}

pub(crate) async fn request_reviewers(
    State(state): State<Shared>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let names = |field: &str| -> Vec<String> {
        body[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (users, teams) = (names("reviewers"), names("team_reviewers"));
    let mut state = state.lock().expect("fake state");
    let Some(pull) = find(&mut state, &repository, number) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    for user in users {
        if !pull.reviewers.contains(&user) {
            pull.reviewers.push(user);
        }
    }
    for team in teams {
        if !pull.teams.contains(&team) {
            pull.teams.push(team);
        }
    }
    let pull = pull.clone();
    let (head, base) = shas(&state, &pull);
    (
        StatusCode::CREATED,
        Json(pull_json(&pull, &head, &base, false)),
    )
        .into_response()
}

pub(crate) async fn add_labels(
    State(state): State<Shared>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let repository = format!("{owner}/{repo}");
    let labels: Vec<String> = body["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut state = state.lock().expect("fake state");
    let Some(pull) = find(&mut state, &repository, number) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    for label in labels {
        if !pull.labels.contains(&label) {
            pull.labels.push(label);
        }
    }
    let list: Vec<Value> = pull
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| label_json(&repository, l, i))
        .collect();
    Json(list).into_response()
}

/// `POST /graphql`: the one mutation gantry sends, `enablePullRequestAutoMerge` (with the head it
/// may merge); anything else is answered as GitHub answers an unknown field, with `errors`. Each
/// request and answer is kept, for the tests to check against GitHub's GraphQL schema.
pub(crate) async fn graphql(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut state = state.lock().expect("fake state");
    let query = body["query"].as_str().unwrap_or_default();
    let variables = &body["variables"];
    let answer = if query.contains("enablePullRequestAutoMerge") {
        let id = variables["id"].as_str().unwrap_or_default().to_owned();
        let method = variables["method"].as_str().unwrap_or("MERGE").to_owned();
        let head = variables["head"].as_str().unwrap_or_default().to_owned();
        let found = state
            .pulls
            .pulls
            .iter()
            .position(|p| format!("PR_kwDO{:08}", p.number) == id);
        match found {
            None => {
                json!({"data": {"enablePullRequestAutoMerge": null}, "errors": [{"type": "NOT_FOUND", "path": ["enablePullRequestAutoMerge"], "message": format!("Could not resolve to a node with the global id of '{id}'")}]})
            }
            Some(index) => {
                let pull = state.pulls.pulls[index].clone();
                let current = state
                    .git
                    .head(&pull.repository, &pull.head)
                    .unwrap_or_default();
                if current == head {
                    state.pulls.pulls[index].auto_merge = Some((method.clone(), head));
                    json!({"data": {"enablePullRequestAutoMerge": {"pullRequest": {
                        "number": pull.number,
                        "autoMergeRequest": {"enabledAt": timestamp(), "mergeMethod": method},
                    }}}})
                } else {
                    json!({"data": {"enablePullRequestAutoMerge": null}, "errors": [{"type": "UNPROCESSABLE", "path": ["enablePullRequestAutoMerge"], "message": "Head sha didn't match expected head"}]})
                }
            }
        }
    } else {
        json!({"errors": [{"message": "this stand-in answers enablePullRequestAutoMerge only"}]})
    };
    state.graphql.push((body.clone(), answer.clone()));
    Json(answer).into_response()
}
