//! Optional authentication: HTTP basic, or the bearer-token challenge flow with the registry's own
//! token endpoint at `/token` (opaque tokens bound to the scopes they were issued for).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_secret::Secret;

/// How clients must authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthMode {
    #[default]
    None,
    Basic {
        username: String,
        password: Secret,
    },
    Bearer {
        username: String,
        password: Secret,
    },
}

pub const SERVICE: &str = "gantry-registry";

/// Granted access: repository → may push.
type Grants = Vec<(String, bool)>;

#[derive(Default)]
pub struct Tokens {
    issued: Mutex<HashMap<String, Grants>>,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Pull,
    Push,
}

/// The outcome of checking a request.
pub enum Check {
    Allowed,
    /// 401 with this `WWW-Authenticate` value.
    Challenge(String),
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn basic_matches(header: Option<&str>, username: &str, password: &Secret) -> bool {
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{username}:{}", password.expose());
    // Constant-time comparison: the length leaks, the content does not.
    decoded.len() == expected.len()
        && decoded
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl Tokens {
    /// Checks `authorization` for access to `repository` (`None`: the `/v2/` base).
    pub fn check(
        &self,
        mode: &AuthMode,
        authorization: Option<&str>,
        host: &str,
        repository: Option<&str>,
        need: Need,
    ) -> Check {
        match mode {
            AuthMode::None => Check::Allowed,
            AuthMode::Basic { username, password } => {
                if basic_matches(authorization, username, password) {
                    Check::Allowed
                } else {
                    Check::Challenge("Basic realm=\"gantry-registry\"".to_owned())
                }
            }
            AuthMode::Bearer { .. } => {
                let token = authorization
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .map(str::trim);
                let granted = token.and_then(|t| lock(&self.issued).get(t).cloned());
                let allowed = match (granted, repository) {
                    (Some(_), None) => true,
                    (Some(grants), Some(repo)) => grants
                        .iter()
                        .any(|(r, push)| r == repo && (*push || need == Need::Pull)),
                    (None, _) => false,
                };
                if allowed {
                    return Check::Allowed;
                }
                let mut challenge =
                    format!("Bearer realm=\"http://{host}/token\",service=\"{SERVICE}\"");
                if let Some(repo) = repository {
                    let actions = if need == Need::Push {
                        "pull,push"
                    } else {
                        "pull"
                    };
                    let _ = write!(challenge, ",scope=\"repository:{repo}:{actions}\"");
                }
                Check::Challenge(challenge)
            }
        }
    }

    /// Issues a token for `scopes` (`repository:<name>:<actions>`) to a client with valid basic
    /// credentials; `None` when the credentials are wrong.
    pub fn issue(
        &self,
        mode: &AuthMode,
        authorization: Option<&str>,
        scopes: &[String],
    ) -> Option<String> {
        let AuthMode::Bearer { username, password } = mode else {
            return None;
        };
        if !basic_matches(authorization, username, password) {
            return None;
        }
        let grants: Grants = scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter_map(|scope| {
                let rest = scope.strip_prefix("repository:")?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some((
                    name.to_owned(),
                    actions.split(',').any(|a| a == "push" || a == "*"),
                ))
            })
            .collect();
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).ok()?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        lock(&self.issued).insert(token.clone(), grants);
        Some(token)
    }
}
