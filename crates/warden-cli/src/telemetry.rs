//! Logs on stderr, and traces over OTLP/HTTP when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set: a task, its steps, each policy decision and each sandboxed call
//! as spans, with verdicts, reasons and the bundle hash as attributes.
//! Arguments, attachments and secret values are never span attributes.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Flushes the trace exporter when dropped (at the end of `main`).
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: flushing traces failed: {e}");
        }
    }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// Install the subscriber: `default` is the stderr log level unless
/// `WARDEN_LOG` says otherwise.
pub fn init(default: &str) -> Telemetry {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .with_filter(filter);
    let provider = if otlp_configured() {
        match exporter() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("warning: traces are off: the OTLP exporter failed to start: {e}");
                None
            }
        }
    } else {
        None
    };
    let otel = provider.as_ref().map(|p| {
        // Spans of warden's own crates, whatever the log level on stderr.
        let targets = Targets::new()
            .with_target("warden_agent", tracing::Level::INFO)
            .with_target("warden_policy", tracing::Level::INFO)
            .with_target("warden_sandbox", tracing::Level::INFO)
            .with_target("warden_serve", tracing::Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("warden"))
            .with_filter(targets)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry { provider }
}

fn exporter() -> anyhow::Result<SdkTracerProvider> {
    // The exporter's HTTP client (reqwest, rustls) asks for the process's
    // crypto provider when the endpoint is https.
    warden_tls::install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("warden")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
