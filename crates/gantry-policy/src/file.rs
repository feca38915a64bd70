//! Reading `.github/gantry.yml`: its shape, its limits, and errors that name file, line and column.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use gantry_sigstore::policy::SignaturePolicy;
use marked_yaml::Spanned;
use serde::Deserialize;

use super::{
    Allowed, ArgoCd, ArgoWait, DEFAULT_GATE_TIMEOUT, Environment, Gate, GitOps, GitOpsMode,
    GitOpsRepository, Policy, PolicyError, Promotion, PullRequestPolicy, Role, Source,
    TAG_VARIABLES, chain, render_tag,
};

/// The largest policy file read, and the deepest nesting, list lengths.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;
const MAX_DEPTH: usize = 32;
const MAX_ENVIRONMENTS: usize = 256;
const MAX_PROMOTIONS: usize = 4096;
const MAX_GATES: usize = 64;

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
    #[serde(default)]
    aliases: Vec<Spanned<String>>,
    #[serde(default)]
    gitops: Option<FileGitOps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGitOps {
    repository: Spanned<String>,
    #[serde(default)]
    branch: Option<Spanned<String>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    targets: Vec<FileGitOpsTarget>,
    #[serde(default)]
    argocd: Option<FileArgoCd>,
    #[serde(default, rename = "pull-request")]
    pull_request: Option<Spanned<FilePullRequest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePullRequest {
    #[serde(default)]
    reviewers: Vec<Spanned<String>>,
    #[serde(default, rename = "team-reviewers")]
    team_reviewers: Vec<Spanned<String>>,
    #[serde(default)]
    labels: Vec<Spanned<String>>,
    #[serde(default, rename = "auto-merge")]
    auto_merge: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGitOpsTarget {
    file: Spanned<String>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    create: Option<Spanned<String>>,
    #[serde(default, rename = "kustomize-image")]
    kustomize_image: Option<Spanned<String>>,
    #[serde(default)]
    image: Option<Spanned<String>>,
    #[serde(default)]
    marker: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileArgoCd {
    server: Spanned<String>,
    application: Spanned<String>,
    #[serde(default)]
    wait: Option<Spanned<String>>,
    #[serde(default)]
    sync: Option<Spanned<String>>,
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
    #[serde(default, rename = "require-attestation")]
    require_attestation: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGate {
    name: Spanned<String>,
    run: Spanned<String>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAllowed {
    #[serde(default)]
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    teams: Vec<Spanned<String>>,
}

/// Parses policy text; `file` names it in messages.
pub(super) fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
    check_size_and_depth(file, text)?;
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let parsed: File = marked_yaml::from_yaml_with_options(0, text, options)
        .map_err(|e| yaml_error(file, text, &e))?;
    let at = Locator { file };
    if parsed.version.as_str() != "1" {
        return Err(at.error(
            parsed.version.span(),
            format!("version must be 1, found {:?}", parsed.version.as_str()),
        ));
    }
    let environments = match parsed.environments {
        None => Policy::default_chain().environments,
        Some(list) => environments(&at, list)?,
    };
    let promotions = match parsed.promotions {
        None => chain(&environments),
        Some(list) => {
            at.at_most("promotions", list.len(), MAX_PROMOTIONS)?;
            let names: HashSet<&str> = environments.iter().map(|e| e.name.as_str()).collect();
            let mut promotions: Vec<Promotion> = Vec::new();
            let mut seen = HashSet::new();
            for promotion in list {
                let promotion = promotion_of(&at, &environments, &names, promotion)?;
                if !seen.insert((promotion.from.clone(), promotion.to.clone())) {
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
    Ok(Policy {
        source: Source::File(file.to_owned()),
        environments,
        promotions,
    })
}

/// Turns a span and a message into an error that names the file, line and column.
struct Locator<'a> {
    file: &'a str,
}

impl Locator<'_> {
    /// Refuses a list longer than `limit`.
    fn at_most(&self, what: &str, count: usize, limit: usize) -> Result<(), PolicyError> {
        if count > limit {
            return Err(PolicyError::Unlocated {
                file: self.file.to_owned(),
                message: format!("{count} {what}: a policy may hold at most {limit}"),
            });
        }
        Ok(())
    }

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
    at.at_most("environments", list.len(), MAX_ENVIRONMENTS)?;
    let mut environments: Vec<Environment> = Vec::new();
    let mut seen = HashSet::new();
    for env in list {
        let name = env.name.as_str();
        if !is_name(name) {
            return Err(at.error(
                env.name.span(),
                format!("environment name {name:?} must be lowercase letters, digits and '-'"),
            ));
        }
        if !seen.insert(name.to_owned()) {
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
        let aliases = aliases_of(at, &env, &tag, name)?;
        let gitops = env.gitops.as_ref().map(|g| gitops_of(at, g)).transpose()?;
        environments.push(Environment {
            name: name.to_owned(),
            registry: gitops.is_none() || env.tag.is_some(),
            repository: env.repository.map(|r| r.as_str().to_owned()),
            tag,
            aliases,
            gitops,
        });
    }
    let mut tags: HashSet<(Option<&str>, String)> = HashSet::new();
    let sample = gantry_oci::Digest::sha256(b"");
    for env in &environments {
        let repository = env.repository.as_deref();
        let own = render_tag(&env.tag, &env.name, &sample);
        for tag in std::iter::once(own).chain(env.aliases.iter().cloned()) {
            if !tags.insert((repository, tag.clone())) {
                return Err(PolicyError::Unlocated {
                    file: at.file.to_owned(),
                    message: format!(
                        "tag {tag:?} of environment {} names another environment too: each tag may name one",
                        env.name
                    ),
                });
            }
        }
    }
    if environments.len() < 2 {
        return Err(PolicyError::Unlocated {
            file: at.file.to_owned(),
            message: "a policy needs at least two environments to promote between".to_owned(),
        });
    }
    Ok(environments)
}

/// A `true`/`false` value.
fn flag(
    at: &Locator<'_>,
    value: Option<&Spanned<String>>,
    what: &str,
) -> Result<bool, PolicyError> {
    match value.map(|v| (v, v.as_str())) {
        None | Some((_, "false")) => Ok(false),
        Some((_, "true")) => Ok(true),
        Some((v, other)) => Err(at.error(
            v.span(),
            format!("{what} must be true or false, found {other:?}"),
        )),
    }
}

/// An environment's `gitops:`: repository, branch, mode, targets (one kind each), Argo CD.
fn gitops_of(at: &Locator<'_>, g: &FileGitOps) -> Result<GitOps, PolicyError> {
    let text = g.repository.as_str().trim();
    let repository = if text.contains("://") || text.starts_with("git@") || text.starts_with('/') {
        GitOpsRepository::Url(text.to_owned())
    } else if text.split('/').count() == 2 && !text.split('/').any(str::is_empty) {
        GitOpsRepository::GitHub(text.to_owned())
    } else {
        return Err(at.error(
            g.repository.span(),
            format!("gitops repository {text:?} is neither owner/name (GitHub) nor a git URL"),
        ));
    };
    let mode = match g.mode.as_ref().map(|m| (m, m.as_str())) {
        None | Some((_, "commit")) => GitOpsMode::Commit,
        Some((_, "pull-request")) => GitOpsMode::PullRequest,
        Some((m, other)) => {
            return Err(at.error(
                m.span(),
                format!("gitops mode must be commit or pull-request, found {other:?}"),
            ));
        }
    };
    if g.targets.is_empty() {
        return Err(at.error(
            g.repository.span(),
            "gitops needs at least one target".to_owned(),
        ));
    }
    let pull_request = match (&g.pull_request, mode) {
        (None, _) => PullRequestPolicy::default(),
        (Some(p), GitOpsMode::Commit) => {
            return Err(at.error(
                p.span(),
                "gitops pull-request settings need mode: pull-request".to_owned(),
            ));
        }
        (Some(p), GitOpsMode::PullRequest) => pull_request_of(at, p)?,
    };
    if mode == GitOpsMode::PullRequest && matches!(repository, GitOpsRepository::Url(_)) {
        return Err(at.error(
            g.repository.span(),
            "gitops mode pull-request opens a GitHub pull request: the repository must be owner/name on GitHub".to_owned(),
        ));
    }
    let mut files: Vec<(String, Vec<gantry_gitops::Target>)> = Vec::new();
    for t in &g.targets {
        let file = t.file.as_str().trim();
        if file.is_empty() || file.starts_with('/') || file.split('/').any(|s| s == "..") {
            return Err(at.error(
                t.file.span(),
                format!("gitops file {file:?} must be a path inside the repository"),
            ));
        }
        let kinds = [&t.path, &t.kustomize_image, &t.image, &t.marker];
        let given: Vec<&Spanned<String>> = kinds.iter().filter_map(|k| k.as_ref()).collect();
        let [only] = given[..] else {
            return Err(at.error(
                t.file.span(),
                format!(
                    "gitops target {file}: give exactly one of path, kustomize-image, image, marker"
                ),
            ));
        };
        let create = flag(at, t.create.as_ref(), "create")?;
        let target = if t.path.is_some() {
            gantry_gitops::Target::path(only.as_str(), create)
                .map_err(|m| at.error(only.span(), m))?
        } else if t.kustomize_image.is_some() {
            gantry_gitops::Target::KustomizeImage {
                name: only.as_str().to_owned(),
            }
        } else if t.image.is_some() {
            gantry_gitops::Target::Image {
                repository: only.as_str().to_owned(),
            }
        } else {
            gantry_gitops::Target::Marker {
                name: only.as_str().to_owned(),
            }
        };
        match files.iter_mut().find(|(f, _)| f == file) {
            Some((_, targets)) => targets.push(target),
            None => files.push((file.to_owned(), vec![target])),
        }
    }
    let argocd = g.argocd.as_ref().map(|a| argocd_of(at, a)).transpose()?;
    Ok(GitOps {
        repository,
        branch: g
            .branch
            .as_ref()
            .map_or_else(|| "main".to_owned(), |b| b.as_str().to_owned()),
        mode,
        files,
        argocd,
        pull_request,
    })
}

/// An `argocd:` block: server, application, what to wait for, whether to sync.
fn argocd_of(at: &Locator<'_>, a: &FileArgoCd) -> Result<ArgoCd, PolicyError> {
    Ok(ArgoCd {
        server: a.server.as_str().trim_end_matches('/').to_owned(),
        application: a.application.as_str().to_owned(),
        wait: match a.wait.as_ref().map(|w| (w, w.as_str())) {
            None | Some((_, "synced-healthy")) => ArgoWait::SyncedHealthy,
            Some((_, "synced")) => ArgoWait::Synced,
            Some((_, "none")) => ArgoWait::None,
            Some((w, other)) => {
                return Err(at.error(
                    w.span(),
                    format!("argocd wait must be synced-healthy, synced or none, found {other:?}"),
                ));
            }
        },
        sync: flag(at, a.sync.as_ref(), "argocd sync")?,
    })
}

/// A `pull-request:` block: reviewers (logins), team reviewers (slugs), labels.
fn pull_request_of(
    at: &Locator<'_>,
    p: &FilePullRequest,
) -> Result<PullRequestPolicy, PolicyError> {
    let names = |list: &[Spanned<String>], what: &str, team: bool| {
        list.iter()
            .map(|n| {
                let text = n.as_str().trim();
                let valid = !text.is_empty()
                    && text.len() <= 100
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || (team && c == '_'));
                if valid {
                    Ok(text.to_owned())
                } else {
                    Err(at.error(n.span(), format!("{what} {text:?} is not a GitHub {what}")))
                }
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let labels = p
        .labels
        .iter()
        .map(|l| {
            let text = l.as_str().trim();
            if text.is_empty() || text.chars().count() > 50 || text.chars().any(char::is_control) {
                Err(at.error(
                    l.span(),
                    format!("label {text:?}: 1 to 50 printable characters"),
                ))
            } else {
                Ok(text.to_owned())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let auto_merge = match p.auto_merge.as_ref().map(|m| (m, m.as_str())) {
        None => None,
        Some((_, "merge")) => Some("MERGE".to_owned()),
        Some((_, "squash")) => Some("SQUASH".to_owned()),
        Some((_, "rebase")) => Some("REBASE".to_owned()),
        Some((m, other)) => {
            return Err(at.error(
                m.span(),
                format!("auto-merge must be merge, squash or rebase, found {other:?}"),
            ));
        }
    };
    Ok(PullRequestPolicy {
        reviewers: names(&p.reviewers, "login", false)?,
        team_reviewers: names(&p.team_reviewers, "team slug", true)?,
        labels,
        auto_merge,
    })
}

/// An environment's alias tags: valid tags, none twice, none the environment's own tag.
fn aliases_of(
    at: &Locator<'_>,
    env: &FileEnvironment,
    tag: &str,
    name: &str,
) -> Result<Vec<String>, PolicyError> {
    let mut aliases: Vec<String> = Vec::new();
    for alias in &env.aliases {
        let text = alias.as_str();
        if !gantry_oci::reference::is_valid_tag(text) {
            return Err(at.error(
                alias.span(),
                format!("alias {text:?} of {name} is not a valid tag"),
            ));
        }
        if text == render_tag(tag, name, &gantry_oci::Digest::sha256(b""))
            || aliases.iter().any(|a| a == text)
        {
            return Err(at.error(
                alias.span(),
                format!(
                    "alias {text:?} of {name} is listed twice (or is the environment's own tag)"
                ),
            ));
        }
        aliases.push(text.to_owned());
    }
    Ok(aliases)
}

fn promotion_of(
    at: &Locator<'_>,
    environments: &[Environment],
    names: &HashSet<&str>,
    promotion: FilePromotion,
) -> Result<Promotion, PolicyError> {
    for end in [&promotion.from, &promotion.to] {
        if !names.contains(end.as_str()) {
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
    at.at_most(
        &format!(
            "gates on {} -> {}",
            promotion.from.as_str(),
            promotion.to.as_str()
        ),
        promotion.gates.len(),
        MAX_GATES,
    )?;
    let gates = promotion
        .gates
        .iter()
        .map(|gate| gate_of(at, gate))
        .collect::<Result<Vec<_>, _>>()?;
    let (require_signature, require_attestations) = requirements(at, &promotion, &from, &to)?;
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
    Ok(Promotion {
        from,
        to,
        gates,
        allowed,
        require_signature,
        require_attestations,
    })
}

/// A path's `require-signature` (checked now, so a bad requirement fails before anything moves)
/// and `require-attestation` (predicate types, which need the signature's identity).
fn requirements(
    at: &Locator<'_>,
    promotion: &FilePromotion,
    from: &str,
    to: &str,
) -> Result<(Option<SignaturePolicy>, Vec<String>), PolicyError> {
    let require_attestation = &promotion.require_attestation;
    let require_signature = match promotion.require_signature.clone() {
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
    if let Some(first) = require_attestation.first() {
        if require_signature.is_none() {
            return Err(at.error(
                first.span(),
                format!("require-attestation of {from} -> {to} needs require-signature: the identity or key whose attestations count"),
            ));
        }
        if let Some(empty) = promotion
            .require_attestation
            .iter()
            .find(|a| a.trim().is_empty())
        {
            return Err(at.error(
                empty.span(),
                "require-attestation: an empty predicate type".to_owned(),
            ));
        }
    }
    let require_attestations = promotion
        .require_attestation
        .iter()
        .map(|kind| gantry_sigstore::oci::predicate_type(kind.trim()))
        .collect();
    Ok((require_signature, require_attestations))
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
    for name in &gate.env {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(at.error(
                name.span(),
                format!(
                    "env: {:?} is not an environment variable name (letters, digits and _)",
                    name.as_str()
                ),
            ));
        }
    }
    Ok(Gate {
        name: gate.name.as_str().to_owned(),
        run: gate.run.as_str().to_owned(),
        timeout,
        env: gate.env.iter().map(|n| n.as_str().to_owned()).collect(),
    })
}

fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
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

/// Refuses a file over [`MAX_POLICY_BYTES`], or nested deeper than [`MAX_DEPTH`] levels, before
/// a parser builds (and recursively checks and drops) a tree of it. The depth is counted from the
/// text: block levels by indentation, `- ` entries on one line, and open `[`/`{` outside quotes and
/// comments; the content of block scalars (`run: |`) is not YAML structure and is skipped.
fn check_size_and_depth(file: &str, text: &str) -> Result<(), PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::Unlocated {
            file: file.to_owned(),
            message: format!(
                "the policy is {} bytes; at most {MAX_POLICY_BYTES} are read",
                text.len()
            ),
        });
    }
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut scalar_above: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if content.trim().is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(parent) = scalar_above {
            if indent > parent {
                continue;
            }
            scalar_above = None;
        }
        if flow == 0 {
            while indents.last().is_some_and(|top| *top > indent) {
                indents.pop();
            }
            if indents.last().is_none_or(|top| *top < indent) {
                indents.push(indent);
            }
        }
        let mut rest = content;
        let mut entries = 0;
        while let Some(after) = rest.strip_prefix("- ") {
            entries += 1;
            rest = after.trim_start();
        }
        let (opened, deepest) = flow_depth(rest, flow);
        flow = opened;
        let depth = indents.len() + entries + deepest;
        if depth > MAX_DEPTH {
            return Err(PolicyError::Invalid {
                file: file.to_owned(),
                line: index + 1,
                column: indent + 1,
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        let value = rest.split(" #").next().unwrap_or(rest).trim_end();
        if flow == 0 && is_block_scalar_header(value) {
            scalar_above = Some(indent);
        }
    }
    Ok(())
}

/// The flow level after `line`, and the deepest level reached on it, outside quotes and comments.
fn flow_depth(line: &str, mut level: usize) -> (usize, usize) {
    let mut deepest = level;
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if previous == ' ' => break,
            (None, '[' | '{') => {
                level += 1;
                deepest = deepest.max(level);
            }
            (None, ']' | '}') => level = level.saturating_sub(1),
            // Inside quotes, and anything else outside them.
            _ => {}
        }
        previous = c;
    }
    (level, deepest)
}

/// Whether a line's value opens a block scalar (`|`, `>`, with chomping and indentation marks).
fn is_block_scalar_header(value: &str) -> bool {
    let indicator = value.rsplit_once(": ").map_or(value, |(_, v)| v).trim();
    indicator.starts_with(['|', '>'])
        && indicator[1..]
            .chars()
            .all(|c| c == '+' || c == '-' || c.is_ascii_digit())
}
