//! Registry credentials and the challenge flow.
//!
//! A registry answers 401 with `WWW-Authenticate`: `Basic realm=…` means "send basic credentials",
//! `Bearer realm=…,service=…,scope=…` means "get a token at the realm for this scope". Credentials
//! come from explicit input, a GitHub token (GHCR), or Docker's `config.json` (`auths`,
//! `credHelpers`, `credsStore`, identity tokens).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_secret::Secret;
use serde::Deserialize;

/// How to authenticate to one registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credential {
    #[default]
    /// No credentials: anonymous tokens only.
    Anonymous,
    /// User name and password (or a token used as a password, as GHCR and ECR take them).
    /// User name and password (or a token used as a password, as GHCR and ECR take them).
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: Secret,
    },
    /// An `OAuth2` refresh token (Docker's `identitytoken`), exchanged at the realm.
    IdentityToken(Secret),
    /// A registry bearer token to send as is.
    Bearer(Secret),
}

impl Credential {
    /// A GitHub token for GHCR: basic credentials whose password is the token.
    pub fn github_token(token: Secret) -> Self {
        Self::Basic {
            username: "gantry".to_owned(),
            password: token,
        }
    }
}

/// Credentials by registry host, with Docker's config as a fallback.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    explicit: HashMap<String, Credential>,
    docker: Option<DockerConfig>,
}

impl Credentials {
    /// No credentials for any registry (Docker's config can be added).
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Uses `credential` for `registry` (a host, with port if any).
    #[must_use]
    pub fn with(mut self, registry: &str, credential: Credential) -> Self {
        self.explicit.insert(normalise_host(registry), credential);
        self
    }

    /// Falls back to Docker's `config.json` in `$DOCKER_CONFIG` or `~/.docker`.
    pub fn with_docker_config(mut self, dir: Option<PathBuf>) -> Result<Self, AuthError> {
        let dir = dir
            .or_else(|| std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
        if let Some(dir) = dir {
            self.docker = DockerConfig::load(&dir.join("config.json"))?;
        }
        Ok(self)
    }

    /// The credential for `registry`: explicit first, then Docker's config, else anonymous.
    pub fn for_registry(&self, registry: &str) -> Result<Credential, AuthError> {
        let host = normalise_host(registry);
        if let Some(credential) = self.explicit.get(&host) {
            return Ok(credential.clone());
        }
        match &self.docker {
            Some(config) => config.lookup(&host),
            None => Ok(Credential::Anonymous),
        }
    }
}

/// Docker Hub has several names in config files.
fn normalise_host(registry: &str) -> String {
    let host = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
pub enum AuthError {
    #[error("reading Docker config {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Docker config {path} is not valid JSON: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("the \"auth\" entry for {host} in the Docker config is not base64 of user:password")]
    BadAuthEntry { host: String },
    #[error("credential helper docker-credential-{helper} for {host}: {reason}")]
    Helper {
        helper: String,
        host: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// Docker's `config.json`, with hosts normalised.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    auths: HashMap<String, AuthEntry>,
    helpers: HashMap<String, String>,
    store: Option<String>,
}

impl DockerConfig {
    /// `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, AuthError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(AuthError::ReadConfig {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let file: DockerConfigFile =
            serde_json::from_str(&text).map_err(|e| AuthError::BadConfig {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Some(Self {
            auths: file
                .auths
                .into_iter()
                .map(|(k, v)| (normalise_host(&k), v))
                .collect(),
            helpers: file
                .cred_helpers
                .into_iter()
                .map(|(k, v)| (normalise_host(&k), v))
                .collect(),
            store: file.creds_store.filter(|s| !s.is_empty()),
        }))
    }

    fn lookup(&self, host: &str) -> Result<Credential, AuthError> {
        if let Some(helper) = self.helpers.get(host) {
            return run_helper(helper, host);
        }
        if let Some(entry) = self.auths.get(host) {
            return entry_credential(host, entry);
        }
        if let Some(store) = &self.store {
            return run_helper(store, host);
        }
        Ok(Credential::Anonymous)
    }
}

fn entry_credential(host: &str, entry: &AuthEntry) -> Result<Credential, AuthError> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credential::IdentityToken(Secret::new(token)));
    }
    if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credential::Bearer(Secret::new(token)));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || AuthError::BadAuthEntry {
            host: host.to_owned(),
        };
        let decoded = STANDARD.decode(auth).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (username, password) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Credential::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Credential::Basic {
            username: u.clone(),
            password: Secret::new(p.clone()),
        }),
        _ => Ok(Credential::Anonymous),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

fn run_helper(helper: &str, host: &str) -> Result<Credential, AuthError> {
    use std::io::Write as _;
    let err = |reason: String| AuthError::Helper {
        helper: helper.to_owned(),
        host: host.to_owned(),
        reason,
    };
    let program = format!("docker-credential-{helper}");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("could not run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(host.as_bytes())
            .map_err(|e| err(e.to_string()))?;
    }
    let output = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // "credentials not found in native keychain" means: no credential, not an error.
        if stdout.contains("credentials not found") {
            return Ok(Credential::Anonymous);
        }
        return Err(err(format!(
            "exited with {}: {}",
            output.status,
            stdout.trim()
        )));
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout)
        .map_err(|e| err(format!("answered something that is not JSON: {e}")))?;
    if answer.username == "<token>" {
        Ok(Credential::IdentityToken(Secret::new(answer.secret)))
    } else {
        Ok(Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        })
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic`: send basic credentials.
    Basic,
    /// `Bearer`: get a token at the realm for the scope.
    Bearer {
        /// The token endpoint's URL.
        realm: String,
        /// The service to name in the token request.
        service: Option<String>,
        /// The scope the registry asked for.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value: a scheme and comma-separated `key="quoted value"` pairs.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(params);
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        });
    }
    None
}

fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            return params;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:a/b:pull,push".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=https://x/t, service="a \"q\"""#),
            Some(Challenge::Bearer {
                realm: "https://x/t".into(),
                service: Some("a \"q\"".into()),
                scope: None
            })
        );
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn docker_config_auths_helpers_and_hub_aliases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = STANDARD.encode("octo:pa:ss");
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"identitytoken":"refresh-me"}},"bad.example":{{"auth":"!!"}}}},"credHelpers":{{"ecr.example":"gantry-test-missing"}}}}"#
            ),
        )
        .expect("write");
        let creds = Credentials::anonymous()
            .with_docker_config(Some(dir.path().to_owned()))
            .expect("load");
        assert_eq!(
            creds.for_registry("docker.io").expect("hub"),
            Credential::Basic {
                username: "octo".into(),
                password: Secret::new("pa:ss")
            }
        );
        assert_eq!(
            creds.for_registry("ghcr.io").expect("ghcr"),
            Credential::IdentityToken(Secret::new("refresh-me"))
        );
        assert_eq!(
            creds.for_registry("quay.io").expect("none"),
            Credential::Anonymous
        );
        assert!(matches!(
            creds.for_registry("bad.example"),
            Err(AuthError::BadAuthEntry { .. })
        ));
        let helper = creds
            .for_registry("ecr.example")
            .expect_err("missing helper");
        assert!(
            helper
                .to_string()
                .contains("could not run docker-credential-gantry-test-missing"),
            "{helper}"
        );
        let explicit = creds.with("ghcr.io", Credential::github_token(Secret::new("ghs_x")));
        assert!(matches!(
            explicit.for_registry("ghcr.io").expect("explicit"),
            Credential::Basic { .. }
        ));
        assert!(
            !format!("{explicit:?}").contains("ghs_x"),
            "credentials are redacted in Debug"
        );
    }
}
