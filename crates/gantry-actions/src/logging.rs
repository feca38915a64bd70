//! `tracing` to stderr; in action mode warnings and errors also become annotations.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::commands::{Annotation, Commands, Level as AnnotationLevel};
use crate::env;
use crate::tool::Mode;

/// Installs the global subscriber: `RUST_LOG` wins, else `debug` with `RUNNER_DEBUG=1`, else `info`.
pub fn init(mode: Mode) {
    let filter = std::env::var(env::RUST_LOG)
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| {
            let debug = std::env::var(env::RUNNER_DEBUG).is_ok_and(|v| v == "1");
            EnvFilter::new(if debug { "debug" } else { "info" })
        });
    let ansi = mode == Mode::Cli && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(crate::output::SafeStderr)
        .with_target(false)
        .without_time()
        .with_ansi(ansi);
    let annotations = (mode == Mode::Action).then_some(AnnotationLayer);
    // A second init (tests, a library caller) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(annotations)
        .try_init();
}

struct AnnotationLayer;

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for AnnotationLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let level = match *event.metadata().level() {
            Level::ERROR => AnnotationLevel::Error,
            Level::WARN => AnnotationLevel::Warning,
            _ => return,
        };
        let mut message = Message::default();
        event.record(&mut message);
        Commands::annotate(&Annotation::new(level, message.0));
    }
}
