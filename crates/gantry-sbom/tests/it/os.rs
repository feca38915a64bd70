//! OS package databases gantry cannot get from Debian's mirror: rpm (a real sqlite rpmdb written
//! by Debian's rpm from packages rpmbuild made), apk and distroless `status.d` (written from their
//! documented formats), each checked against the database's own view.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{components, sbom_of, validate};

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}

fn component<'a>(json: &'a Value, name: &str) -> &'a Value {
    components(json)
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

/// rpmbuild's packages installed into `root` with `rpm --justdb` (a real sqlite database).
fn rpm_root(root: &Path) -> Option<()> {
    let rpmbuild = gantry_testkit::require("rpmbuild", "apt-get install rpm")?;
    let top = tempfile::tempdir().expect("tempdir");
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpm");
    for spec in ["hello-gantry", "needs-hello", "gone"] {
        let status = Command::new(&rpmbuild)
            .args(["-bb", "--quiet"])
            .arg(format!("--define=_topdir {}", top.path().display()))
            .arg("--define=_build_id_links none")
            .arg(specs.join(format!("{spec}.spec")))
            .status()
            .expect("rpmbuild");
        assert!(status.success(), "rpmbuild {spec}");
    }
    let rpms: Vec<String> = walk(&top.path().join("RPMS"));
    let status = Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args([
            "--dbpath=/usr/lib/sysimage/rpm",
            "--define=_db_backend sqlite",
            "-i",
            "--nodeps",
            "--justdb",
            "--quiet",
        ])
        .args(&rpms)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("rpm -i");
    assert!(status.success(), "rpm -i");
    Some(())
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path().display().to_string());
        }
    }
    out
}

/// `name version-release arch` as `rpm -qa` says.
fn rpm_qa(root: &Path) -> BTreeSet<String> {
    let output = Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args([
            "--dbpath=/usr/lib/sysimage/rpm",
            "-qa",
            "--qf",
            "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\\n",
        ])
        .output()
        .expect("rpm -qa");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn rpm_packages_are_exactly_what_rpm_says() {
    let root = tempfile::tempdir().expect("tempdir");
    if rpm_root(root.path()).is_none() {
        return;
    }
    write(
        root.path(),
        "etc/os-release",
        "ID=fedora\nVERSION_ID=40\nPRETTY_NAME=\"Fedora Linux 40\"\n",
    );
    // `--justdb` records the files without writing them: the one the test needs, by hand
    write(
        root.path(),
        "usr/lib/needs-hello/node_modules/tiny/package.json",
        r#"{"name":"tiny","version":"1.0.0"}"#,
    );
    let sbom = sbom_of(root.path());
    let json: Value = serde_json::from_slice(&sbom).expect("json");
    let truth = rpm_qa(root.path());
    assert_eq!(truth.len(), 3, "{truth:?}");
    assert_eq!(crate::common::sbom_os_packages(&json, "rpm"), truth);
    let hello = component(&json, "hello-gantry");
    assert_eq!(
        hello["purl"],
        "pkg:rpm/fedora/hello-gantry@1.2.3-4%2Bfix1?arch=noarch&distro=fedora-40&epoch=2&upstream=hello-gantry-1.2.3-4%2Bfix1.src.rpm"
    );
    assert_eq!(
        hello["licenses"],
        serde_json::json!([{"expression": "MIT OR Apache-2.0"}])
    );
    // needs-hello requires the virtual provide hello-gantry has
    let needs = component(&json, "needs-hello")["purl"]
        .as_str()
        .expect("purl")
        .to_owned();
    let deps = json["dependencies"]
        .as_array()
        .expect("deps")
        .iter()
        .find(|d| d["ref"] == needs.as_str())
        .expect("deps of needs-hello");
    assert_eq!(deps["dependsOn"], serde_json::json!([hello["purl"]]));
    // the npm package inside needs-hello is rpm's file: folded into it
    assert!(crate::common::purls(&json).contains("pkg:npm/tiny@1.0.0"));
    assert!(components(&json).all(|c| c["name"] != "tiny"));
    assert!(
        component(&json, "needs-hello")["properties"]
            .as_array()
            .expect("properties")
            .iter()
            .any(|p| p["value"] == "pkg:npm/tiny@1.0.0")
    );
    validate(&sbom);
}

#[test]
fn an_rpm_database_with_a_write_ahead_log_is_read_with_the_log() {
    let root = tempfile::tempdir().expect("tempdir");
    if rpm_root(root.path()).is_none() {
        return;
    }
    let Some(python) = gantry_testkit::require("python3", "apt-get install python3") else {
        return;
    };
    // Erase `gone` in WAL mode and copy the files out before the connection closes (which
    // would checkpoint): the main file still holds `gone`, the log says it is erased.
    let db = root.path().join("usr/lib/sysimage/rpm/rpmdb.sqlite");
    let copy = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "import sqlite3, shutil\nc = sqlite3.connect({db:?})\nc.execute('PRAGMA journal_mode=WAL')\nc.execute('PRAGMA wal_autocheckpoint=0')\nc.execute(\"DELETE FROM Packages WHERE hnum IN (SELECT hnum FROM Name WHERE key = 'gone')\")\nc.commit()\nshutil.copy({db:?}, {out:?})\nshutil.copy({db:?} + '-wal', {out:?} + '-wal')\n",
        db = db.display().to_string(),
        out = copy.path().join("rpmdb.sqlite").display().to_string(),
    );
    let status = Command::new(python)
        .args(["-c", &script])
        .status()
        .expect("python");
    assert!(status.success());
    let wal = std::fs::metadata(copy.path().join("rpmdb.sqlite-wal"))
        .expect("wal")
        .len();
    assert!(wal > 0, "the log holds the erase");
    let image = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(image.path().join("usr/lib/sysimage/rpm")).expect("mkdir");
    for name in ["rpmdb.sqlite", "rpmdb.sqlite-wal"] {
        std::fs::copy(
            copy.path().join(name),
            image.path().join("usr/lib/sysimage/rpm").join(name),
        )
        .expect("copy");
    }
    let json: Value = serde_json::from_slice(&sbom_of(image.path())).expect("json");
    let names: BTreeSet<&str> = components(&json)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        names.contains("hello-gantry") && names.contains("needs-hello"),
        "{names:?}"
    );
    assert!(!names.contains("gone"), "erased in the log: {names:?}");
}

#[test]
fn a_berkeley_db_rpm_database_is_refused_not_skipped() {
    let root = tempfile::tempdir().expect("tempdir");
    write(
        root.path(),
        "var/lib/rpm/Packages",
        "\u{0}\u{0}\u{0}\u{0}berkeley",
    );
    let error = gantry_sbom::catalog_rootfs(root.path()).expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains("/var/lib/rpm/Packages") && message.contains("Berkeley DB"),
        "{message}"
    );
}

const APK_DB: &str = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:1\nI:1\nT:the musl c library\nL:MIT\no:musl\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\n\
C:Q1def=\nP:busybox\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\no:busybox\nD:so:libc.musl-x86_64.so.1\nF:bin\nR:busybox\n\n\
C:Q1ghi=\nP:ssl_client\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\no:busybox\nD:so:libc.musl-x86_64.so.1 busybox=1.36.1-r29 !conflicting\nF:usr/bin\nR:ssl_client\n\n";

#[test]
fn apk_packages_are_exactly_what_the_database_lists() {
    let root = tempfile::tempdir().expect("tempdir");
    write(root.path(), "lib/apk/db/installed", APK_DB);
    write(
        root.path(),
        "etc/os-release",
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
    );
    let sbom = sbom_of(root.path());
    let json: Value = serde_json::from_slice(&sbom).expect("json");
    // the database's own view: every P:/V: record
    let truth: BTreeSet<String> = APK_DB
        .split("\n\n")
        .filter_map(|r| {
            let get = |k: &str| r.lines().find_map(|l| l.strip_prefix(k));
            Some(format!("{} {}", get("P:")?, get("V:")?))
        })
        .collect();
    let found: BTreeSet<String> = components(&json)
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:apk/"))
        })
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap_or(""),
                c["version"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(found, truth);
    let busybox = component(&json, "busybox");
    assert_eq!(
        busybox["purl"],
        "pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3"
    );
    let ssl = component(&json, "ssl_client")["purl"]
        .as_str()
        .expect("purl")
        .to_owned();
    assert!(ssl.ends_with("&upstream=busybox"), "{ssl}");
    let deps = json["dependencies"]
        .as_array()
        .expect("deps")
        .iter()
        .find(|d| d["ref"] == ssl.as_str())
        .expect("deps");
    let on: BTreeSet<&str> = deps["dependsOn"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        on,
        BTreeSet::from([
            busybox["purl"].as_str().expect("purl"),
            component(&json, "musl")["purl"].as_str().expect("purl")
        ])
    );
    validate(&sbom);
}

#[test]
fn distroless_status_d_packages_are_components() {
    let root = tempfile::tempdir().expect("tempdir");
    write(
        root.path(),
        "var/lib/dpkg/status.d/base-files",
        "Package: base-files\nVersion: 12.4+deb12u8\nArchitecture: amd64\n",
    );
    write(
        root.path(),
        "var/lib/dpkg/status.d/base-files.md5sums",
        "d41d8cd98f00b204e9800998ecf8427e  etc/debian_version\n",
    );
    write(
        root.path(),
        "var/lib/dpkg/status.d/libc6",
        "Package: libc6\nVersion: 2.36-9+deb12u9\nArchitecture: amd64\nSource: glibc\nDepends: libgcc-s1\n",
    );
    write(
        root.path(),
        "var/lib/dpkg/status.d/libgcc-s1",
        "Package: libgcc-s1\nVersion: 12.2.0-14\nArchitecture: amd64\nSource: gcc-12 (12.2.0-14)\n",
    );
    write(
        root.path(),
        "usr/lib/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Distroless\"\n",
    );
    std::os::unix::fs::symlink("../usr/lib/os-release", root.path().join("etc/os-release"))
        .unwrap_or_else(|_| {
            std::fs::create_dir_all(root.path().join("etc")).expect("etc");
            std::os::unix::fs::symlink("../usr/lib/os-release", root.path().join("etc/os-release"))
                .expect("symlink");
        });
    let sbom = sbom_of(root.path());
    let json: Value = serde_json::from_slice(&sbom).expect("json");
    let names: BTreeSet<&str> = components(&json)
        .filter(|c| c["type"] == "library")
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["base-files", "libc6", "libgcc-s1"]));
    assert_eq!(
        component(&json, "libc6")["purl"],
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12&upstream=glibc"
    );
    assert_eq!(
        component(&json, "libgcc-s1")["purl"],
        "pkg:deb/debian/libgcc-s1@12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12%4012.2.0-14"
    );
    validate(&sbom);
}
