//! The release binary runs in an empty root: no libc, no NSS modules, no shell; only the binary, a
//! CA bundle, `/etc/hosts` and `/etc/resolv.conf`, as in a scratch container image.

use std::path::Path;
use std::process::{Command, Output};

use gantry_testkit::peers::{MockSigstore, SIGNER_IDENTITY};
use gantry_testkit::{
    Auth, FaultyProxy, HttpsServer, Registry, TEST_HOST_NAME, TestCa, stdout_json,
};

struct ScratchRoot {
    dir: tempfile::TempDir,
}

impl ScratchRoot {
    fn new(binary: &Path, ca_bundle: Option<&str>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gantry-scratch-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        std::fs::copy(binary, root.join("gantry")).expect("copy binary");
        std::fs::create_dir_all(root.join("etc/ssl/certs")).expect("mkdir");
        if let Some(pem) = ca_bundle {
            std::fs::write(root.join("etc/ssl/certs/ca-certificates.crt"), pem).expect("ca bundle");
        }
        std::fs::write(
            root.join("etc/hosts"),
            format!("127.0.0.1 localhost {TEST_HOST_NAME}\n"),
        )
        .expect("hosts");
        // Nothing answers DNS here: a name must come from /etc/hosts or not at all.
        std::fs::write(
            root.join("etc/resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        )
        .expect("resolv.conf");
        let entries: Vec<String> = walk(root);
        assert_eq!(
            entries,
            [
                "etc/hosts",
                "etc/resolv.conf",
                if ca_bundle.is_some() {
                    "etc/ssl/certs/ca-certificates.crt"
                } else {
                    ""
                },
                "gantry"
            ]
            .into_iter()
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>(),
            "the root holds nothing else"
        );
        Self { dir }
    }

    /// Runs `/gantry ARGS` with the root as `/`: chroot as root, else a user namespace.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// [`Self::run`] with these variables and no others.
    fn run_with(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let root = self.dir.path();
        let mut command = if is_root() {
            let mut c = Command::new(on_path("chroot"));
            c.arg(root);
            c
        } else {
            let mut c = Command::new(on_path("unshare"));
            c.args(["--user", "--map-root-user", "--root"]).arg(root);
            c
        };
        command
            .arg("/gantry")
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("run /gantry in the scratch root")
    }
}

/// The full path of a host tool: the child's environment is cleared, PATH included.
fn on_path(binary: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{binary} not found on PATH"))
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out.sort();
    out
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn reaches_an_https_registry_by_a_hosts_file_name_with_only_the_bundle() {
    let Some(binary) = crate::dist_binary() else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Tls) else {
        return;
    };
    let url = format!("https://{TEST_HOST_NAME}:{}/v2/", registry.addr().port());

    let root = ScratchRoot::new(&binary, registry.ca_pem());
    let output = root.run(&["doctor", "--url", &url, "--json"]);
    let body = stdout_json(&output);
    assert_eq!(output.status.code(), Some(0), "{body}");
    assert_eq!(body["outputs"]["status"], "200");
    assert_eq!(
        body["outputs"]["remote-address"],
        registry.addr().to_string()
    );
    assert_eq!(
        body["outputs"]["trust-roots"], "system",
        "the bundle in the root was found"
    );

    // Without the CA bundle the same request must fail TLS verification: the trust came from the file.
    let bare = ScratchRoot::new(&binary, None);
    let output = bare.run(&["doctor", "--url", &url, "--json"]);
    let body = stdout_json(&output);
    assert_eq!(output.status.code(), Some(1), "{body}");
    assert!(
        body["failure"]
            .as_str()
            .is_some_and(|f| f.contains("certificate")),
        "{body}"
    );
    assert_eq!(
        body["outputs"]["trust-roots"], "embedded",
        "no bundle: Mozilla's roots, which do not hold the test CA"
    );
}

#[test]
fn reaches_a_plain_http_registry_and_fails_closed_on_unknown_names() {
    let Some(binary) = crate::dist_binary() else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let root = ScratchRoot::new(&binary, None);

    let url = format!("http://{TEST_HOST_NAME}:{}/v2/", registry.addr().port());
    let output = root.run(&["doctor", "--url", &url, "--json"]);
    let body = stdout_json(&output);
    assert_eq!(output.status.code(), Some(0), "{body}");
    assert_eq!(body["outputs"]["status"], "200");
    assert_eq!(
        body["outputs"]["trust-roots"], "embedded",
        "plain HTTP works without any CA bundle"
    );

    let unknown = format!(
        "http://not-in-hosts.gantry.test:{}/v2/",
        registry.addr().port()
    );
    let output = root.run(&["doctor", "--url", &unknown, "--json", "--timeout", "5"]);
    let body = stdout_json(&output);
    assert_eq!(output.status.code(), Some(1), "{body}");
    let failure = body["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("not-in-hosts.gantry.test does not resolve"),
        "{body}"
    );
    assert!(
        !failure.contains("Query {") && failure.matches("not-in-hosts").count() <= 3,
        "the DNS failure is said once, not twice in debug format: {failure}"
    );
}

/// GitHub Actions' OIDC token endpoint: `token` for the runner's bearer and audience `sigstore`.
fn oidc_endpoint(token: String) -> axum::Router {
    axum::Router::new().route(
        "/_apis/token",
        axum::routing::get(
            move |query: axum::extract::RawQuery, headers: axum::http::HeaderMap| {
                let token = token.clone();
                async move {
                    let bearer = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let query = query.0.unwrap_or_default();
                    if bearer != "Bearer runner-request-token"
                        || !query.contains("audience=sigstore")
                    {
                        return (axum::http::StatusCode::FORBIDDEN, "{}".to_owned());
                    }
                    (
                        axum::http::StatusCode::OK,
                        serde_json::json!({ "value": token }).to_string(),
                    )
                }
            },
        ),
    )
}

/// The container action's path for keyless signing, in an empty root with only a CA bundle: the
/// OIDC token request, Fulcio and Rekor all over HTTPS with a test CA, by a name from
/// `/etc/hosts` (Fulcio, Rekor and the timestamp authority are @sigstore/mock's, behind HTTPS).
/// The token request used to build a client of its own, outside gantry-http.
#[test]
fn signs_keyless_in_the_scratch_root_over_https_with_only_the_bundle() {
    let Some(binary) = crate::dist_binary() else {
        return;
    };
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let Some(services) = MockSigstore::start(SIGNER_IDENTITY, "{}") else {
        return;
    };
    let ca = TestCa::new("scratch services CA").expect("ca");
    let upstream = services
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let sigstore = HttpsServer::start(FaultyProxy::forwarding(upstream).expect("router"), &ca)
        .expect("https sigstore");
    let oidc = HttpsServer::start(oidc_endpoint(services.token.clone()), &ca).expect("https oidc");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let image: gantry_oci::Reference = format!("{}/team/app:v1", registry.host())
        .parse()
        .expect("reference");
    let client = gantry_oci::Client::plain_http(&registry.host()).expect("client");
    let pushed = runtime
        .block_on(client.push_image(
            &image,
            &bytes::Bytes::from_static(b"{}"),
            &[(
                "application/octet-stream",
                &bytes::Bytes::from_static(b"scratch"),
            )],
        ))
        .expect("push");

    let at = |port: u16| format!("https://{TEST_HOST_NAME}:{port}");
    // The mock's own signing config, with every service behind the HTTPS front.
    let config = std::fs::read_to_string(&services.signing_config)
        .expect("signing config")
        .replace(
            services.url.trim_end_matches('/'),
            &at(sigstore.addr().port()),
        );
    let root = ScratchRoot::new(&binary, Some(&ca.cert_pem()));
    std::fs::write(root.dir.path().join("github_output"), "").expect("output file");
    std::fs::write(root.dir.path().join("signing_config.json"), config).expect("config");
    let registry_host = format!("{TEST_HOST_NAME}:{}", registry.addr().port());
    let output = root.run_with(
        &["sign-image", "--action"],
        &[
            ("INPUT_IMAGE", format!("{registry_host}/team/app:v1")),
            ("INPUT_INSECURE-REGISTRY", registry_host.clone()),
            ("INPUT_SIGNING-CONFIG", "/signing_config.json".to_owned()),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/_apis/token?api-version=2.0", at(oidc.addr().port())),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                "runner-request-token".to_owned(),
            ),
            ("GITHUB_ACTIONS", "true".to_owned()),
            ("GITHUB_OUTPUT", "/github_output".to_owned()),
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{said}");
    let outputs = gantry_actions::files::parse_outputs(
        &std::fs::read_to_string(root.dir.path().join("github_output")).expect("outputs"),
    )
    .expect("well-formed outputs");
    assert_eq!(outputs["digest"], pushed.digest.as_str(), "{outputs:?}");

    // What was signed in the scratch root verifies for the job's identity, outside it.
    let verified = Command::new(&binary)
        .args(["verify-image", "--json", "--image"])
        .arg(image.with_digest(pushed.digest.clone()).to_string())
        .args(["--certificate-identity", SIGNER_IDENTITY, "--trusted-root"])
        .arg(&services.trusted_root)
        .output()
        .expect("verify");
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}
