//! A GitHub Actions runner for gantry's own workflows, enough to play them here: it reads the
//! workflow files themselves (the reusable workflows under `.github/workflows/` and the callers in
//! `examples/`), evaluates their expressions, and runs every gantry step with the real binary,
//! its inputs taken from the step's own `env:`/`with:` exactly as written. So what is tested is the
//! wiring itself: each step's inputs, each job's and workflow's outputs, `if:` conditions, `needs`,
//! `secrets:` and the `permissions:` a step relies on (the OIDC token reaches a step only when its
//! job grants `id-token: write`, as on GitHub).
//!
//! `run:` steps run in bash as on a runner. Steps that need what this machine does not have (a
//! Docker daemon for a build, a Trivy database, GitHub's artifact storage) are played by the test:
//! a [`Play`] registered under the step's `id` or the action's name, which must be pinned by a
//! full commit SHA. A step with neither is an error, never skipped.

pub mod expr;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

use expr::{Contexts, condition, render, text};

/// What a played step is given.
pub struct StepCall<'a> {
    /// Its `with:`, evaluated.
    pub with: BTreeMap<String, String>,
    /// Its environment (`env:` of workflow, job and step, evaluated).
    pub env: BTreeMap<String, String>,
    /// The checked-out repository.
    pub workspace: &'a Path,
    /// `RUNNER_TEMP`.
    pub temp: &'a Path,
}

/// A step the test plays; returns the step's outputs, or why it failed.
pub type Play = Box<dyn Fn(&StepCall) -> Result<BTreeMap<String, String>, String> + Send + Sync>;

/// One step as it ran.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// `workflow/job/step`.
    pub path: String,
    /// `success`, `failure` or `skipped`.
    pub outcome: String,
    /// For a gantry step: the tool and its `INPUT_*` variables.
    pub gantry: Option<(String, BTreeMap<String, String>)>,
    /// What it printed.
    pub log: String,
    /// Its outputs.
    pub outputs: Map<String, Value>,
}

/// A workflow's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `success` or `failure`.
    pub result: String,
    /// Its `workflow_call` outputs (a caller's: empty).
    pub outputs: Map<String, Value>,
    /// Each job: `{result, outputs, environment}`.
    pub jobs: Map<String, Value>,
}

/// The runner: the binary, the repository being played, and what the test plays.
pub struct Runner {
    /// The static gantry binary every gantry step runs.
    pub binary: PathBuf,
    /// gantry's repository (`gantry-dev/gantry/...` references resolve here).
    pub gantry_root: PathBuf,
    /// The checked-out repository of the workflow being run.
    pub workspace: PathBuf,
    /// The `github` context.
    pub github: Value,
    /// The repository's secrets (`secrets.*` of a top-level workflow).
    pub secrets: Map<String, Value>,
    /// The `matrix` context of the caller's job (one combination).
    pub matrix: Value,
    /// In place of the workflow's own `env:` values (what only this machine needs).
    pub env_overrides: Map<String, Value>,
    /// Set in the `with:` of every use of gantry's root action: what only this machine needs
    /// (the local registry, the mock Sigstore).
    pub with_overrides: Map<String, Value>,
    /// What the runner's environment holds for every step (`GITHUB_API_URL`, …).
    pub env: Vec<(String, String)>,
    /// Given to steps of jobs that grant `id-token: write`.
    pub oidc_env: Vec<(String, String)>,
    /// Steps the test plays, by step id or action name.
    pub plays: HashMap<String, Play>,
    /// Every step run, in order.
    pub record: Mutex<Vec<StepRecord>>,
    /// Told of each job of steps that ended: its id, its name, its result (`success`, …), as
    /// GitHub's API would show it.
    pub on_job: Option<JobHook>,
    temp: tempfile::TempDir,
}

/// See [`Runner::on_job`].
pub type JobHook = Box<dyn Fn(&str, &str, &str) + Send + Sync>;

impl Runner {
    /// A runner for `workspace`.
    pub fn new(binary: &Path, workspace: &Path, github: Value) -> Self {
        Self {
            binary: binary.to_owned(),
            gantry_root: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
            workspace: workspace.to_owned(),
            github,
            secrets: Map::new(),
            matrix: json!({}),
            with_overrides: Map::new(),
            env_overrides: Map::new(),
            env: Vec::new(),
            oidc_env: Vec::new(),
            plays: HashMap::new(),
            record: Mutex::new(Vec::new()),
            on_job: None,
            temp: tempfile::tempdir().expect("runner temp"),
        }
    }

    /// Plays the step with this id, or every use of this action (`owner/name`).
    pub fn play(
        &mut self,
        key: &str,
        play: impl Fn(&StepCall) -> Result<BTreeMap<String, String>, String> + Send + Sync + 'static,
    ) {
        self.plays.insert(key.to_owned(), Box::new(play));
    }

    /// The repository's secrets and the one GitHub adds, `GITHUB_TOKEN`.
    fn repository_secrets(&self) -> Map<String, Value> {
        let mut secrets = self.secrets.clone();
        secrets.insert("GITHUB_TOKEN".to_owned(), self.github["token"].clone());
        secrets
    }

    /// The first step of gantry's `tool` run so far.
    pub fn gantry_step(&self, tool: &str) -> Option<StepRecord> {
        self.steps()
            .into_iter()
            .find(|s| s.gantry.as_ref().is_some_and(|(t, _)| t == tool))
    }

    /// The last step that failed.
    pub fn last_failure(&self) -> Option<StepRecord> {
        self.steps().into_iter().rfind(|s| s.outcome == "failure")
    }

    /// The scope of a top-level job: the event's `inputs`, the jobs it `needs`, the repository's
    /// secrets; `None` when the job's `if:` does not hold.
    fn event_scope(
        &self,
        spec: &Yaml,
        inputs: &Map<String, Value>,
        needed: &Map<String, Value>,
    ) -> Result<Option<Scope<'_>>, String> {
        let scope = Scope {
            runner: self,
            fixed: json!({"inputs": inputs, "secrets": self.repository_secrets(), "github": self.github, "needs": needed, "env": {}, "matrix": self.matrix}),
            succeeded: needed.values().all(|j| j["result"] == "success"),
        };
        match spec["if"].as_str() {
            Some(cond) if !condition(cond, &scope)? => Ok(None),
            _ => Ok(Some(scope)),
        }
    }

    /// The steps run so far.
    pub fn steps(&self) -> Vec<StepRecord> {
        self.record.lock().expect("record").clone()
    }

    /// Calls the reusable `workflow` (`on: workflow_call`) with `with` and `secrets`, both
    /// checked against what it declares.
    pub fn call(
        &self,
        workflow: &Path,
        with: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<Outcome, String> {
        let doc = load(workflow)?;
        let call = &doc["on"]["workflow_call"];
        if call.is_badvalue() {
            return Err(format!("{} is not a reusable workflow", workflow.display()));
        }
        let inputs = declare(&call["inputs"], with, workflow)?;
        let declared = &call["secrets"];
        for name in secrets.keys() {
            if declared[name.as_str()].is_badvalue() {
                return Err(format!(
                    "{} declares no secret {name:?}",
                    workflow.display()
                ));
            }
        }
        if let Some(map) = declared.as_hash() {
            for (name, spec) in map {
                let name = name.as_str().unwrap_or_default();
                if spec["required"].as_bool() == Some(true) && !secrets.contains_key(name) {
                    return Err(format!("{} requires secret {name:?}", workflow.display()));
                }
            }
        }
        let mut outcome = self.run(workflow, &doc, &inputs, secrets)?;
        let jobs = Value::Object(outcome.jobs.clone());
        if let Some(map) = call["outputs"].as_hash() {
            for (name, spec) in map {
                let scope = Scope {
                    runner: self,
                    fixed: json!({ "jobs": jobs, "github": self.github }),
                    succeeded: true,
                };
                let value = render(spec["value"].as_str().unwrap_or_default(), &scope)
                    .map_err(|e| format!("{}: output {name:?}: {e}", workflow.display()))?;
                outcome
                    .outputs
                    .insert(name.as_str().unwrap_or_default().to_owned(), value);
            }
        }
        Ok(outcome)
    }

    /// Runs job `job` of the caller `workflow` (a job that `uses:` a reusable workflow) with the
    /// caller's `inputs` and `needs`: its own `with:` and `secrets:`, evaluated, then `overrides`
    /// in place of (or added to) `with:` (what only this machine needs: the local registry, the
    /// mock Sigstore). Also checks the job's `if:`; `None` when it would not run.
    pub fn caller_job(
        &self,
        workflow: &Path,
        job: &str,
        inputs: &Map<String, Value>,
        needed: &Map<String, Value>,
        overrides: &Map<String, Value>,
    ) -> Result<Option<Outcome>, String> {
        let doc = load(workflow)?;
        let spec = &doc["jobs"][job];
        let uses = spec["uses"].as_str().ok_or_else(|| {
            format!(
                "{}: job {job} calls no reusable workflow",
                workflow.display()
            )
        })?;
        let Some(scope) = self.event_scope(spec, inputs, needed)? else {
            return Ok(None);
        };
        let called = self.reusable(workflow, uses)?;
        let mut with = evaluate_map(&spec["with"], &scope)?;
        with.extend(overrides.clone());
        let secrets = evaluate_map(&spec["secrets"], &scope)?;
        self.call(&called, &with, &secrets).map(Some)
    }

    /// Runs job `job` of `workflow` (a job of steps) with the event's `inputs` and `needs`;
    /// `None` when its `if:` does not hold. Returns `{result, outputs}`.
    pub fn steps_job(
        &self,
        workflow: &Path,
        job: &str,
        inputs: &Map<String, Value>,
        needed: &Map<String, Value>,
    ) -> Result<Option<Value>, String> {
        let doc = load(workflow)?;
        let spec = &doc["jobs"][job];
        let Some(scope) = self.event_scope(spec, inputs, needed)? else {
            return Ok(None);
        };
        let name = workflow
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.job(&name, job, spec, &doc["env"], &scope).map(Some)
    }

    /// Where `uses:` of a reusable workflow points: `gantry-dev/gantry/.github/workflows/X@sha`
    /// or `./.github/workflows/X` (relative to the caller's repository).
    fn reusable(&self, caller: &Path, uses: &str) -> Result<PathBuf, String> {
        if let Some(rest) = uses.strip_prefix("gantry-dev/gantry/") {
            let (path, pin) = rest.split_once('@').ok_or("unpinned reusable workflow")?;
            pinned(pin)?;
            return Ok(self.gantry_root.join(path));
        }
        if let Some(local) = uses.strip_prefix("./") {
            let repository = caller
                .ancestors()
                .find(|p| p.ends_with(".github"))
                .and_then(Path::parent)
                .ok_or("a local workflow outside a repository")?;
            return Ok(repository.join(local));
        }
        Err(format!("the runner plays no reusable workflow {uses:?}"))
    }

    fn run(
        &self,
        workflow: &Path,
        doc: &Yaml,
        inputs: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<Outcome, String> {
        let name = workflow
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let jobs = doc["jobs"].as_hash().ok_or("a workflow without jobs")?;
        let mut done: Map<String, Value> = Map::new();
        let mut pending: Vec<(String, &Yaml)> = jobs
            .iter()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v))
            .collect();
        let workflow_env = &doc["env"];
        while !pending.is_empty() {
            let ready = pending
                .iter()
                .position(|(_, job)| needs(job).iter().all(|n| done.contains_key(n)))
                .ok_or("jobs whose needs never finish")?;
            let (id, job) = pending.remove(ready);
            let needed: Map<String, Value> = needs(job)
                .iter()
                .map(|n| (n.clone(), done[n].clone()))
                .collect();
            let all_ok = needed.values().all(|j| j["result"] == "success");
            let scope = Scope {
                runner: self,
                fixed: json!({"inputs": inputs, "secrets": secrets, "github": self.github, "needs": needed, "env": {}}),
                succeeded: all_ok,
            };
            let wanted = match job["if"].as_str() {
                Some(cond) => {
                    condition(cond, &scope).map_err(|e| format!("{name}/{id}: if: {e}"))?
                }
                None => all_ok,
            };
            if !wanted {
                done.insert(id, json!({"result": "skipped", "outputs": {}}));
                continue;
            }
            let environment = job["environment"]
                .as_str()
                .map(|e| render(e, &scope).map(|v| text(&v)))
                .transpose()
                .map_err(|e| format!("{name}/{id}: environment: {e}"))?;
            let mut result = if let Some(uses) = job["uses"].as_str() {
                let called = self.reusable(workflow, uses)?;
                let with = evaluate_map(&job["with"], &scope)?;
                let passed = if job["secrets"].as_str() == Some("inherit") {
                    secrets.clone()
                } else {
                    evaluate_map(&job["secrets"], &scope)?
                };
                let outcome = self.call(&called, &with, &passed)?;
                json!({"result": outcome.result, "outputs": outcome.outputs})
            } else {
                let result = self.job(&name, &id, job, workflow_env, &scope)?;
                if let Some(hook) = &self.on_job {
                    let title = job["name"].as_str().map_or_else(
                        || id.clone(),
                        |t| render(t, &scope).map_or_else(|_| t.to_owned(), |v| text(&v)),
                    );
                    hook(&id, &title, result["result"].as_str().unwrap_or_default());
                }
                result
            };
            result["environment"] = environment.map_or(Value::Null, Value::String);
            done.insert(id, result);
        }
        let result = if done.values().all(|j| j["result"] != "failure") {
            "success"
        } else {
            "failure"
        };
        Ok(Outcome {
            result: result.to_owned(),
            outputs: Map::new(),
            jobs: done,
        })
    }

    fn job(
        &self,
        workflow: &str,
        id: &str,
        job: &Yaml,
        workflow_env: &Yaml,
        scope: &Scope,
    ) -> Result<Value, String> {
        let oidc = job["permissions"]["id-token"].as_str() == Some("write");
        let mut env = evaluate_map(workflow_env, scope)?;
        env.extend(self.env_overrides.clone());
        let mut job_scope = Scope {
            runner: self,
            fixed: scope.fixed.clone(),
            succeeded: true,
        };
        job_scope.fixed["env"] = Value::Object(env.clone());
        env.extend(evaluate_map(&job["env"], &job_scope)?);
        env.extend(self.env_overrides.clone());
        let (ok, steps) = self.run_steps(
            &format!("{workflow}/{id}"),
            &job["steps"],
            &env,
            oidc,
            &job_scope,
        )?;
        job_scope.fixed["steps"] = Value::Object(steps);
        job_scope.succeeded = ok;
        let outputs = evaluate_map(&job["outputs"], &job_scope)?;
        Ok(json!({"result": if ok { "success" } else { "failure" }, "outputs": outputs}))
    }

    /// Runs `steps` in `scope` (a job's, or a composite action's): whether all succeeded, and
    /// the `steps` context they leave.
    fn run_steps(
        &self,
        prefix: &str,
        steps: &Yaml,
        env: &Map<String, Value>,
        oidc: bool,
        scope: &Scope,
    ) -> Result<(bool, Map<String, Value>), String> {
        let mut done: Map<String, Value> = Map::new();
        let mut ok = true;
        let mut step_scope = Scope {
            runner: self,
            fixed: scope.fixed.clone(),
            succeeded: true,
        };
        for (n, step) in steps.as_vec().into_iter().flatten().enumerate() {
            let step_id = step["id"]
                .as_str()
                .map_or_else(|| format!("__{n}"), ToOwned::to_owned);
            step_scope.fixed["steps"] = Value::Object(done.clone());
            step_scope.fixed["env"] = Value::Object(env.clone());
            step_scope.succeeded = ok;
            let label = format!("{prefix}/{}", step["name"].as_str().unwrap_or(&step_id));
            let wanted = match step["if"].as_str() {
                Some(cond) => {
                    condition(cond, &step_scope).map_err(|e| format!("{label}: if: {e}"))?
                }
                None => ok,
            };
            if !wanted {
                done.insert(
                    step_id,
                    json!({"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}),
                );
                self.note(&label, "skipped", None, String::new());
                continue;
            }
            let mut step_env: BTreeMap<String, String> =
                env.iter().map(|(k, v)| (k.clone(), text(v))).collect();
            for (k, v) in evaluate_map(&step["env"], &step_scope)? {
                step_env.insert(k, text(&v));
            }
            let with: BTreeMap<String, String> = evaluate_map(&step["with"], &step_scope)?
                .into_iter()
                .map(|(k, v)| (k, text(&v)))
                .collect();
            let (outcome, outputs) = self
                .step(&label, &step_id, step, with, step_env, oidc, &step_scope)
                .map_err(|e| format!("{label}: {e}"))?;
            let conclusion =
                if outcome == "success" || step["continue-on-error"].as_bool() == Some(true) {
                    "success"
                } else {
                    "failure"
                };
            ok &= conclusion == "success";
            done.insert(
                step_id,
                json!({"outputs": outputs, "outcome": outcome, "conclusion": conclusion}),
            );
        }
        Ok((ok, done))
    }

    /// gantry's root action (`uses: gantry-dev/gantry@<sha>`), a composite: its inputs from `with`
    /// (each one it declares, else an error) and its defaults, its steps in its own scope, its
    /// outputs.
    fn composite(
        &self,
        label: &str,
        with: &BTreeMap<String, String>,
        env: &BTreeMap<String, String>,
        oidc: bool,
        scope: &Scope,
    ) -> Result<(String, Map<String, Value>), String> {
        let action = load(&self.gantry_root.join("action.yml"))?;
        let mut inputs = Map::new();
        for name in with.keys() {
            if action["inputs"][name.as_str()].is_badvalue() {
                return Err(format!("gantry's root action has no input {name:?}"));
            }
        }
        for (name, spec) in action["inputs"].as_hash().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            let value = match with.get(name) {
                Some(v) => v.clone(),
                None => spec["default"]
                    .as_str()
                    .map(|d| render(d, scope).map(|v| text(&v)))
                    .transpose()?
                    .unwrap_or_default(),
            };
            inputs.insert(name.to_owned(), Value::String(value));
        }
        let inner = Scope {
            runner: self,
            fixed: json!({"inputs": inputs, "github": self.github, "env": {}}),
            succeeded: true,
        };
        let env: Map<String, Value> = env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let (ok, steps) = self.run_steps(label, &action["runs"]["steps"], &env, oidc, &inner)?;
        let outer = Scope {
            runner: self,
            fixed: json!({"inputs": inputs, "github": self.github, "steps": steps}),
            succeeded: ok,
        };
        let mut outputs = Map::new();
        for (name, spec) in action["outputs"].as_hash().into_iter().flatten() {
            let value = render(spec["value"].as_str().unwrap_or_default(), &outer)?;
            outputs.insert(
                name.as_str().unwrap_or_default().to_owned(),
                Value::String(text(&value)),
            );
        }
        Ok((if ok { "success" } else { "failure" }.to_owned(), outputs))
    }

    fn note(
        &self,
        path: &str,
        outcome: &str,
        gantry: Option<(String, BTreeMap<String, String>)>,
        log: String,
    ) {
        self.record.lock().expect("record").push(StepRecord {
            path: path.to_owned(),
            outcome: outcome.to_owned(),
            gantry,
            log,
            outputs: Map::new(),
        });
    }

    #[expect(clippy::too_many_arguments, reason = "one step's whole context")]
    fn step(
        &self,
        label: &str,
        id: &str,
        step: &Yaml,
        with: BTreeMap<String, String>,
        env: BTreeMap<String, String>,
        oidc: bool,
        scope: &Scope,
    ) -> Result<(String, Map<String, Value>), String> {
        let call = |with: BTreeMap<String, String>, env: BTreeMap<String, String>| StepCall {
            with,
            env,
            workspace: &self.workspace,
            temp: self.temp.path(),
        };
        if let Some(play) = self.plays.get(id) {
            let result = play(&call(with, env));
            return Ok(self.played(label, result));
        }
        if let Some(uses) = step["uses"].as_str() {
            if let Some(image) = uses.strip_prefix("docker://") {
                let pinned = std::fs::read_to_string(self.gantry_root.join("actions/IMAGE"))
                    .map_err(|e| e.to_string())?;
                if image != pinned.trim() {
                    return Err(format!(
                        "runs {image}, not the pinned gantry image {}",
                        pinned.trim()
                    ));
                }
                let args: Vec<String> = with
                    .get("args")
                    .map(|a| a.split_whitespace().map(ToOwned::to_owned).collect())
                    .unwrap_or_default();
                return self.gantry(label, &args, env, oidc);
            }
            if let Some(pin) = uses.strip_prefix("gantry-dev/gantry@") {
                pinned(pin)?;
                let mut with = with;
                for (key, value) in &self.with_overrides {
                    with.insert(key.clone(), text(value));
                }
                return self.composite(label, &with, &env, oidc, scope);
            }
            if let Some(rest) = uses.strip_prefix("gantry-dev/gantry/actions/") {
                return self.tool_action(label, rest, with, env, oidc, scope);
            }
            let (action, pin) = uses.split_once('@').ok_or("an unpinned action")?;
            pinned(pin.split_whitespace().next().unwrap_or_default())?;
            let play = self
                .plays
                .get(action)
                .ok_or_else(|| format!("nothing plays {action} (register a play for it)"))?;
            let result = play(&call(with, env));
            return Ok(self.played(label, result));
        }
        let script = step["run"]
            .as_str()
            .ok_or("a step with neither uses nor run")?;
        let script = text(&render(script, scope)?);
        let script_file = self.temp.path().join(format!("script-{}.sh", uuid()));
        std::fs::write(&script_file, &script).map_err(|e| e.to_string())?;
        let mut bash = Command::new("bash");
        bash.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script_file)
            .env("HOME", self.temp.path());
        // A script that runs gantry on the runner (`"$GANTRY" <tool> --action`) is recorded as
        // that tool's step.
        let words: Vec<&str> = script.split_whitespace().collect();
        let tool = words
            .windows(2)
            .find(|w| w[1].trim_end_matches('\'') == "--action")
            .map(|w| w[0].to_owned());
        self.execute(label, bash, tool, env, oidc)
    }

    /// One of gantry's actions (`gantry-dev/gantry/actions/<tool>@<sha>`, `rest` after the
    /// prefix): its `action.yml`'s inputs from `with` (each one it declares) and its defaults.
    fn tool_action(
        &self,
        label: &str,
        rest: &str,
        with: BTreeMap<String, String>,
        mut env: BTreeMap<String, String>,
        oidc: bool,
        scope: &Scope,
    ) -> Result<(String, Map<String, Value>), String> {
        let (tool, pin) = rest.split_once('@').ok_or("unpinned gantry action")?;
        pinned(pin)?;
        let action = load(
            &self
                .gantry_root
                .join("actions")
                .join(tool)
                .join("action.yml"),
        )?;
        let declared = action["inputs"]
            .as_hash()
            .ok_or("an action without inputs")?;
        let mut with = with;
        for (key, value) in &self.with_overrides {
            if !action["inputs"][key.as_str()].is_badvalue() {
                with.insert(key.clone(), text(value));
            }
        }
        for name in with.keys() {
            if action["inputs"][name.as_str()].is_badvalue() {
                return Err(format!("gantry {tool} has no input {name:?}"));
            }
        }
        for (name, spec) in declared {
            let name = name.as_str().unwrap_or_default();
            let value = match with.get(name) {
                Some(v) => v.clone(),
                None => spec["default"]
                    .as_str()
                    .map(|d| render(d, scope).map(|v| text(&v)))
                    .transpose()?
                    .unwrap_or_default(),
            };
            env.insert(gantry_actions::inputs::variable_name(name), value);
        }
        let args = vec![tool.to_owned(), "--action".to_owned()];
        self.gantry(label, &args, env, oidc)
    }

    fn played(
        &self,
        label: &str,
        result: Result<BTreeMap<String, String>, String>,
    ) -> (String, Map<String, Value>) {
        match result {
            Ok(outputs) => {
                self.note(label, "success", None, "played".to_owned());
                (
                    "success".to_owned(),
                    outputs
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            }
            Err(why) => {
                self.note(label, "failure", None, why);
                ("failure".to_owned(), Map::new())
            }
        }
    }

    /// The variables a runner gives every step.
    fn base_env(&self, output: &Path, oidc: bool) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        let github = &self.github;
        for (var, key) in [
            ("GITHUB_REPOSITORY", "repository"),
            ("GITHUB_SHA", "sha"),
            ("GITHUB_REF", "ref"),
            ("GITHUB_ACTOR", "actor"),
            ("GITHUB_TRIGGERING_ACTOR", "triggering_actor"),
            ("GITHUB_SERVER_URL", "server_url"),
            ("GITHUB_WORKFLOW_REF", "workflow_ref"),
            ("GITHUB_EVENT_NAME", "event_name"),
            ("GITHUB_RUN_ID", "run_id"),
            ("GITHUB_RUN_ATTEMPT", "run_attempt"),
        ] {
            if let Some(value) = github.get(key) {
                env.push((var.to_owned(), text(value)));
            }
        }
        env.push(("GITHUB_ACTIONS".to_owned(), "true".to_owned()));
        env.push(("GITHUB_OUTPUT".to_owned(), output.display().to_string()));
        env.push((
            "GITHUB_STEP_SUMMARY".to_owned(),
            self.temp.path().join("summary.md").display().to_string(),
        ));
        env.push((
            "GITHUB_WORKSPACE".to_owned(),
            self.workspace.display().to_string(),
        ));
        env.push((
            "RUNNER_TEMP".to_owned(),
            self.temp.path().display().to_string(),
        ));
        if oidc {
            env.extend(self.oidc_env.iter().cloned());
        }
        env
    }

    /// Runs the gantry binary as the runner runs its container.
    fn gantry(
        &self,
        label: &str,
        args: &[String],
        env: BTreeMap<String, String>,
        oidc: bool,
    ) -> Result<(String, Map<String, Value>), String> {
        let mut command = Command::new(&self.binary);
        command.args(args);
        self.execute(label, command, args.first().cloned(), env, oidc)
    }

    /// Runs `command` as a step: in the workspace, with the runner's variables and `env` only, its
    /// `GITHUB_OUTPUT` read back. A step of gantry's `tool` is recorded with its inputs.
    fn execute(
        &self,
        label: &str,
        mut command: Command,
        tool: Option<String>,
        env: BTreeMap<String, String>,
        oidc: bool,
    ) -> Result<(String, Map<String, Value>), String> {
        let output = self.temp.path().join(format!("output-{}", uuid()));
        std::fs::write(&output, "").map_err(|e| e.to_string())?;
        let result = command
            .current_dir(&self.workspace)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.base_env(&output, oidc))
            .envs(&env)
            .output()
            .map_err(|e| format!("{label}: {e}"))?;
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        let outputs = read_outputs(&output)?;
        let outcome = if result.status.success() {
            "success"
        } else {
            "failure"
        };
        let gantry = tool.map(|tool| {
            let inputs = env
                .into_iter()
                .filter(|(k, v)| k.starts_with("INPUT_") && !v.is_empty())
                .collect();
            (tool, inputs)
        });
        self.record.lock().expect("record").push(StepRecord {
            path: label.to_owned(),
            outcome: outcome.to_owned(),
            gantry,
            log,
            outputs: outputs.clone(),
        });
        Ok((outcome.to_owned(), outputs))
    }
}

/// The expression scope of a job or step.
struct Scope<'a> {
    runner: &'a Runner,
    fixed: Value,
    succeeded: bool,
}

impl Contexts for Scope<'_> {
    fn context(&self, name: &str) -> Option<Value> {
        match name {
            "github" => Some(self.runner.github.clone()),
            "runner" => Some(json!({"temp": self.runner.temp.path(), "os": "Linux"})),
            _ => self.fixed.get(name).cloned(),
        }
    }

    fn succeeded(&self) -> bool {
        self.succeeded
    }
}

fn uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn pinned(pin: &str) -> Result<(), String> {
    if pin.len() == 40 && pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("{pin:?} is not a full commit SHA"))
    }
}

fn read_outputs(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let parsed = gantry_actions::files::parse_outputs(&text).map_err(|e| e.to_string())?;
    Ok(parsed
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

/// Loads a workflow or action file.
pub fn load(path: &Path) -> Result<Yaml, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    YamlLoader::load_from_str(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{} is empty", path.display()))
}

fn needs(job: &Yaml) -> Vec<String> {
    match &job["needs"] {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(ToOwned::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn scalar(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
        Yaml::Integer(i) => json!(i),
        Yaml::Boolean(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}

/// Evaluates every value of a `with:`/`env:`/`outputs:` map.
fn evaluate_map(yaml: &Yaml, scope: &Scope) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (key, value) in yaml.as_hash().into_iter().flatten() {
        let key = key
            .as_str()
            .map_or_else(|| text(&scalar(key)), ToOwned::to_owned);
        let value = match value {
            Yaml::String(s) => render(s, scope).map_err(|e| format!("{key}: {e}"))?,
            other => scalar(other),
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// The inputs a workflow declares, from what it was given: unknown names and missing required
/// inputs are errors; defaults fill the rest; `choice` values are checked.
fn declare(
    declared: &Yaml,
    given: &Map<String, Value>,
    workflow: &Path,
) -> Result<Map<String, Value>, String> {
    let mut inputs = Map::new();
    for name in given.keys() {
        if declared[name.as_str()].is_badvalue() {
            return Err(format!("{} declares no input {name:?}", workflow.display()));
        }
    }
    for (name, spec) in declared.as_hash().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        let value = match given.get(name) {
            Some(v) => v.clone(),
            None if spec["required"].as_bool() == Some(true) => {
                return Err(format!("{} requires input {name:?}", workflow.display()));
            }
            None => scalar(&spec["default"]),
        };
        let value = match (spec["type"].as_str(), &value) {
            (Some("boolean"), Value::String(s)) => Value::Bool(s == "true"),
            (Some("boolean"), Value::Null) => Value::Bool(false),
            (Some("string" | "choice"), Value::Null) => Value::String(String::new()),
            _ => value,
        };
        if let Some(options) = spec["options"].as_vec() {
            let allowed: Vec<&str> = options.iter().filter_map(Yaml::as_str).collect();
            if !allowed.contains(&text(&value).as_str()) {
                return Err(format!(
                    "{}: input {name:?} must be one of {allowed:?}",
                    workflow.display()
                ));
            }
        }
        inputs.insert(name.to_owned(), value);
    }
    Ok(inputs)
}
