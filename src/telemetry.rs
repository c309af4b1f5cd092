//! Log output: `tracing` to stdout, which the Functions host collects.
//!
//! Log lines carry request ids and e-mail domains, never full addresses, names, tokens or
//! keys: the domain types' `Debug` output hides them, and call sites log ids and domains.
//!
//! `RUST_LOG` filters as usual, with one ceiling it cannot lift: crates other than this one
//! log at `info` at most. Below `info` the dependencies dump whole requests — azure_core
//! logs each storage request with its body (a row's `Email` and `DisplayName`) and its
//! `authorization: SharedKey …` header (or a bearer token, or a SAS in the URL), and
//! azure_storage the credentials it signs with — so an operator who turns on `debug` to
//! chase a problem gets this crate's own debug lines and nothing that breaks the privacy
//! promise. The ceiling is an allow-list (this crate, everything else capped) rather than a
//! list of noisy crates, so a dependency added later is capped too; and it is a filter of
//! its own, not directives added to `RUST_LOG`'s, because a directive the operator writes
//! for a longer target (`azure_core::policies::transport=trace`) beats a shorter one.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{LevelFilter, Targets},
    fmt::MakeWriter,
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::settings::LogFormat;

/// The crate whose lines `RUST_LOG` may turn on below [`DEPENDENCY_CEILING`].
const OWN_TARGET: &str = env!("CARGO_CRATE_NAME");

/// The most detail any other crate logs, whatever `RUST_LOG` says.
const DEPENDENCY_CEILING: LevelFilter = LevelFilter::INFO;

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never in files, pipes or the host's log.
    let ansi = std::io::stdout().is_terminal();
    let _ = subscriber(filter, format, ansi, std::io::stdout).try_init();
    tracing::debug!(
        dependencies = %DEPENDENCY_CEILING,
        "debug logging on; dependencies log at this level at most"
    );
}

/// `RUST_LOG`'s filter under the dependency ceiling, writing text or JSON lines to `writer`.
fn subscriber<W>(
    filter: EnvFilter,
    format: LogFormat,
    ansi: bool,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
    };
    // Both filters must let a line through.
    tracing_subscriber::registry()
        .with(lines)
        .with(filter)
        .with(dependency_ceiling())
}

fn dependency_ceiling() -> Targets {
    Targets::new()
        .with_default(DEPENDENCY_CEILING)
        .with_target(OWN_TARGET, LevelFilter::TRACE)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What one line from each kind of source leaves in the log under `rust_log`.
    fn logged(rust_log: &str, format: LogFormat) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(EnvFilter::new(rust_log), format, false, move || {
            writer.clone()
        });
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "azure_core::policies::transport", "azure_core request dump");
            tracing::trace!(target: "azure_storage::authorization::authorization_policy", "azure_storage credentials");
            tracing::trace!(target: "hyper_util::client::legacy::pool", "hyper_util pool");
            tracing::debug!(target: "some_future_dependency", "future dependency dump");
            tracing::info!(target: "azure_core::policies::transport", "azure_core info");
            tracing::warn!(target: "hyper_util::client::legacy::client", "hyper_util warning");
            tracing::debug!("own debug line");
            tracing::trace!(target: "b2b_signup::worker", "own trace line");
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn no_rust_log_value_lifts_dependencies_above_info_and_own_lines_stay_available() {
        let dumps = [
            "azure_core request dump",
            "azure_storage credentials",
            "hyper_util pool",
            "future dependency dump",
        ];
        for rust_log in [
            "debug",
            "trace",
            "azure_core=trace,azure_storage=trace,hyper_util=trace,some_future_dependency=trace",
            "azure_core::policies::transport=trace,azure_storage::authorization=trace",
            "info,azure_core[{url}]=trace",
        ] {
            for format in [LogFormat::Text, LogFormat::Json] {
                let log = logged(rust_log, format);
                for dump in dumps {
                    assert!(!log.contains(dump), "RUST_LOG={rust_log}: {dump}:\n{log}");
                }
            }
        }
        for rust_log in ["debug", "trace"] {
            let log = logged(rust_log, LogFormat::Text);
            assert!(
                log.contains("azure_core info") && log.contains("hyper_util warning"),
                "RUST_LOG={rust_log}: dependencies' info and warnings stay:\n{log}"
            );
        }
        let log = logged("trace", LogFormat::Text);
        assert!(
            log.contains("own debug line") && log.contains("own trace line"),
            "{log}"
        );
        let log = logged("b2b_signup=debug", LogFormat::Json);
        assert!(
            log.contains("own debug line") && !log.contains("own trace line"),
            "{log}"
        );
        let log = logged("info", LogFormat::Text);
        assert!(
            !log.contains("own debug line") && log.contains("azure_core info"),
            "{log}"
        );
        let log = logged("warn", LogFormat::Text);
        assert!(
            !log.contains("azure_core info") && log.contains("hyper_util warning"),
            "{log}"
        );
    }
}
