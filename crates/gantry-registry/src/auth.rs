//! Optional authentication: HTTP basic, or the bearer-token challenge flow with the registry's own
//! token endpoint at `/token` (opaque tokens bound to the scopes they were issued for).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_secret::Secret;

/// How clients must authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthMode {
    #[default]
    /// Anyone may pull and push.
    None,
    /// HTTP basic authentication.
    Basic {
        /// The one user name.
        username: String,
        /// Its password.
        password: Secret,
    },
    /// Bearer tokens from `/token`, issued for basic credentials.
    Bearer {
        /// The one user name.
        username: String,
        /// Its password.
        password: Secret,
    },
}

pub const SERVICE: &str = "gantry-registry";

/// Granted access: repository → may push.
type Grants = Vec<(String, bool)>;

struct Issued {
    grants: Grants,
    expires: Instant,
}

/// Bearer tokens issued at `/token`: opaque, bound to their scopes, valid for `lifetime`, at most
/// `capacity` of them at once (the oldest is forgotten first).
pub struct Tokens {
    issued: Mutex<HashMap<String, Issued>>,
    pub lifetime: Duration,
    capacity: usize,
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new(Duration::from_mins(5), 10_000)
    }
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
    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        Self {
            issued: Mutex::default(),
            lifetime,
            capacity: capacity.max(1),
        }
    }

    /// Whether `authorization` may do `need` on `repository` (`None`: the `/v2/` base).
    pub fn allows(
        &self,
        mode: &AuthMode,
        authorization: Option<&str>,
        repository: Option<&str>,
        need: Need,
    ) -> bool {
        match mode {
            AuthMode::None => true,
            AuthMode::Basic { username, password } => {
                basic_matches(authorization, username, password)
            }
            AuthMode::Bearer { .. } => {
                let Some(token) = authorization
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .map(str::trim)
                else {
                    return false;
                };
                let mut issued = lock(&self.issued);
                let Some(entry) = issued.get(token) else {
                    return false;
                };
                if entry.expires <= Instant::now() {
                    issued.remove(token);
                    return false;
                }
                repository.is_none_or(|repo| {
                    entry
                        .grants
                        .iter()
                        .any(|(r, push)| r == repo && (*push || need == Need::Pull))
                })
            }
        }
    }

    /// Checks `authorization` for access to `repository`; a challenge names `realm` (the token
    /// endpoint's URL, from the registry's configuration, never from the request).
    pub fn check(
        &self,
        mode: &AuthMode,
        authorization: Option<&str>,
        realm: &str,
        repository: Option<&str>,
        need: Need,
    ) -> Check {
        if self.allows(mode, authorization, repository, need) {
            return Check::Allowed;
        }
        match mode {
            AuthMode::None => Check::Allowed,
            AuthMode::Basic { .. } => {
                Check::Challenge("Basic realm=\"gantry-registry\"".to_owned())
            }
            AuthMode::Bearer { .. } => {
                let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"");
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
        let now = Instant::now();
        let mut issued = lock(&self.issued);
        issued.retain(|_, entry| entry.expires > now);
        while issued.len() >= self.capacity {
            let oldest = issued
                .iter()
                .min_by_key(|(_, entry)| entry.expires)
                .map(|(token, _)| token.clone());
            match oldest {
                Some(oldest) => issued.remove(&oldest),
                None => break,
            };
        }
        issued.insert(
            token.clone(),
            Issued {
                grants,
                expires: now + self.lifetime,
            },
        );
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_table_is_bounded_and_forgets_the_oldest_first() {
        let mode = AuthMode::Bearer {
            username: "u".to_owned(),
            password: Secret::new("p"),
        };
        let basic = format!("Basic {}", STANDARD.encode("u:p"));
        let tokens = Tokens::new(Duration::from_mins(5), 3);
        let scope = ["repository:a/b:pull".to_owned()];
        let issued: Vec<String> = (0..5)
            .map(|_| tokens.issue(&mode, Some(&basic), &scope).expect("issued"))
            .collect();
        assert_eq!(lock(&tokens.issued).len(), 3);
        let valid = |token: &str| {
            tokens.allows(
                &mode,
                Some(&format!("Bearer {token}")),
                Some("a/b"),
                Need::Pull,
            )
        };
        assert!(
            !valid(&issued[0]) && !valid(&issued[1]),
            "the oldest were forgotten"
        );
        assert!(issued[2..].iter().all(|t| valid(t)));
        assert!(
            !tokens.allows(
                &mode,
                Some(&format!("Bearer {}", issued[4])),
                Some("a/b"),
                Need::Push
            ),
            "a pull token cannot push"
        );
        assert!(
            tokens
                .issue(&mode, Some("Basic d3Jvbmc="), &scope)
                .is_none()
        );
    }
}
