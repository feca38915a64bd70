//! What sign-image reports: its outputs and summary.

use std::fmt::Write as _;

use gantry_actions::Outcome;
use gantry_oci::{Digest, Reference};
use gantry_sigstore::sign::Identity;

gantry_actions::outputs! {
    /// The outputs of a signing run.
    pub struct Report {
        /// The digests signed, one per line, in the order given.
        digest: "digest",
        /// The referrer manifests that hold the signatures, one per line.
        signature: "signature",
        /// The Rekor log indexes of the signatures, one per line (empty when not logged).
        log_index: "log-index",
    }
}

/// One signed digest.
pub struct Signed {
    pub image: Reference,
    pub signature: Digest,
    pub log_index: Option<u64>,
}

/// The outcome of a run that signed `signed`.
pub fn outcome(identity: &Identity, signed: &[Signed], legacy: bool) -> Outcome {
    let who = match identity {
        Identity::Keyless { services, .. } => format!("keyless (Fulcio {})", services.fulcio),
        Identity::Key { rekor: Some(_), .. } => "the given key".to_owned(),
        Identity::Key { rekor: None, .. } => {
            "the given key, not logged (verifiers must waive the log)".to_owned()
        }
    };
    let mut summary = format!(
        "## gantry sign-image\n\nSigned with {who}{}.\n\n| image | signature | log index |\n|---|---|---|\n",
        if legacy {
            "; a legacy `.sig` signature written as well"
        } else {
            ""
        }
    );
    for s in signed {
        let _ = writeln!(
            summary,
            "| `{}` | `{}` | {} |",
            s.image,
            s.signature,
            s.log_index.map(|i| i.to_string()).unwrap_or_default()
        );
    }
    let lines = |f: &dyn Fn(&Signed) -> String| signed.iter().map(f).collect::<Vec<_>>().join("\n");
    let report = Report {
        digest: lines(&|s| {
            s.image
                .digest()
                .map(ToString::to_string)
                .unwrap_or_default()
        }),
        signature: lines(&|s| s.signature.to_string()),
        log_index: lines(&|s| s.log_index.map(|i| i.to_string()).unwrap_or_default()),
    };
    Outcome::success()
        .headline(format!("signed {} digest(s) with {who}", signed.len()))
        .with_outputs(&report)
        .summary(summary)
}
