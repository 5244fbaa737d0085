//! What the console reads and does, end to end through HTTP and Kafka:
//! durable dead letters and their replay, the stuck-order finder, the live
//! feed, and who may act (operator token, POS API keys).

use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use udders_contracts::Service;
use udders_e2e::*;
use udders_eventstore::{ConsumerPosition, NewDeadLetter};

const TOKEN: &str = "test-operator-token";

async fn start_console() -> TestSystem {
    start_with(|c| c.operator_token = Some(TOKEN.into())).await
}

/// Produces one record straight onto `topic`, as a broken publisher would.
async fn produce(t: &TestSystem, topic: &str, key: &str, headers: &[(&str, &str)], value: &[u8]) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", t.system.broker_addr.to_string())
        .create()
        .expect("a producer");
    let mut owned = OwnedHeaders::new();
    for (key, value) in headers {
        owned = owned.insert(Header { key, value: Some(*value) });
    }
    let record = FutureRecord::to(topic).key(key).payload(value).headers(owned);
    producer.send(record, Duration::from_secs(10)).await.expect("the broker takes the record");
}

fn order_init_headers(id: &str, correlation: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ce_id", id.to_owned()),
        ("ce_source", "/udders/order".into()),
        ("ce_type", "udders.order.init".into()),
        ("ce_subject", "order/init/1.1/icecream/udders/mango/sg/web".into()),
        ("ce_time", "2026-12-01T10:00:00Z".into()),
        ("ce_specversion", "1.0".into()),
        ("content-type", "application/json".into()),
        ("correlationid", correlation.to_owned()),
        ("sequence", "1".into()),
    ]
}

async fn dead_letters(t: &TestSystem, query: &str) -> Vec<Value> {
    let (status, body) = t.get(&format!("/dead-letters{query}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

async fn post_as(t: &TestSystem, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = t.client.post(format!("{}{path}", t.base)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_record_is_parked_with_its_reason_survives_a_restart_and_a_later_order_completes() {
    let t = start_console().await;
    let headers = order_init_headers("0190a0a0-0000-7000-8000-000000000001", "0190a0a0-0000-7000-8000-000000000002");
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let posted = Instant::now();
    produce(&t, Service::Order.topic(), "broken-order", &pairs, b"not json").await;
    // Validation (order/init/>) and the order service (**) both give up on it.
    let mut parked = Vec::new();
    while posted.elapsed() < Duration::from_secs(5) {
        parked = dead_letters(&t, "?service=validation").await;
        if !parked.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(parked.len(), 1, "listed within 5 s: {parked:#?}");
    let letter = &parked[0];
    assert_eq!((letter["status"].as_str(), letter["order_id"].as_str()), (Some("parked"), Some("broken-order")));
    assert!(letter["reason"].as_str().unwrap().contains("not JSON"), "{letter:#}");
    assert_eq!((letter["topic"].as_str(), letter["attempts"].as_u64()), (Some("udders.order"), Some(0)));
    assert_eq!(letter["subject"], "order/init/1.1/icecream/udders/mango/sg/web");
    assert_eq!(letter["payload"], "not json");
    // The partition moved on: a later order completes.
    let id = t.place(&happy_order()).await;
    assert_eq!(t.wait_terminal(&id).await["status"], "COMPLETED");
    // The dead letters live in the services' databases: a restart with an
    // empty broker keeps them.
    let dir = t.stop_keeping_data().await;
    let t = start_in(dir, |c| c.operator_token = Some(TOKEN.into())).await;
    let after = dead_letters(&t, "?status=parked").await;
    let services: Vec<&str> = after.iter().map(|l| l["service"].as_str().unwrap()).collect();
    assert!(services.contains(&"validation") && services.contains(&"order"), "{after:#?}");
    assert_eq!(after.iter().find(|l| l["service"] == "validation").unwrap()["id"], letter["id"]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_needs_the_operator_token_and_goes_through_the_handler_and_its_inbox() {
    let t = start_console().await;
    // A handled order's order/init, parked in validation as if it had failed there.
    let id = t.place(&happy_order()).await;
    let order = t.wait_terminal(&id).await;
    let init = &order["timeline"][0];
    let correlation = order["correlation_id"].as_str().unwrap();
    let mut handled = order_init_headers(init["event_id"].as_str().unwrap(), correlation);
    handled[4].1 = init["time"].as_str().unwrap().to_owned();
    // A fresh order's order/init that validation never saw (a quantity of
    // 0: it ends there, invalid, and nobody holds anything for it).
    let fresh_id = "0190a0a0-0000-7000-8000-00000000f00d";
    let fresh = order_init_headers("0190a0a0-0000-7000-8000-00000000beef", correlation);
    let mut fresh_payload = init["payload"].clone();
    fresh_payload["order_id"] = json!(fresh_id);
    fresh_payload["items"][0]["quantity"] = json!(0);
    let validation = &t.system.stores[&Service::Validation];
    let mut ids = Vec::new();
    for (key, headers, payload) in [(&id, handled, &init["payload"]), (&fresh_id.to_owned(), fresh, &fresh_payload)] {
        let letter = NewDeadLetter {
            consumer: "validation".into(),
            topic: "udders.order".into(),
            partition: 0,
            offset: 0,
            subject: Some("order/init/1.1/icecream/udders/mango/sg/web".into()),
            key: Some(key.clone()),
            reason: "handler failed: the database was away".into(),
            attempts: 5,
            first_failed_at: udders_runtime::clock::now(),
            last_failed_at: udders_runtime::clock::now(),
            headers: headers.into_iter().map(|(k, v)| (k.to_owned(), Some(v))).collect(),
            payload: Some(serde_json::to_vec(payload).unwrap()),
        };
        // The position saved with it is the current one: nothing is skipped.
        let position: ConsumerPosition = validation.positions("validation").await.unwrap().remove(0);
        ids.push(format!("validation-{}", validation.park_dead_letter(&letter, &position).await.unwrap()));
    }
    let timeline_before = t.order(&id).await["timeline"].as_array().unwrap().len();

    // Without the token: 401, problem+json, nothing changes.
    for token in [None, Some("wrong")] {
        let (status, problem) = post_as(&t, &format!("/dead-letters/{}/replay", ids[0]), token, &json!({})).await;
        assert_eq!((status, problem["status"].as_u64()), (401, Some(401)), "{problem}");
    }
    let (status, _) = post_as(&t, "/dead-letters/replay?service=validation", None, &json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(dead_letters(&t, "?status=parked&service=validation").await.len(), 2);

    // With it: the handled one is a duplicate to the inbox and changes nothing.
    let (status, answer) = post_as(&t, &format!("/dead-letters/{}/replay", ids[0]), Some(TOKEN), &json!({})).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("duplicate")), "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.order(&id).await["timeline"].as_array().unwrap().len(), timeline_before);
    // The fresh one is handled: validation decides on it.
    let (status, answer) = post_as(&t, &format!("/dead-letters/{}/replay", ids[1]), Some(TOKEN), &json!({})).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("handled")), "{answer}");
    // Replayed means resolved: a second replay is a conflict.
    let (status, _) = post_as(&t, &format!("/dead-letters/{}/replay", ids[1]), Some(TOKEN), &json!({})).await;
    assert_eq!(status, 409);
    let all = dead_letters(&t, "?service=validation").await;
    assert!(all.iter().all(|l| l["status"] == "replayed"), "{all:#?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_that_fails_again_stays_parked_and_a_discard_keeps_it_with_its_note() {
    let t = start_console().await;
    let headers = order_init_headers("0190a0a0-0000-7000-8000-000000000003", "0190a0a0-0000-7000-8000-000000000004");
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // JSON, but not an order: the handler refuses it for good.
    produce(&t, Service::Order.topic(), "half-order", &pairs, br#"{"order_id":"half-order"}"#).await;
    let mut parked = Vec::new();
    for _ in 0..100 {
        parked = dead_letters(&t, "?service=validation&status=parked").await;
        if !parked.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let letter = parked.first().unwrap_or_else(|| panic!("parked: {parked:#?}")).clone();
    assert!(letter["reason"].as_str().unwrap().contains("handler failed"), "{letter:#}");
    let attempts = letter["attempts"].as_u64().unwrap();
    assert!(attempts >= 1);
    let id = letter["id"].as_str().unwrap();
    let (status, problem) = post_as(&t, &format!("/dead-letters/{id}/replay"), Some(TOKEN), &json!({})).await;
    assert_eq!(status, 422, "{problem}");
    let again = dead_letters(&t, "?service=validation").await;
    assert_eq!((again[0]["status"].as_str(), again[0]["attempts"].as_u64()), (Some("parked"), Some(attempts + 1)));
    // The order page shows where it is parked.
    let (_, order) = t.get("/orders/half-order").await;
    assert_eq!(order["status"], 404, "not an order the POS placed: {order}");
    let (status, _) = post_as(&t, &format!("/dead-letters/{id}/discard"), Some(TOKEN), &json!({"note": ""})).await;
    assert_eq!(status, 422);
    let (status, _) = post_as(&t, &format!("/dead-letters/{id}/discard"), None, &json!({"note": "test"})).await;
    assert_eq!(status, 401);
    let note = json!({"note": "a test record, not an order"});
    let (status, answer) = post_as(&t, &format!("/dead-letters/{id}/discard"), Some(TOKEN), &note).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("discarded")), "{answer}");
    let kept = dead_letters(&t, "?status=discarded&service=validation").await;
    assert_eq!((kept.len(), kept[0]["note"].as_str()), (1, Some("a test record, not an order")));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_waiting_on_a_stopped_service_is_listed_as_stuck_on_it() {
    let t = start_with(|c| c.stopped = vec![Service::Payment]).await;
    let id = t.place(&happy_order()).await;
    t.wait_status(&id, &["RESERVED"]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, stuck) = t.get("/orders/stuck?older_than=1s").await;
    assert_eq!(status, 200, "{stuck}");
    assert_eq!(stuck["total"], 1, "{stuck:#}");
    let group = &stuck["groups"][0];
    assert_eq!((group["waiting_on"].as_str(), group["count"].as_u64()), (Some("payment"), Some(1)), "{stuck:#}");
    assert!(group["oldest_age_ms"].as_i64().unwrap() >= 1000);
    assert_eq!(group["orders"][0]["order_id"].as_str(), Some(id.as_str()));
    let order = t.order(&id).await;
    assert_eq!(order["waiting"]["on"], json!(["payment"]), "{order:#}");
    // A higher threshold finds nothing; a bad one is a problem.
    assert_eq!(t.get("/orders/stuck?older_than=10m").await.1["total"], 0);
    assert_eq!(t.get("/orders/stuck?older_than=soon").await.0, 400);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_live_feed_streams_the_events_of_a_pattern_as_they_commit() {
    let t = start().await;
    let response = t
        .client
        .get(format!("{}/live", t.base))
        .query(&[("pattern", "order/shipped/>")])
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let id = t.place(&happy_order()).await;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text.contains(&id) {
        let chunk = tokio::time::timeout_at(deadline.into(), body.next()).await.expect("the event arrives in time");
        text.push_str(&String::from_utf8_lossy(&chunk.expect("more").expect("a chunk")));
    }
    assert!(text.contains("order/shipped/1.0/") && !text.contains("order/init/"), "{text}");
    assert_eq!(t.get("/live?pattern=order/>>").await.0, 400);
    let (_, summary) = t.get("/console/summary").await;
    assert_eq!(summary["by_status"]["COMPLETED"], 1, "{summary}");
    assert!(summary["p99_ms"].as_f64().is_some(), "{summary}");
    let (status, page) = t.get_text("/").await;
    assert!(status == 200 && page.contains("<html"), "{status}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_api_keys_set_the_pos_needs_one_and_a_refused_request_writes_nothing() {
    let t = start_with(|c| c.api_keys = vec!["pos-key-1".into(), "pos-key-2".into()]).await;
    for token in [None, Some("nope")] {
        let (status, problem) = post_as(&t, "/orders", token, &happy_order()).await;
        assert_eq!((status, problem["status"].as_u64()), (401, Some(401)), "{problem}");
    }
    assert_eq!(t.get("/orders/stats").await.1["total"], 0);
    let (status, accepted) = post_as(&t, "/orders", Some("pos-key-2"), &happy_order()).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["order_id"].as_str().unwrap();
    let (status, _) = post_as(&t, &format!("/orders/{id}/cancel"), None, &json!({})).await;
    assert_eq!(status, 401);
    // Reads stay open.
    assert_eq!(t.get(&format!("/orders/{id}")).await.0, 200);
    assert_eq!(t.get("/console/access").await.1["api_keys_required"], true);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_error_the_http_layer_answers_is_a_problem() {
    let t = start().await;
    let big = "x".repeat(70 * 1024);
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (t.client.get(format!("{}/no/such/path", t.base)), 404),
        (t.client.delete(format!("{}/orders", t.base)), 405),
        (t.client.put(format!("{}/orders/stats", t.base)), 405),
        (t.client.get(format!("{}/orders?limit=-1", t.base)), 400),
        (t.client.get(format!("{}/orders?limit=many", t.base)), 400),
        (t.client.get(format!("{}/dead-letters?limit=0x10", t.base)), 400),
        (t.client.get(format!("{}/orders/stuck?older_than=5h", t.base)), 400),
        (t.client.get(format!("{}/live?pattern=a/>/b", t.base)), 400),
        (t.client.post(format!("{}/orders", t.base)).header("content-type", "application/json").body(big), 413),
        (t.client.post(format!("{}/orders", t.base)).body("{}"), 415),
        (t.client.post(format!("{}/dead-letters/credit-1/replay", t.base)), 401),
    ];
    for (request, expected) in cases {
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{body}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{status} {body}");
        assert_eq!(body["status"].as_u64(), Some(u64::from(expected)), "{body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    }
    assert_eq!(t.get("/orders/stats").await.1["total"], 0, "nothing was accepted");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_capacity_the_pos_refuses_with_503_and_retry_after_and_writes_nothing() {
    // Validation stopped: nothing drains, so the backlog only grows. An
    // order may wait 3 s: at the floor rate of 100/s that is 300 open orders.
    let mut t = start_with(|c| {
        c.stopped = vec![Service::Validation];
        c.deadline = Duration::from_secs(9);
        c.admission_wait = Some(Duration::from_secs(3));
    })
    .await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for chunk in 0..8 {
        let posts: Vec<_> = (0..50)
            .map(|i| {
                let client = t.client.clone();
                let url = format!("{}/orders", t.base);
                let body = an_order("mango", 1, &format!("cust-door-{chunk}-{i}"), "tok_visa", None);
                tokio::spawn(async move { client.post(url).json(&body).send().await.expect("answered") })
            })
            .collect();
        for post in posts {
            let response = post.await.unwrap();
            match response.status().as_u16() {
                202 => accepted.push(response.json::<Value>().await.unwrap()["order_id"].as_str().unwrap().to_owned()),
                503 => {
                    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                    assert!((1..=60).contains(&retry), "{retry}");
                    assert_eq!(response.headers()["content-type"], "application/problem+json");
                    let problem: Value = response.json().await.unwrap();
                    let detail = problem["detail"].as_str().unwrap();
                    assert!(detail.contains("capacity") && detail.contains("admission wait of 3.0 s"), "{problem}");
                    refused += 1;
                }
                other => panic!("unexpected {other}"),
            }
        }
        // Let the door's reading catch up with what was placed.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(refused > 0, "400 orders against a bound of about 300 open ones: some are refused");
    assert!(accepted.len() >= 250, "{} accepted", accepted.len());
    assert_eq!(t.get("/orders/stats").await.1["total"], accepted.len(), "a refused order writes nothing");
    t.system.start_service(Service::Validation).expect("validation starts");
    for id in &accepted {
        t.wait_terminal(id).await;
    }
    t.assert_invariants().await;
    t.stop().await;
}
