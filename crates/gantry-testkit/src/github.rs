//! GitHub for the tests: gantry's stand-in (`gantry-github-standin`) behind prism, which checks
//! every request gantry sends and every response the stand-in returns against GitHub's own OpenAPI
//! description (`@octokit/openapi`). A fake is allowed here only because GitHub cannot run on this
//! machine; the spec keeps it honest.
//!
//! Prism answers a request that breaks the spec with 422 and a response that breaks it with 500
//! (`--errors`), so a client test against [`GitHubFake::url`] fails on either side's violation.
//! [`GitHubFake`] dereferences to the [`StandIn`], whose methods set up and read back its state.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::Context as _;
use axum::Router;
use serde_json::{Value, json};

use crate::component::node_dir;
use crate::prism::Prism;
use crate::server::ServerThread;

pub use gantry_github_standin::{
    FakeWorkflow, GitCommit, Pull, RunPlan, RunRecord, StandIn, TOKEN, Throttle,
};

/// The REST paths gantry uses: the spec subset prism loads holds these and what they reference.
const PATHS: [&str; 26] = [
    "/repos/{owner}/{repo}/collaborators/{username}/permission",
    "/orgs/{org}/teams/{team_slug}/memberships/{username}",
    "/repos/{owner}/{repo}/deployments",
    "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
    "/repos/{owner}/{repo}/dispatches",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
    "/repos/{owner}/{repo}/actions/runs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/concurrency_groups",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
    "/repos/{owner}/{repo}/statuses/{sha}",
    "/repos/{owner}/{repo}/contents/{path}",
    "/repos/{owner}/{repo}/commits",
    "/repos/{owner}/{repo}/git/ref/{ref}",
    "/repos/{owner}/{repo}/git/commits",
    "/repos/{owner}/{repo}/git/commits/{commit_sha}",
    "/repos/{owner}/{repo}/git/trees",
    "/repos/{owner}/{repo}/git/refs",
    "/repos/{owner}/{repo}/git/refs/{ref}",
    "/repos/{owner}/{repo}/pulls",
    "/repos/{owner}/{repo}/pulls/{pull_number}",
    "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels",
];

/// The reads gantry polls with `If-None-Match`. GitHub answers them 304 when nothing changed (its
/// documentation of conditional requests says so), but its description lists only 200: the
/// subset adds `304 not_modified` to these operations, and nothing else.
const CONDITIONAL: [&str; 3] = [
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
    "/repos/{owner}/{repo}/actions/runs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}",
];

/// Operations whose 409 answer GitHub's description gives as `oneOf` two error schemas that every
/// error body satisfies both of (neither requires a field nor forbids others), so no 409 could
/// pass: the subset makes it `anyOf` of the same two, and nothing else.
const CONFLICT_ANY_OF: [(&str, &str); 1] = [("/repos/{owner}/{repo}/contents/{path}", "put")];

/// The fake behind prism; both stop on drop.
pub struct GitHubFake {
    standin: StandIn,
    _server: ServerThread,
    _front: ServerThread,
    prism: Prism,
    addr: SocketAddr,
}

impl GitHubFake {
    /// Starts the fake and prism, or `None` after a loud skip when prism is not installed (a
    /// failure with `CI=true`).
    pub fn start() -> anyhow::Result<Option<Self>> {
        let spec = spec_subset()?;
        let standin = StandIn::new();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let upstream = listener.local_addr()?;
        standin.set_own_url(&format!("http://{upstream}"));
        let server = ServerThread::spawn(listener, standin.api_router())?;
        let Some(prism) = Prism::start(&spec, upstream)? else {
            return Ok(None);
        };
        let front_listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = front_listener.local_addr()?;
        let front =
            ServerThread::spawn(front_listener, front(&standin, &prism.addr().to_string())?)?;
        Ok(Some(Self {
            standin,
            _server: server,
            _front: front,
            prism,
            addr,
        }))
    }

    /// What prism printed: its violations, for a failing test's message.
    pub fn prism_log(&self) -> String {
        self.prism.log()
    }

    /// The API base URL (prism in front of the fake, but for the redirecting reads: see `front`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The spec with only [`PATHS`] and the components they reference, written once per process
/// (prism loads it in about a second instead of fifteen).
fn spec_subset() -> anyhow::Result<PathBuf> {
    static SUBSET: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    SUBSET
        .get_or_init(|| build_subset().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn build_subset() -> anyhow::Result<PathBuf> {
    let full = node_dir().join("node_modules/@octokit/openapi/generated/api.github.com.json");
    // One file per spec and path list, shared by every test process: parsed and written once.
    let key = {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        PATHS.hash(&mut hasher);
        CONDITIONAL.hash(&mut hasher);
        CONFLICT_ANY_OF.hash(&mut hasher);
        std::fs::metadata(&full)
            .with_context(|| format!("reading {}", full.display()))?
            .len()
            .hash(&mut hasher);
        hasher.finish()
    };
    let out = std::env::temp_dir().join(format!("gantry-github-openapi-subset-{key:016x}.json"));
    if out.exists() {
        return Ok(out);
    }
    let text =
        std::fs::read_to_string(&full).with_context(|| format!("reading {}", full.display()))?;
    let spec: Value =
        serde_json::from_str(&text).context("parsing GitHub's OpenAPI description")?;
    let mut paths = serde_json::Map::new();
    for path in PATHS {
        let mut item = spec["paths"]
            .get(path)
            .with_context(|| format!("GitHub's OpenAPI description has no {path}"))?
            .clone();
        if CONDITIONAL.contains(&path) {
            item["get"]["responses"]["304"] =
                json!({"$ref": "#/components/responses/not_modified"});
        }
        for (_, method) in CONFLICT_ANY_OF.iter().filter(|(p, _)| *p == path) {
            let answer = &item[*method]["responses"]["409"];
            let mut answer = match answer["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap_or_default();
                    spec["components"]["responses"][name].clone()
                }
                None => answer.clone(),
            };
            let schema = &mut answer["content"]["application/json"]["schema"];
            let one_of = schema
                .as_object_mut()
                .and_then(|s| s.remove("oneOf"))
                .with_context(|| format!("the 409 of {method} {path} is no longer oneOf"))?;
            schema["anyOf"] = one_of;
            item[*method]["responses"]["409"] = answer;
        }
        paths.insert(path.to_owned(), item);
    }
    let mut components: HashMap<String, serde_json::Map<String, Value>> = HashMap::new();
    let mut pending: Vec<String> = Vec::new();
    collect_refs(&Value::Object(paths.clone()), &mut pending);
    let mut seen = std::collections::HashSet::new();
    while let Some(reference) = pending.pop() {
        if !seen.insert(reference.clone()) {
            continue;
        }
        let parts: Vec<&str> = reference.trim_start_matches("#/").split('/').collect();
        let [_, kind, name] = parts[..] else {
            anyhow::bail!("unexpected $ref {reference}");
        };
        let target = &spec["components"][kind][name];
        anyhow::ensure!(!target.is_null(), "dangling $ref {reference}");
        collect_refs(target, &mut pending);
        components
            .entry(kind.to_owned())
            .or_default()
            .insert(name.to_owned(), target.clone());
    }
    let subset = json!({
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": [{"url": "https://api.github.com"}],
        "paths": paths,
        "components": components,
    });
    // Written aside and renamed, so a concurrent process never reads half a file.
    let partial = out.with_extension(format!("{}.partial", std::process::id()));
    std::fs::write(&partial, serde_json::to_vec(&subset)?)?;
    std::fs::rename(&partial, &out)?;
    Ok(out)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_refs(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// In front of prism: the two reads GitHub answers with a 302 to its storage (a job's log, an
/// artifact's zip), everything else on to prism. Prism cannot pass those on: it follows redirects
/// itself (node-fetch) and re-reads binary bodies as text. The fake serves them here, with the
/// same token check, answering what the description lists: 302 with a `Location`.
///
/// And one rewrite on the way: GitHub takes a file's path in a contents URL with its slashes
/// (`/contents/apps/billing/values.yaml`), and a reference's name in a git reference URL
/// (`/git/refs/heads/gantry/staging/billing`), while the description names each as one
/// parameter, which prism matches as one segment. The front encodes those slashes (`%2F`) for
/// prism, so the request is still checked against the description, and the stand-in decodes them.
fn front(standin: &StandIn, prism: &str) -> anyhow::Result<Router> {
    Ok(standin
        .redirecting_router()
        .fallback_service(crate::proxy::FaultyProxy::forwarding(prism)?)
        .layer(axum::middleware::map_request(contents_path_for_prism)))
}

async fn contents_path_for_prism(mut request: axum::extract::Request) -> axum::extract::Request {
    let uri = request.uri().clone();
    let path = uri.path();
    let Some((at, marker)) = ["/contents/", "/git/ref/", "/git/refs/"]
        .iter()
        .find_map(|marker| path.find(marker).map(|at| (at, *marker)))
    else {
        return request;
    };
    let (head, file) = path.split_at(at + marker.len());
    if !head.starts_with("/repos/") || !file.contains('/') {
        return request;
    }
    let rewritten = match uri.query() {
        Some(query) => format!("{head}{}?{query}", file.replace('/', "%2F")),
        None => format!("{head}{}", file.replace('/', "%2F")),
    };
    if let Ok(new) = rewritten.parse() {
        *request.uri_mut() = new;
    }
    request
}

impl std::ops::Deref for GitHubFake {
    type Target = StandIn;
    fn deref(&self) -> &StandIn {
        &self.standin
    }
}

/// Checks every GraphQL request the stand-in received, and its answer, against GitHub's GraphQL
/// schema (`@octokit/graphql-schema`, with graphql-js): `Ok(n)` for `n` checked, `Err` naming the
/// violations.
pub fn check_graphql(standin: &StandIn) -> anyhow::Result<usize> {
    use std::io::Write as _;
    let script = node_dir().join("graphql-check.mjs");
    let pairs = standin.graphql();
    let mut child = Command::new("node")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running node")?;
    child
        .stdin
        .take()
        .context("node's stdin")?
        .write_all(&serde_json::to_vec(&pairs)?)?;
    let output = child.wait_with_output()?;
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "GitHub's GraphQL schema refuses:\n{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(pairs.len())
}
