//! Log events to standard output, as readable text or one JSON object a line.

/// How log events are written (to standard output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line an event.
    Text,
    /// One JSON object an event, fields at the top level.
    Json,
}

/// Sends log events to standard output, at debug level when `verbose`. A second call does
/// nothing.
pub fn init(verbose: bool, format: LogFormat) {
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
