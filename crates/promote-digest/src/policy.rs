//! The promotion policy (`.github/gantry.yml`): environments, the paths between them, the gates on
//! each path and who may take it. Every error names the file, line and column it comes from.
//!
//! ```yaml
//! version: 1
//! environments:            # in promotion order; default: dev, staging, canary, production
//!   - name: dev
//!   - name: staging
//!   - name: production
//!     repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/billing  # another registry
//!     tag: "prod-{env}"    # default "{env}"; variables {env} and {digest12}
//! promotions:              # default: each environment to the next, one step forward
//!   - from: dev
//!     to: staging
//!     gates:
//!       - name: migration dry-run
//!         run: ./scripts/migrate --dry-run   # GANTRY_DIGEST, GANTRY_TARGET in its environment
//!         timeout: 600                       # seconds, default 600
//!     allowed:                               # GitHub roles or teams; anyone when absent
//!       roles: [write, maintain, admin]
//!       teams: [acme/tech-leads]
//!     require-signature:                     # the digest must be signed by this identity
//!       identity: https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main
//!       issuer: https://token.actions.githubusercontent.com   # the default
//!       # or identity-regexp / issuer-regexp, repository, ref, workflow, trigger, sha,
//!       # runner-environment; or key: cosign.pub (insecure-ignore-tlog: true for offline keys);
//!       # trusted-root: root.json (default: the public-good root), or tuf-url: a TUF repository
//!       # to fetch it from (tuf-root: its root.json, tuf-cache: a folder, tuf-offline: true).
//!       # Paths are relative to this file.
//! ```

use std::path::Path;
use std::time::Duration;

use gantry_sigstore::policy::SignaturePolicy;
use marked_yaml::Spanned;
use serde::Deserialize;

/// The environments of seed 002 (`promote.yml`), in order.
pub const DEFAULT_CHAIN: [&str; 4] = ["dev", "staging", "canary", "production"];
/// Where the policy lives unless told otherwise.
pub const DEFAULT_PATH: &str = ".github/gantry.yml";
const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_mins(10);
const TAG_VARIABLES: [&str; 2] = ["env", "digest12"];

/// A GitHub repository role, from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Role {
    /// The role GitHub calls `text` (`read`, `triage`, `write`, `maintain`, `admin`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "read" => Self::Read,
            "triage" => Self::Triage,
            "write" => Self::Write,
            "maintain" => Self::Maintain,
            "admin" => Self::Admin,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Triage => "triage",
            Self::Write => "write",
            Self::Maintain => "maintain",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    /// `registry/repository` when the environment lives elsewhere than the image.
    pub repository: Option<String>,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub name: String,
    pub run: String,
    pub timeout: Duration,
}

/// Who may take a path: anyone holding one of `roles` (or a higher one), or in one of `teams`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(lowest) = self.roles.iter().min() {
            parts.push(format!("role {} or higher", lowest.name()));
        }
        if !self.teams.is_empty() {
            parts.push(format!("members of {}", self.teams.join(" or ")));
        }
        f.write_str(&parts.join(", or "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub from: String,
    pub to: String,
    pub gates: Vec<Gate>,
    /// `None`: anyone who can run the workflow.
    pub allowed: Option<Allowed>,
    /// The digest must carry a signature this policy accepts; paths in it are already resolved
    /// against the policy file's folder.
    pub require_signature: Option<SignaturePolicy>,
}

/// Where a policy came from, for messages and summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No file: seed 002's chain.
    Default,
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub source: Source,
    pub environments: Vec<Environment>,
    pub promotions: Vec<Promotion>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading policy {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Unlocated { file: String, message: String },
    #[error("unknown environment {name:?} (the policy has: {})", known.join(", "))]
    UnknownEnvironment { name: String, known: Vec<String> },
    #[error("promotion {from} -> {to} is not allowed by {source_name} (allowed from {from}: {})", if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") })]
    Forbidden {
        from: String,
        to: String,
        source_name: String,
        allowed: Vec<String>,
    },
}

// The file's shape; spans kept where a later check must point at a value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: Spanned<String>,
    #[serde(default)]
    environments: Option<Vec<FileEnvironment>>,
    #[serde(default)]
    promotions: Option<Vec<FilePromotion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEnvironment {
    name: Spanned<String>,
    #[serde(default)]
    repository: Option<Spanned<String>>,
    #[serde(default)]
    tag: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePromotion {
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(default)]
    gates: Vec<FileGate>,
    #[serde(default)]
    allowed: Option<FileAllowed>,
    #[serde(default, rename = "require-signature")]
    require_signature: Option<SignaturePolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGate {
    name: Spanned<String>,
    run: Spanned<String>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAllowed {
    #[serde(default)]
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    teams: Vec<Spanned<String>>,
}

impl Policy {
    /// Seed 002's chain: dev → staging → canary → production, one step forward, no gates.
    pub fn default_chain() -> Self {
        let environments = DEFAULT_CHAIN
            .iter()
            .map(|name| Environment {
                name: (*name).to_owned(),
                repository: None,
                tag: "{env}".to_owned(),
            })
            .collect::<Vec<_>>();
        Self {
            source: Source::Default,
            promotions: chain(&environments),
            environments,
        }
    }

    /// Reads the policy at `path`; the default chain when `path` is the default and does not exist.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, PolicyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&path.display().to_string(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Self::default_chain())
            }
            Err(source) => Err(PolicyError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses policy text; `file` names it in messages.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        let parsed: File =
            marked_yaml::from_yaml(0, text).map_err(|e| yaml_error(file, text, &e))?;
        let at = Locator { file };
        if parsed.version.as_str() != "1" {
            return Err(at.error(
                parsed.version.span(),
                format!("version must be 1, found {:?}", parsed.version.as_str()),
            ));
        }
        let environments = match parsed.environments {
            None => Self::default_chain().environments,
            Some(list) => environments(&at, list)?,
        };
        let promotions = match parsed.promotions {
            None => chain(&environments),
            Some(list) => {
                let mut promotions: Vec<Promotion> = Vec::new();
                for promotion in list {
                    let promotion = promotion_of(&at, &environments, promotion)?;
                    if promotions
                        .iter()
                        .any(|p| p.from == promotion.from && p.to == promotion.to)
                    {
                        return Err(PolicyError::Unlocated {
                            file: file.to_owned(),
                            message: format!(
                                "promotion {} -> {} is listed twice",
                                promotion.from, promotion.to
                            ),
                        });
                    }
                    promotions.push(promotion);
                }
                promotions
            }
        };
        Ok(Self {
            source: Source::File(file.to_owned()),
            environments,
            promotions,
        })
    }

    fn source_name(&self) -> String {
        match &self.source {
            Source::Default => {
                "the default chain (dev -> staging -> canary -> production)".to_owned()
            }
            Source::File(file) => file.clone(),
        }
    }

    pub fn environment(&self, name: &str) -> Result<&Environment, PolicyError> {
        self.environments
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| PolicyError::UnknownEnvironment {
                name: name.to_owned(),
                known: self.environments.iter().map(|e| e.name.clone()).collect(),
            })
    }

    /// The promotion `from` → `to`, or why it is refused.
    pub fn promotion(&self, from: &str, to: &str) -> Result<&Promotion, PolicyError> {
        self.environment(from)?;
        self.environment(to)?;
        self.promotions
            .iter()
            .find(|p| p.from == from && p.to == to)
            .ok_or_else(|| PolicyError::Forbidden {
                from: from.to_owned(),
                to: to.to_owned(),
                source_name: self.source_name(),
                allowed: self
                    .promotions
                    .iter()
                    .filter(|p| p.from == from)
                    .map(|p| p.to.clone())
                    .collect(),
            })
    }

    /// The reference an environment points at for an image whose repository is `image`.
    pub fn reference(
        &self,
        env: &str,
        image: &gantry_oci::Reference,
        digest: &gantry_oci::Digest,
    ) -> Result<gantry_oci::Reference, PolicyError> {
        let environment = self.environment(env)?;
        let tag = render_tag(&environment.tag, env, digest);
        let invalid = |reason: String| PolicyError::Unlocated {
            file: self.source_name(),
            message: reason,
        };
        let base = match &environment.repository {
            Some(repository) => format!("{repository}:{tag}").parse::<gantry_oci::Reference>(),
            None => image
                .in_repository(image.repository())
                .and_then(|r| r.with_tag(&tag)),
        };
        base.map_err(|e| invalid(format!("environment {env}: {e}")))
    }
}

fn chain(environments: &[Environment]) -> Vec<Promotion> {
    environments
        .windows(2)
        .map(|pair| Promotion {
            from: pair[0].name.clone(),
            to: pair[1].name.clone(),
            gates: Vec::new(),
            allowed: None,
            require_signature: None,
        })
        .collect()
}

/// Turns a span and a message into an error that names the file, line and column.
struct Locator<'a> {
    file: &'a str,
}

impl Locator<'_> {
    fn error(&self, span: &marked_yaml::Span, message: String) -> PolicyError {
        let (line, column) = span.start().map_or((0, 0), |m| (m.line(), m.column()));
        PolicyError::Invalid {
            file: self.file.to_owned(),
            line,
            column,
            message,
        }
    }
}

fn environments(
    at: &Locator<'_>,
    list: Vec<FileEnvironment>,
) -> Result<Vec<Environment>, PolicyError> {
    let mut environments: Vec<Environment> = Vec::new();
    for env in list {
        let name = env.name.as_str();
        if !is_name(name) {
            return Err(at.error(
                env.name.span(),
                format!("environment name {name:?} must be lowercase letters, digits and '-'"),
            ));
        }
        if environments.iter().any(|e| e.name == name) {
            return Err(at.error(
                env.name.span(),
                format!("environment {name:?} is defined twice"),
            ));
        }
        if let Some(repo) = &env.repository {
            format!("{}:x", repo.as_str())
                .parse::<gantry_oci::Reference>()
                .map_err(|e| {
                    at.error(
                        repo.span(),
                        format!("repository {:?}: {}", repo.as_str(), e.reason),
                    )
                })?;
        }
        let tag = env
            .tag
            .as_ref()
            .map_or_else(|| "{env}".to_owned(), |t| t.as_str().to_owned());
        if let Some(span) = env.tag.as_ref().map(Spanned::span) {
            check_tag_template(&tag, name).map_err(|message| at.error(span, message))?;
        }
        environments.push(Environment {
            name: name.to_owned(),
            repository: env.repository.map(|r| r.as_str().to_owned()),
            tag,
        });
    }
    if environments.len() < 2 {
        return Err(PolicyError::Unlocated {
            file: at.file.to_owned(),
            message: "a policy needs at least two environments to promote between".to_owned(),
        });
    }
    Ok(environments)
}

fn promotion_of(
    at: &Locator<'_>,
    environments: &[Environment],
    promotion: FilePromotion,
) -> Result<Promotion, PolicyError> {
    for end in [&promotion.from, &promotion.to] {
        if !environments.iter().any(|e| e.name == end.as_str()) {
            let known: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
            return Err(at.error(
                end.span(),
                format!(
                    "unknown environment {:?} (known: {})",
                    end.as_str(),
                    known.join(", ")
                ),
            ));
        }
    }
    let (from, to) = (
        promotion.from.as_str().to_owned(),
        promotion.to.as_str().to_owned(),
    );
    if from == to {
        return Err(at.error(
            promotion.to.span(),
            format!("a promotion from {from} to itself does nothing"),
        ));
    }
    let gates = promotion
        .gates
        .iter()
        .map(|gate| gate_of(at, gate))
        .collect::<Result<Vec<_>, _>>()?;
    let allowed = match promotion.allowed {
        None => None,
        Some(allowed) => {
            let roles = allowed
                .roles
                .iter()
                .map(|role| {
                    Role::parse(role.as_str()).ok_or_else(|| {
                        at.error(role.span(), format!("unknown role {:?} (expected read, triage, write, maintain or admin)", role.as_str()))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if roles.is_empty() && allowed.teams.is_empty() {
                return Err(at.error(
                    promotion.from.span(),
                    "allowed: names no role and no team, so nobody could promote".to_owned(),
                ));
            }
            Some(Allowed {
                roles,
                teams: allowed
                    .teams
                    .iter()
                    .map(|t| t.as_str().to_owned())
                    .collect(),
            })
        }
    };
    let require_signature = match promotion.require_signature {
        None => None,
        Some(wanted) => {
            let base = Path::new(at.file).parent().unwrap_or(Path::new("."));
            let wanted = wanted.relative_to(base);
            // Checked now, so a bad requirement fails before anything moves.
            let here = Path::new(".");
            if let Err(e) = wanted.signer(here).and_then(|_| wanted.check_root(here)) {
                return Err(at.error(
                    promotion.from.span(),
                    format!(
                        "require-signature of {from} -> {to}: {:#}",
                        anyhow::Error::new(e)
                    ),
                ));
            }
            Some(wanted)
        }
    };
    Ok(Promotion {
        from,
        to,
        gates,
        allowed,
        require_signature,
    })
}

fn gate_of(at: &Locator<'_>, gate: &FileGate) -> Result<Gate, PolicyError> {
    if gate.name.trim().is_empty() || gate.run.trim().is_empty() {
        return Err(at.error(
            gate.name.span(),
            "a gate needs a name and a command to run".to_owned(),
        ));
    }
    let timeout = match &gate.timeout {
        None => DEFAULT_GATE_TIMEOUT,
        Some(t) => t
            .as_str()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                at.error(
                    t.span(),
                    format!(
                        "timeout must be a whole number of seconds, found {:?}",
                        t.as_str()
                    ),
                )
            })?,
    };
    Ok(Gate {
        name: gate.name.as_str().to_owned(),
        run: gate.run.as_str().to_owned(),
        timeout,
    })
}

fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn render_tag(template: &str, env: &str, digest: &gantry_oci::Digest) -> String {
    template
        .replace("{env}", env)
        .replace("{digest12}", &digest.hex()[..12.min(digest.hex().len())])
}

fn check_tag_template(template: &str, env: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("tag {template:?} has an unclosed '{{'"))?;
        let variable = &rest[start + 1..start + end];
        if !TAG_VARIABLES.contains(&variable) {
            return Err(format!(
                "tag {template:?} uses {{{variable}}}; the variables are {{env}} and {{digest12}}"
            ));
        }
        rest = &rest[start + end + 1..];
    }
    let sample = render_tag(template, env, &gantry_oci::Digest::sha256(b""));
    if !gantry_oci::reference::is_valid_tag(&sample) {
        return Err(format!(
            "tag {template:?} renders to {sample:?}, which is not a valid tag"
        ));
    }
    Ok(())
}

fn yaml_error(file: &str, text: &str, error: &marked_yaml::FromYamlError) -> PolicyError {
    let mark = match error {
        marked_yaml::FromYamlError::ParseYaml(e) => load_error_mark(e),
        marked_yaml::FromYamlError::FromNode(e) => e.start_mark(),
    };
    let message = error.to_string();
    let position = mark
        .map(|m| (m.line(), m.column()))
        .or_else(|| unknown_field_position(text, &message));
    match position {
        Some((line, column)) => PolicyError::Invalid {
            file: file.to_owned(),
            line,
            column,
            message,
        },
        None => PolicyError::Unlocated {
            file: file.to_owned(),
            message,
        },
    }
}

/// marked-yaml reports an unknown field without a position: find the first line using it as a key.
fn unknown_field_position(text: &str, message: &str) -> Option<(usize, usize)> {
    let field = message.strip_prefix("Unknown field `")?.split('`').next()?;
    text.lines().enumerate().find_map(|(index, line)| {
        let key = line.trim_start().trim_start_matches("- ");
        let column = line.len() - key.len() + 1;
        key.strip_prefix(field)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
            .then_some((index + 1, column))
    })
}

fn load_error_mark(error: &marked_yaml::LoadError) -> Option<marked_yaml::Marker> {
    use marked_yaml::LoadError;
    match error {
        LoadError::TopLevelMustBeMapping(m)
        | LoadError::TopLevelMustBeSequence(m)
        | LoadError::UnexpectedAnchor(m)
        | LoadError::MappingKeyMustBeScalar(m)
        | LoadError::UnexpectedTag(m)
        | LoadError::ScanError(m, _) => Some(*m),
        LoadError::DuplicateKey(inner) => inner.key.span().start().copied(),
    }
}

#[cfg(test)]
mod tests;
