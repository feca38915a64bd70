//! Every environment variable gantry reads, by name, in one place (uv's `uv-static` idea).

/// Set to `true` by the runner on GitHub Actions.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// File the step appends its outputs to.
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
/// File the step writes its Markdown summary to.
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
/// `owner/name` of the repository the workflow runs in.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// Commit SHA the workflow runs on.
pub const GITHUB_SHA: &str = "GITHUB_SHA";
/// Fully formed ref (`refs/heads/main`).
pub const GITHUB_REF: &str = "GITHUB_REF";
/// Unique id of the workflow run.
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
/// Attempt number of the run (starts at 1).
pub const GITHUB_RUN_ATTEMPT: &str = "GITHUB_RUN_ATTEMPT";
/// `https://github.com` or the GHES host.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
/// REST API base URL.
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// Who started the run.
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// Who started this attempt of the run (differs from the actor on a re-run).
pub const GITHUB_TRIGGERING_ACTOR: &str = "GITHUB_TRIGGERING_ACTOR";
/// `owner/repo/.github/workflows/file.yml@ref`.
pub const GITHUB_WORKFLOW_REF: &str = "GITHUB_WORKFLOW_REF";
/// Name of the event that triggered the run.
pub const GITHUB_EVENT_NAME: &str = "GITHUB_EVENT_NAME";
/// URL of the OIDC token endpoint, present with `permissions: id-token: write`.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// Bearer token for the OIDC token endpoint.
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// `1` when the run was re-run with debug logging.
pub const RUNNER_DEBUG: &str = "RUNNER_DEBUG";
/// Standard `tracing` filter; overrides the defaults.
pub const RUST_LOG: &str = "RUST_LOG";
/// `false` turns gantry's step summaries off.
pub const GANTRY_STEP_SUMMARY: &str = "GANTRY_STEP_SUMMARY";
/// Prefix of the variables the runner sets for each input.
pub const INPUT_PREFIX: &str = "INPUT_";
