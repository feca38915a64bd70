//! `gantry doctor`: can this binary, where it runs, reach a URL?
//!
//! A scratch container has no NSS modules, no shell and whatever CA bundle was put in it. This tool
//! answers the questions that fail first there: does the name resolve (through `/etc/hosts` and
//! `/etc/resolv.conf`, without glibc), does TLS verify against the bundle, does the server answer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use gantry_actions::{Branding, Context, Outcome, OutputSpec, Tool, ToolSpec};
use gantry_http::RootSource;

/// Check that gantry can resolve, connect to and get an HTTP answer from a URL.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The URL to request, such as `https://ghcr.io/v2/`.
    #[arg(long, required = true)]
    pub url: String,

    /// A PEM file of extra CA certificates to trust, besides the system bundle.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
}

/// The doctor tool.
pub struct Doctor;

impl Tool for Doctor {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "doctor",
        description: "Check that gantry can resolve, connect to and get an HTTP answer from a URL.",
        branding: Branding {
            icon: "activity",
            color: "blue",
        },
        outputs: &[
            OutputSpec {
                name: "status",
                description: "HTTP status code of the answer.",
            },
            OutputSpec {
                name: "remote-address",
                description: "Address the connection went to.",
            },
            OutputSpec {
                name: "http-version",
                description: "HTTP version of the answer.",
            },
            OutputSpec {
                name: "trust-roots",
                description: "`system` (the CA bundle found on the machine) or `embedded` (none found: Mozilla's roots built in).",
            },
        ],
        secret_inputs: &[],
        action_defaults: &[],
        publish_action: false,
    };

    async fn run(args: Args, _ctx: &Context) -> anyhow::Result<Outcome> {
        let url = reqwest::Url::parse(&args.url)
            .with_context(|| format!("--url {:?} is not an absolute URL", args.url))?;
        let extra: Vec<PathBuf> = args.ca_file.into_iter().collect();
        let roots = gantry_http::roots(&extra)?;
        let trust = match roots.source {
            RootSource::System => "system",
            RootSource::Embedded => "embedded",
        };
        let client = gantry_http::client(&roots, Duration::from_secs(args.timeout))?;
        let started = Instant::now();
        let response = match client.get(url.clone()).send().await {
            Ok(response) => response,
            Err(error) => {
                let why = gantry_http::explain(&error);
                return Ok(Outcome::failed(format!("could not reach {url}: {why}"))
                    .output("trust-roots", trust));
            }
        };
        let elapsed = started.elapsed();
        let status = response.status().as_u16().to_string();
        let address = response
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let version = format!("{:?}", response.version());
        tracing::info!(
            "{url} answered {status} from {address} in {} ms",
            elapsed.as_millis()
        );
        Ok(Outcome::success()
            .output("status", status.clone())
            .output("remote-address", address.clone())
            .output("http-version", version)
            .output("trust-roots", trust)
            .summary(format!(
                "## gantry doctor\n\n| URL | status | address | time |\n|---|---|---|---|\n| {url} | {status} | {address} | {} ms |\n",
                elapsed.as_millis()
            )))
    }
}
