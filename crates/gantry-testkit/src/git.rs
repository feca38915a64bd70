//! A real git server: Debian's `git http-backend` (smart HTTP, fetch and push) as a CGI behind a
//! small local HTTP server with basic authentication, serving bare repositories in a temporary
//! folder. The tests push to it and read it back with git itself.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::server::ServerThread;

/// The user and password the server takes.
pub const USER: &str = "gantry";
/// The password.
pub const PASSWORD: &str = "git-test-password";

/// The server and its repositories; stopped on drop.
pub struct GitServer {
    root: tempfile::TempDir,
    addr: SocketAddr,
    _server: ServerThread,
}

#[derive(Clone)]
struct Served {
    root: PathBuf,
    backend: PathBuf,
}

/// Runs git in `dir`, failing with its stderr.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    anyhow::ensure!(
        output.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl GitServer {
    /// Starts the server, or `None` after a loud skip when git is not installed (a failure with
    /// `CI=true`).
    pub fn start() -> anyhow::Result<Option<Self>> {
        if crate::component::require("git", "apt-get install git").is_none() {
            return Ok(None);
        }
        let exec_dir = git(Path::new("/"), &["--exec-path"])?.trim().to_owned();
        let backend = Path::new(&exec_dir).join("git-http-backend");
        anyhow::ensure!(backend.exists(), "{} is missing", backend.display());
        let root = tempfile::Builder::new().prefix("gantry-git-").tempdir()?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let served = Served {
            root: root.path().to_owned(),
            backend,
        };
        let app = axum::Router::new().fallback(cgi).with_state(served);
        Ok(Some(Self {
            root,
            addr,
            _server: ServerThread::spawn(listener, app)?,
        }))
    }

    /// Creates the bare repository `name` (`deploy.git`) whose `main` holds `files`, committed by
    /// "someone"; returns its URL (without credentials).
    pub fn repository(&self, name: &str, files: &[(&str, &[u8])]) -> anyhow::Result<String> {
        let bare = self.root.path().join(name);
        git(
            self.root.path(),
            &["init", "--bare", "--initial-branch=main", name],
        )?;
        git(&bare, &["config", "http.receivepack", "true"])?;
        let work = tempfile::tempdir()?;
        git(work.path(), &["init", "--initial-branch=main"])?;
        for (path, bytes) in files {
            let file = work.path().join(path);
            std::fs::create_dir_all(file.parent().context("a file in a folder")?)?;
            std::fs::write(&file, bytes)?;
        }
        git(work.path(), &["add", "."])?;
        git(
            work.path(),
            &[
                "-c",
                "user.name=someone",
                "-c",
                "user.email=someone@example.com",
                "commit",
                "-m",
                "init",
            ],
        )?;
        git(
            work.path(),
            &["push", bare.to_str().context("a UTF-8 path")?, "main"],
        )?;
        Ok(format!("http://{}/{name}", self.addr))
    }

    /// The bare repository `name`, to read with git.
    pub fn bare(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

/// One request through `git http-backend`.
async fn cgi(State(served): State<Served>, request: Request) -> Response {
    if !authorized(request.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"gantry-testkit git\"")],
            "authentication required",
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut command = tokio::process::Command::new(&served.backend);
    command
        .env_clear()
        .env("GIT_PROJECT_ROOT", &served.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", USER)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let Ok(mut child) = command.spawn() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(&body).await;
    }
    let Ok(output) = child.wait_with_output().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    response(&output.stdout)
}

/// A CGI answer: headers up to the first blank line (`Status:` gives the code), then the body.
fn response(out: &[u8]) -> Response {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            out.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((end, body)) = split else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut builder = Response::builder().status(StatusCode::OK);
    for line in String::from_utf8_lossy(&out[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            if let Some(code) = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                builder = builder.status(code);
            }
        } else {
            builder = builder.header(name.trim(), value);
        }
    }
    builder
        .body(Body::from(Bytes::copy_from_slice(&out[body..])))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
