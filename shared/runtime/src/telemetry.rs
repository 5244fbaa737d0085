//! OpenTelemetry traces. Off by default; when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (for example
//! `http://localhost:4318`, or `--otlp-endpoint`), [`Telemetry::to_otlp`] builds an OTLP/HTTP
//! exporter (protobuf, `<endpoint>/v1/traces`) behind a batch processor,
//! and its [`Telemetry::layer`] turns `tracing` spans into OpenTelemetry
//! spans. What makes the spans of one order one trace is in
//! `udders_messaging::trace`: a trace starts at the HTTP request
//! ([`trace_request`]), each handler run continues the trace of the record
//! it handles, and each relay send the trace of the row it sends.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing::Instrument as _;
use tracing_subscriber::registry::LookupSpan;

/// The exporter and its provider; flushes what is left when shut down.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

impl Telemetry {
    /// Traces for `service_name` (unless `OTEL_SERVICE_NAME` names it) to
    /// an OTLP/HTTP `endpoint` (`http://localhost:4318`: spans go to its
    /// `/v1/traces`).
    pub fn to_otlp(endpoint: &str, service_name: &str) -> Result<Telemetry, String> {
        let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        Self::to_endpoint(&traces, service_name)
    }

    /// Traces to the OTLP/HTTP traces URL `traces` (`…/v1/traces`).
    pub fn to_endpoint(traces: &str, service_name: &str) -> Result<Telemetry, String> {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(traces)
            .build()
            .map_err(|e| format!("the OTLP exporter for {traces}: {e}"))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(service_name.to_owned());
        }
        let provider =
            SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
        let tracer = provider.tracer("udders");
        udders_messaging::trace::enable();
        Ok(Telemetry { provider, tracer })
    }

    /// The `tracing` layer that records spans into this exporter.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, Tracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    /// Sends the spans that ended and wait in the batch.
    pub fn flush(&self) {
        if let Err(error) = self.provider.force_flush() {
            tracing::warn!(%error, "flushing the traces");
        }
    }

    /// Flushes, then stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "stopping the trace exporter");
        }
    }
}

/// Middleware: one span per HTTP request, named by its method and route. It
/// continues the trace of the `traceparent` the client sent, or starts one;
/// what the request records carries it on (`Cause::new_saga`).
pub async fn trace_request(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if !udders_messaging::trace::enabled() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| request.uri().path().to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", otel.name = %format!("{} {route}", request.method()),
        otel.kind = "server", http.request.method = %request.method(), http.route = %route,
        http.response.status_code = tracing::field::Empty);
    let sent = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
    udders_messaging::trace::continue_trace(&span, sent);
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}
