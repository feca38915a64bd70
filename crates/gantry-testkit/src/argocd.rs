//! Argo CD for the tests: a stand-in for the two operations a promotion uses (`GET
//! /api/v1/applications/{name}`, `POST /api/v1/applications/{name}/sync`) behind prism, which
//! checks every request and every answer against Argo CD's own Swagger description
//! (`crates/gantry-testkit/argocd/swagger.json`: the argo-cd repository's `assets/swagger.json`,
//! copied unchanged, Apache-2.0; see the `NOTICE.md` beside it).
//! Argo CD itself cannot run here (it needs Kubernetes).
//!
//! An application tracks a branch: a read with `refresh=normal` asks the test's `head` function
//! for the branch's head (the GitHub stand-in's or a git server's), as Argo CD would look at the
//! repository. An application with automated sync starts an operation for a new head on its own;
//! one with manual sync waits for `POST …/sync`. An operation runs for two reads, then ends as the
//! application's scripted [`Ending`] says.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::prism::Prism;
use crate::server::ServerThread;

/// The token the stand-in accepts (`Authorization: Bearer …`).
pub const TOKEN: &str = "argocd-fake-token-0123456789";

/// How an application's operations end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Succeeded, Healthy.
    Healthy,
    /// Succeeded, then Degraded.
    Degraded,
    /// The sync operation fails.
    Failed,
}

#[derive(Debug, Clone)]
struct App {
    automated: bool,
    ending: Ending,
    /// The branch head Argo CD last looked at.
    target: String,
    /// The revision last synced.
    synced: String,
    health: &'static str,
    /// A running or finished operation: (revision, phase, reads left while running).
    operation: Option<(String, &'static str, u32)>,
}

type Head = Arc<dyn Fn() -> String + Send + Sync>;

struct ArgoState {
    apps: HashMap<String, App>,
    head: Head,
    syncs: Vec<Value>,
    requests: Vec<String>,
}

type Shared = Arc<Mutex<ArgoState>>;

/// The stand-in behind prism; both stop on drop.
pub struct ArgoFake {
    state: Shared,
    _server: ServerThread,
    prism: Prism,
}

/// Argo CD's description.
fn swagger() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("argocd/swagger.json")
}

impl ArgoFake {
    /// Starts the stand-in and prism; `head` tells what the tracked branch's head is now. `None`
    /// after a loud skip when prism is not installed (a failure with `CI=true`).
    pub fn start(
        head: impl Fn() -> String + Send + Sync + 'static,
    ) -> anyhow::Result<Option<Self>> {
        let spec = swagger();
        anyhow::ensure!(
            spec.exists(),
            "Argo CD's description is not at {}",
            spec.display()
        );
        let state = Arc::new(Mutex::new(ArgoState {
            apps: HashMap::new(),
            head: Arc::new(head),
            syncs: Vec::new(),
            requests: Vec::new(),
        }));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let upstream = listener.local_addr()?;
        let server = ServerThread::spawn(listener, router(state.clone()))?;
        let Some(prism) = Prism::start(&spec, upstream)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            state,
            _server: server,
            prism,
        }))
    }

    /// What prism printed: its violations, for a failing test's message.
    pub fn prism_log(&self) -> String {
        self.prism.log()
    }

    /// The API base URL (prism in front of the stand-in).
    pub fn url(&self) -> String {
        format!("http://{}", self.prism.addr())
    }

    /// Adds an application synced at `revision`, automated or manual, ending as `ending`.
    pub fn add_app(&self, name: &str, revision: &str, automated: bool, ending: Ending) {
        self.state.lock().expect("argo state").apps.insert(
            name.to_owned(),
            App {
                automated,
                ending,
                target: revision.to_owned(),
                synced: revision.to_owned(),
                health: "Healthy",
                operation: None,
            },
        );
    }

    /// The sync requests received, oldest first.
    pub fn syncs(&self) -> Vec<Value> {
        self.state.lock().expect("argo state").syncs.clone()
    }

    /// Every request received (`METHOD path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("argo state").requests.clone()
    }

    /// The revision the application runs.
    pub fn synced(&self, name: &str) -> Option<String> {
        self.state
            .lock()
            .expect("argo state")
            .apps
            .get(name)
            .map(|a| a.synced.clone())
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v1/applications/{name}", get(get_app))
        .route("/api/v1/applications/{name}/sync", post(sync_app))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gatekeeper,
        ))
        .with_state(state)
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "code": code, "message": message, "details": []})),
    )
        .into_response()
}

async fn gatekeeper(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state.lock().expect("argo state").requests.push(format!(
        "{} {}",
        request.method(),
        request.uri()
    ));
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, 16, "no session information");
    }
    next.run(request).await
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Moves a running operation on by one read; finishes it when its reads are up.
fn advance(app: &mut App) {
    let Some((revision, phase, left)) = app.operation.clone() else {
        if app.automated && app.target != app.synced {
            app.operation = Some((app.target.clone(), "Running", 2));
            app.health = "Progressing";
        }
        return;
    };
    if phase != "Running" {
        return;
    }
    if left > 1 {
        app.operation = Some((revision, phase, left - 1));
        return;
    }
    match app.ending {
        Ending::Failed => {
            app.operation = Some((revision, "Failed", 0));
            app.health = "Healthy";
        }
        Ending::Healthy | Ending::Degraded => {
            app.synced.clone_from(&revision);
            app.operation = Some((revision, "Succeeded", 0));
            app.health = if app.ending == Ending::Healthy {
                "Healthy"
            } else {
                "Degraded"
            };
        }
    }
}

fn app_json(name: &str, app: &App) -> Value {
    let sync_status = if app.synced == app.target {
        "Synced"
    } else {
        "OutOfSync"
    };
    let source = json!({
        "repoURL": "https://github.com/acme/deploy.git",
        "path": format!("apps/{name}"),
        "targetRevision": "main",
    });
    let mut status = json!({
        "sync": {
            "status": sync_status,
            "revision": app.synced,
            "comparedTo": {"source": source, "destination": {"server": "https://kubernetes.default.svc", "namespace": name}},
        },
        "health": {"status": app.health, "message": if app.health == "Degraded" { "Deployment \"app\" exceeded its progress deadline" } else { "" }},
        "reconciledAt": now(),
        "sourceType": "Helm",
    });
    if let Some((revision, phase, _)) = &app.operation {
        let mut state = json!({
            "phase": phase,
            "message": match *phase {
                "Running" => "one or more tasks are running",
                "Failed" => "one or more objects failed to apply, reason: admission webhook denied the request",
                _ => "successfully synced (all tasks run)",
            },
            "startedAt": now(),
            "operation": {"sync": {"revision": revision}, "initiatedBy": {"username": "admin"}},
        });
        if *phase != "Running" {
            state["finishedAt"] = json!(now());
            state["syncResult"] = json!({"revision": revision, "source": source});
        }
        status["operationState"] = state;
    }
    json!({
        "metadata": {"name": name, "namespace": "argocd", "uid": "7e4b2c3a-0000-4000-8000-000000000001"},
        "spec": {
            "project": "default",
            "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
            "syncPolicy": if app.automated { json!({"automated": {"prune": false, "selfHeal": true}}) } else { json!({}) },
        },
        "status": status,
    })
}

async fn get_app(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut state = state.lock().expect("argo state");
    let head = state.head.clone();
    let Some(app) = state.apps.get_mut(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            5,
            &format!("applications.argoproj.io \"{name}\" not found"),
        );
    };
    if query.contains_key("refresh") {
        app.target = head();
    }
    advance(app);
    Json(app_json(&name, app)).into_response()
}

async fn sync_app(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut state = state.lock().expect("argo state");
    state.syncs.push(body.clone());
    let head = state.head.clone();
    let Some(app) = state.apps.get_mut(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            5,
            &format!("applications.argoproj.io \"{name}\" not found"),
        );
    };
    if matches!(&app.operation, Some((_, "Running", _))) {
        return error(
            StatusCode::BAD_REQUEST,
            9,
            "another operation is already in progress",
        );
    }
    app.target = head();
    let revision = body["revision"]
        .as_str()
        .filter(|r| !r.is_empty())
        .map_or_else(|| app.target.clone(), str::to_owned);
    app.operation = Some((revision, "Running", 2));
    app.health = "Progressing";
    Json(app_json(&name, app)).into_response()
}
