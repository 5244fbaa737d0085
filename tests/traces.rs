//! One order, one trace: with an OTLP/HTTP endpoint set, `POST /orders`
//! starts a trace (or continues the client's `traceparent`), every handler
//! run continues it across the broker, and the spans reach the endpoint.
//! The endpoint is an in-process OTLP receiver that decodes what it gets
//! with the OpenTelemetry protocol's own message types.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use tracing_subscriber::layer::SubscriberExt as _;
use udders_e2e::*;

/// One span as received: its trace, its id, its parent, its name and the
/// service it was recorded in (`udders.service`, set on handler runs).
#[derive(Debug, Clone)]
struct Received {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    service: Option<String>,
}

/// Starts the receiver: `POST /v1/traces` with a protobuf body.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP ExportTraceServiceRequest");
                let mut kept = kept.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let service = span.attributes.iter().find(|a| a.key == "udders.service").and_then(|a| {
                                match a.value.as_ref()?.value.as_ref()? {
                                    AnyValue::StringValue(s) => Some(s.clone()),
                                    _ => None,
                                }
                            });
                            kept.push(Received {
                                trace_id: hex(&span.trace_id),
                                span_id: hex(&span.span_id),
                                parent: hex(&span.parent_span_id),
                                name: span.name.clone(),
                                service,
                            });
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_order_is_one_trace_with_spans_from_all_six_services() {
    let (url, spans) = receiver().await;
    let telemetry = udders_runtime::telemetry::Telemetry::to_endpoint(&url, "udders-test").expect("the exporter");
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("udders=info,udders_e2e=info,warn"))
        .with(telemetry.layer());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test process");
    let t = start().await;

    // A client that sends its own trace: the order continues it.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = t
        .client
        .post(format!("{}/orders", t.base))
        .header("traceparent", format!("00-{client_trace}-00f067aa0ba902b7-01"))
        .json(&happy_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<serde_json::Value>().await.unwrap()["order_id"].as_str().unwrap().to_owned();
    assert_eq!(t.wait_terminal(&id).await["status"], "COMPLETED");
    // And one without: a trace of its own starts at POST /orders.
    let (_, other) = t.post("/orders", &an_order("vanilla", 1, "cust-trace", "tok_visa", Some("018956"))).await;
    let other = other["order_id"].as_str().unwrap().to_owned();
    t.wait_terminal(&other).await;

    let six: BTreeSet<String> =
        ["order", "validation", "credit", "inventory", "payment", "fulfillment"].map(String::from).into();
    let mut by_trace: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for _ in 0..100 {
        telemetry.flush();
        by_trace.clear();
        for span in spans.lock().unwrap().iter() {
            by_trace.entry(span.trace_id.clone()).or_default().push(span.clone());
        }
        let services = |trace: &str| -> BTreeSet<String> {
            by_trace.get(trace).into_iter().flatten().filter_map(|s| s.service.clone()).collect()
        };
        if services(client_trace).is_superset(&six) && by_trace.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let order_trace =
        by_trace.get(client_trace).unwrap_or_else(|| panic!("no span in the client's trace: {by_trace:#?}"));
    let services: BTreeSet<String> = order_trace.iter().filter_map(|s| s.service.clone()).collect();
    assert!(services.is_superset(&six), "the order's trace has spans from {services:?}, not all six");
    let names: BTreeSet<&str> = order_trace.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains("POST /orders"), "the request is a span of the trace: {names:?}");
    assert!(names.contains("credit handles order/valid"), "{names:?}");
    assert!(names.contains("fulfillment handles payment/captured"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("send order/shipped/")), "relay sends are spans: {names:?}");
    // Every span but the request's has its parent in the same trace: the
    // trace is one tree, carried across the broker.
    let ids: BTreeSet<&str> = order_trace.iter().map(|s| s.span_id.as_str()).collect();
    let request = order_trace.iter().find(|s| s.name == "POST /orders").unwrap();
    assert_eq!(request.parent, "00f067aa0ba902b7", "the request continues the client's span");
    for span in order_trace.iter().filter(|s| s.name != "POST /orders") {
        assert!(ids.contains(span.parent.as_str()), "{} has its parent {} outside the trace", span.name, span.parent);
    }
    // The other order started its own trace, with nothing of the first.
    let own = by_trace
        .iter()
        .find(|(trace, spans)| trace.as_str() != client_trace && spans.iter().any(|s| s.name == "POST /orders"));
    let (_, own) = own.expect("the second order has a trace of its own");
    let own_services: BTreeSet<String> = own.iter().filter_map(|s| s.service.clone()).collect();
    assert!(own_services.is_superset(&six), "{own_services:?}");
    t.stop().await;
    telemetry.shutdown();
}
