//! Gates: the policy's commands that must pass before a promotion moves anything. Each runs as a
//! [`gantry_actions::isolated`] command: `PATH`, `HOME`, the promotion's `GANTRY_*` variables and
//! only the variables its `env:` list names; its own process group, killed whole on a timeout;
//! its output neutralised and capped on its way to the log.

use std::fmt::Write as _;

use gantry_actions::Context;
use gantry_actions::isolated::{self, Isolated};

use crate::policy::Gate;

/// Runs the gates in order, noting each in the summary; the first failure stops them.
pub async fn run_all(
    ctx: &Context,
    gates: &[Gate],
    variables: &[(&str, String)],
    summary: &mut String,
) -> Option<String> {
    summary.push_str("\n### Gates\n\n");
    if gates.is_empty() {
        summary.push_str("(none)\n");
    }
    for gate in gates {
        let _group = ctx.group(&format!("gate: {}", gate.name));
        let command = Isolated {
            name: gate.name.clone(),
            run: gate.run.clone(),
            timeout: gate.timeout,
            env: gate.env.clone(),
        };
        if let Err(failure) = isolated::run(&command, variables).await {
            let _ = writeln!(summary, "- ❌ {}: {failure}", gate.name);
            return Some(format!("gate {:?} failed: {failure}", gate.name));
        }
        let _ = writeln!(summary, "- ✅ {}", gate.name);
    }
    None
}
