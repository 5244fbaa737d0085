//! W3C trace context across the broker. A record carries the `traceparent`
//! of the span that recorded it (ADR 0018): the consumer's span for the
//! record continues that trace, and what its handler records carries the
//! consumer's span on. An HTTP request continues the `traceparent` its
//! client sent, or starts a trace.
//!
//! Off unless [`enable`] was called (the binary does when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set): then every function here returns
//! at once, and a record's `traceparent` passes through unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Spans are exported from now on: their context travels with records.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// True once [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes `span` a child of the span `traceparent` names (a record's header,
/// an HTTP request's); without one, `span` starts a trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if !enabled() {
        return;
    }
    let Some(traceparent) = traceparent else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The `traceparent` naming `span`, for what it records to carry on;
/// `None` when tracing is off.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}
