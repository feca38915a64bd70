//! SIGINT and SIGTERM as one stream: the runner sends SIGINT on a cancel and SIGTERM 7.5 s later,
//! then kills the step. In a container action gantry is PID 1, where a signal without a handler is
//! ignored: a tool that must end cleanly installs these before its first change.

/// Both signals, handled from the moment this is built.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal's name (`SIGINT` or `SIGTERM`).
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
