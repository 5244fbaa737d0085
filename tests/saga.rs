//! The saga end to end: through HTTP and Kafka against the whole system in
//! one process. Every test checks the invariants of `src/invariants.rs` at
//! its end.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use udders_contracts::Service;
use udders_e2e::*;

fn sources(order: &Value) -> BTreeSet<String> {
    order["timeline"].as_array().unwrap().iter().map(|e| e["source"].as_str().unwrap().to_owned()).collect()
}

fn subjects(order: &Value) -> Vec<String> {
    order["timeline"].as_array().unwrap().iter().map(|e| e["subject"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_happy_order_completes_with_a_timeline_from_all_six_services() {
    let t = start().await;
    let (status, accepted) = t.post("/orders", &happy_order()).await;
    assert_eq!((status, &accepted["status"]), (202, &json!("PLACED")), "{accepted}");
    let id = accepted["order_id"].as_str().unwrap();
    // The timeline follows the order to its end: wait for the shipment in it.
    let order = t.wait_terminal(id).await;
    assert_eq!(order["status"], "COMPLETED", "{order:#}");
    assert_eq!((order["total"].as_i64(), &order["reason"]), (Some(1200), &Value::Null));
    // Notification and insights only listen: the six of the saga publish
    // (validation-us only for 1.2 orders from the US).
    let saga = Service::ALL.iter().filter(|s| !s.is_listener() && s.publishes_as() == **s);
    let expected: BTreeSet<String> = saga.map(|s| format!("/udders/{s}")).collect();
    for _ in 0..100 {
        if sources(&t.order(id).await) == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let order = t.order(id).await;
    assert_eq!(sources(&order), expected, "{:#?}", subjects(&order));
    let subjects = subjects(&order);
    assert_eq!(subjects.first().map(String::as_str), Some("order/init/1.1/icecream/udders/mango/sg/web"));
    assert!(subjects.contains(&"order/shipped/1.0/icecream/udders/mango/sg/web".to_owned()), "{subjects:#?}");
    let times: Vec<&str> = order["timeline"].as_array().unwrap().iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");

    let (_, payment) = t.get(&format!("/payments/{id}")).await;
    assert_eq!((payment["status"].as_str(), payment["net_charged"].as_i64()), (Some("CAPTURED"), Some(1200)));
    let (_, shipment) = t.get(&format!("/shipments/{id}")).await;
    assert_eq!(shipment["status"], "SHIPPED");
    // The completed order's hold is settled: the credit comes back.
    let mut credit = Value::Null;
    for _ in 0..100 {
        credit = t.get("/customers/cust-1/credit").await.1;
        if credit["reserved"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((credit["limit"].as_i64(), credit["reserved"].as_i64()), (Some(100_000), Some(0)), "{credit}");
    // Every entry but the first names its cause, an earlier entry.
    let order = t.order(id).await;
    let timeline = order["timeline"].as_array().unwrap();
    let ids: BTreeSet<&str> = timeline.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    for entry in &timeline[1..] {
        let cause = entry["causation_id"].as_str().unwrap_or_default();
        assert!(ids.contains(cause), "{entry:#} is caused by an event outside the timeline");
        assert_eq!(entry["kind"], "step", "{entry:#}");
        assert!(entry["payload"]["order_id"] == *id, "{entry:#}");
    }
    let (_, stock) = t.get("/inventory?flavor=mango&country=sg").await;
    assert_eq!(stock[0]["on_hand"], 998, "{stock}");
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_completed_order_settles_its_credit_so_the_next_one_fits_the_limit() {
    let t = start().await;
    // 100 mango at 600 is 60,000 of the limit of 100,000: two such orders fit
    // one after the other only when the first one's hold is settled.
    for _ in 0..3 {
        let id = t.place(&an_order("mango", 100, "cust-settle", "tok_visa", None)).await;
        let order = t.wait_terminal(&id).await;
        assert_eq!(order["status"], "COMPLETED", "{order:#}");
        let mut credit = Value::Null;
        for _ in 0..200 {
            credit = t.get("/customers/cust-settle/credit").await.1;
            if credit["reserved"] == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!((credit["reserved"].as_i64(), credit["available"].as_i64()), (Some(0), Some(100_000)));
        // The order service hears of the settlement after credit made it.
        let settled = |order: &Value| subjects(order).iter().any(|s| s.starts_with("credit/settled/1.0/"));
        let mut order = t.order(&id).await;
        for _ in 0..200 {
            if settled(&order) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            order = t.order(&id).await;
        }
        assert!(settled(&order), "{:#?}", subjects(&order));
    }
    t.assert_invariants().await;
    t.stop().await;
}

/// Places `body`, waits for the end, and checks it ended `status` with a
/// reason containing `reason`.
async fn ends(t: &TestSystem, body: Value, status: &str, reason: &str) -> Value {
    let id = t.place(&body).await;
    let order = t.wait_terminal(&id).await;
    assert_eq!(order["status"], status, "{order:#}");
    let text = order["reason"].as_str().unwrap_or_default();
    assert!(text.contains(reason), "reason {text:?} should mention {reason:?}");
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_order_is_rejected_and_nothing_is_held() {
    let t = start().await;
    let order = ends(&t, an_order("bubblegum", 1, "cust-2", "tok_visa", None), "REJECTED", "unknown flavour").await;
    ends(&t, an_order("mango", 0, "cust-2", "tok_visa", None), "REJECTED", "outside 1..=100").await;
    let sources = sources(&order);
    assert!(!sources.contains("/udders/credit") && !sources.contains("/udders/inventory"), "{sources:?}");
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credit_rejected_releases_the_reserved_stock() {
    let t = start().await;
    let order = ends(&t, an_order("vanilla", 3, "cust-broke", "tok_visa", None), "REJECTED", "credit").await;
    assert!(subjects(&order).iter().any(|s| s.starts_with("inventory/released/")), "{:#?}", subjects(&order));
    let (_, stock) = t.get("/inventory?flavor=vanilla&country=sg").await;
    assert_eq!((stock[0]["reserved"].as_i64(), stock[0]["on_hand"].as_i64()), (Some(0), Some(1000)));
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inventory_rejected_releases_the_reserved_credit() {
    let t = start().await;
    let order = ends(&t, an_order("durian", 1, "cust-3", "tok_visa", None), "REJECTED", "out of stock").await;
    assert!(subjects(&order).iter().any(|s| s.starts_with("credit/released/")), "{:#?}", subjects(&order));
    let (_, credit) = t.get("/customers/cust-3/credit").await;
    assert_eq!(credit["reserved"], 0);
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_declined_releases_credit_and_stock() {
    let t = start().await;
    let order = ends(&t, an_order("chocolate", 2, "cust-4", "tok_declined", None), "REJECTED", "declined").await;
    let subjects = subjects(&order);
    for released in ["credit/released/", "inventory/released/"] {
        assert!(subjects.iter().any(|s| s.starts_with(released)), "{released}: {subjects:#?}");
    }
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fulfillment_failed_refunds_restocks_and_releases_credit() {
    let t = start().await;
    let order = ends(&t, an_order("rumraisin", 1, "cust-5", "tok_visa", Some("00000")), "REJECTED", "00000").await;
    let id = order["order_id"].as_str().unwrap();
    let (_, payment) = t.get(&format!("/payments/{id}")).await;
    assert_eq!((payment["status"].as_str(), payment["net_charged"].as_i64()), (Some("REFUNDED"), Some(0)));
    let (_, stock) = t.get("/inventory?flavor=rumraisin&country=sg").await;
    assert_eq!((stock[0]["reserved"].as_i64(), stock[0]["on_hand"].as_i64()), (Some(0), Some(1000)));
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_cancel_before_shipping_refunds_and_releases_everything() {
    // Fulfillment is down, so the order waits, paid, for its shipment.
    let t = start_with(|c| c.stopped = vec![Service::Fulfillment]).await;
    let id = t.place(&happy_order()).await;
    t.wait_status(&id, &["PAID"]).await;
    let (status, cancelled) = t.post(&format!("/orders/{id}/cancel"), &json!({})).await;
    assert_eq!((status, &cancelled["status"]), (202, &json!("COMPENSATING")), "{cancelled}");
    let order = t.wait_terminal(&id).await;
    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("CANCELLED"), Some("cancelled by the customer"))
    );
    let (_, payment) = t.get(&format!("/payments/{id}")).await;
    assert_eq!(payment["status"], "REFUNDED");
    let (status, again) = t.post(&format!("/orders/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 409, "{again}");
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_after_shipping_is_refused_with_409() {
    let t = start().await;
    let id = t.place(&happy_order()).await;
    assert_eq!(t.wait_terminal(&id).await["status"], "COMPLETED");
    let response = t.client.post(format!("{}/orders/{id}/cancel", t.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 409);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let (status, _) = t.post("/orders/no-such-order/cancel", &json!({})).await;
    assert_eq!(status, 404);
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deadline_cancels_an_order_stuck_on_a_stopped_service_once_it_answers() {
    let mut t = start_with(|c| {
        c.stopped = vec![Service::Payment];
        c.deadline = Duration::from_secs(4);
    })
    .await;
    let id = t.place(&happy_order()).await;
    t.wait_status(&id, &["RESERVED"]).await;
    // The deadline passes; credit and inventory give back, payment cannot answer yet.
    let order = t.wait_status(&id, &["COMPENSATING"]).await;
    assert_eq!(order["reason"], "the saga deadline passed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.order(&id).await["status"], "COMPENSATING", "CANCELLED only once payment answers");
    // No longer due, yet the stuck finder lists it, waiting on payment.
    let (_, stuck) = t.get("/orders/stuck?older_than=1s").await;
    let group = &stuck["groups"][0];
    assert_eq!((group["waiting_on"].as_str(), group["count"].as_u64()), (Some("payment"), Some(1)), "{stuck:#}");
    assert_eq!(group["orders"][0]["status"], "COMPENSATING", "{stuck:#}");
    // Quiet for a whole deadline, it is counted for UddersCompensationsStuck.
    let quiet = |metrics: &str| {
        metrics.lines().find_map(|l| l.strip_prefix("udders_orders_compensating_quiet ")).map(str::to_owned)
    };
    assert_eq!(quiet(&t.get_text("/metrics").await.1).as_deref(), Some("0"), "changed less than a deadline ago");
    let counted = tokio::time::Instant::now() + Duration::from_secs(15);
    while quiet(&t.get_text("/metrics").await.1).as_deref() != Some("1") {
        assert!(tokio::time::Instant::now() < counted, "{:?}", quiet(&t.get_text("/metrics").await.1));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.system.start_service(Service::Payment).unwrap();
    let order = t.wait_terminal(&id).await;
    assert_eq!(order["status"], "CANCELLED", "{order:#}");
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_posts_with_one_idempotency_key_make_one_order() {
    let t = start().await;
    let body = happy_order();
    let posts = (0..100).map(|_| {
        let (client, url, body) = (t.client.clone(), format!("{}/orders", t.base), body.clone());
        tokio::spawn(async move {
            let r = client.post(url).header("Idempotency-Key", "till-7-receipt-42").json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    });
    let answers: Vec<(u16, Value)> = futures_join(posts).await;
    let ids: BTreeSet<&str> = answers.iter().map(|(_, a)| a["order_id"].as_str().unwrap()).collect();
    assert!(answers.iter().all(|(s, _)| *s == 202), "{answers:?}");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids.into_iter().next().unwrap().to_owned();
    assert_eq!(t.wait_terminal(&id).await["status"], "COMPLETED");
    let (_, stats) = t.get("/orders/stats").await;
    assert_eq!(stats["total"], 1, "{stats}");
    // The same key with another body is refused.
    let mut other = happy_order();
    other["items"][0]["quantity"] = json!(3);
    let r = t
        .client
        .post(format!("{}/orders", t.base))
        .header("Idempotency-Key", "till-7-receipt-42")
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    t.assert_invariants().await;
    t.stop().await;
}

async fn futures_join<T: Send + 'static>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_orders_against_a_stock_of_a_hundred_complete_exactly_a_hundred() {
    let t = start().await;
    // 1,000 vanilla in sg, 10 per order: room for exactly 100 orders.
    let posts = (0..200).map(|i| {
        let (client, url) = (t.client.clone(), format!("{}/orders", t.base));
        let body = an_order("vanilla", 10, &format!("cust-{i}"), "tok_visa", Some("018956"));
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() })
    });
    let ids: Vec<String> =
        futures_join(posts).await.iter().map(|a| a["order_id"].as_str().unwrap().to_owned()).collect();
    let mut completed = 0;
    for id in &ids {
        let order = t.wait_terminal(id).await;
        match order["status"].as_str() {
            Some("COMPLETED") => completed += 1,
            _ => assert!(order["reason"].as_str().unwrap().contains("out of stock"), "{order:#}"),
        }
    }
    assert_eq!(completed, 100);
    let (_, stock) = t.get("/inventory?flavor=vanilla&country=sg").await;
    assert_eq!((stock[0]["on_hand"].as_i64(), stock[0]["shipped"].as_i64()), (Some(0), Some(1000)));
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_1_2_orders_from_the_us_follow_their_own_rule_set() {
    let t = start().await;
    let mut us = an_order("mango", 1, "cust-6", "tok_visa", None);
    us["country"] = json!("us");
    us["schema_version"] = json!("1.2");
    us["items"][0]["size"] = json!("pint");
    let refused = ends(&t, us.clone(), "REJECTED", "five-digit postal code").await;
    // The order's own order/init comes back on another topic than the
    // refusal, so it may join the timeline a moment after REJECTED.
    let refused_id = refused["order_id"].as_str().unwrap().to_owned();
    let mut init = None;
    for _ in 0..200 {
        let order = t.order(&refused_id).await;
        init = order["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["subject"].as_str().unwrap().starts_with("order/init/"))
            .cloned();
        if init.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let init = init.expect("order/init came back");
    assert!(init["subject"].as_str().unwrap().starts_with("order/init/1.2/"), "{init}");
    // Payload 1.2 as published: a SKU and a size per line, money with its currency.
    let line = &init["payload"]["items"][0];
    assert_eq!(
        (&line["sku"], &line["size"], &line["unit_price"]["currency"]),
        (&json!("mango-pint"), &json!("pint"), &json!("USD")),
        "{init}"
    );
    assert_eq!(init["payload"]["total"], json!({"amount": 600, "currency": "USD"}), "{init}");
    us["delivery"]["postal_code"] = json!("94103");
    let us_valid = ends(&t, us.clone(), "COMPLETED", "").await;
    us["schema_version"] = json!("1.1");
    us["delivery"]["postal_code"] = Value::Null;
    let us_1_1 = ends(&t, us, "COMPLETED", "").await;
    let mut sg = an_order("mango", 1, "cust-6", "tok_visa", None);
    sg["schema_version"] = json!("1.2");
    let sg_1_2 = ends(&t, sg, "COMPLETED", "").await;
    // Each order was validated by exactly one deployable: 1.2 from the US by
    // validation-us, with rule set 1.2; the rest by validation, with 1.1.
    let validated_by = |id: Value| {
        let id = id.as_str().unwrap().to_owned();
        let stores = &t.system.stores;
        async move {
            let mut found = Vec::new();
            for service in [Service::Validation, Service::ValidationUs] {
                if let Some(doc) = stores[&service].document("validations", &id).await.unwrap() {
                    found.push((service, doc.doc["rule_set"].as_str().unwrap().to_owned()));
                }
            }
            found
        }
    };
    assert_eq!(validated_by(json!(refused_id)).await, [(Service::ValidationUs, "1.2".to_owned())]);
    assert_eq!(validated_by(us_valid["order_id"].clone()).await, [(Service::ValidationUs, "1.2".to_owned())]);
    assert_eq!(validated_by(us_1_1["order_id"].clone()).await, [(Service::Validation, "1.1".to_owned())]);
    assert_eq!(validated_by(sg_1_2["order_id"].clone()).await, [(Service::Validation, "1.1".to_owned())]);
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_are_problems_and_accept_nothing() {
    let t = start().await;
    let send = |body: &'static str, content_type: &'static str| {
        let (client, url) = (t.client.clone(), format!("{}/orders", t.base));
        async move {
            let r = client.post(url).header("content-type", content_type).body(body).send().await.unwrap();
            let kind = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), kind)
        }
    };
    let problem = Some("application/problem+json".to_owned());
    assert_eq!(send("{not json", "application/json").await, (400, problem.clone()));
    assert_eq!(send(r#"{"customer_id": "c"}"#, "application/json").await, (422, problem.clone()));
    assert_eq!(send("{}", "text/plain").await, (415, problem.clone()));
    let mut bad_country = happy_order();
    bad_country["country"] = json!("s/g");
    assert_eq!(t.post("/orders", &bad_country).await.0, 422);
    let huge = json!({ "customer_id": "c", "channel": "web", "country": "sg", "payment": {"card_token": "t"},
        "items": vec![json!({"flavor": "x".repeat(1000), "quantity": 1}); 100] });
    let (status, _) = t.post("/orders", &huge).await;
    assert_eq!(status, 413);
    let (status, _) = t.get("/no/such/path").await;
    assert_eq!(status, 404);
    assert_eq!(t.get("/orders/unknown").await.0, 404);
    let (_, stats) = t.get("/orders/stats").await;
    assert_eq!(stats["total"], 0, "nothing was accepted: {stats}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_models_rebuilt_by_replay_equal_the_live_ones() {
    let t = start().await;
    let bodies = [
        happy_order(),
        an_order("durian", 1, "cust-7", "tok_visa", None),
        an_order("mango", 1, "cust-broke", "tok_visa", None),
        an_order("vanilla", 2, "cust-7", "tok_declined", None),
        an_order("chocolate", 1, "cust-7", "tok_visa", Some("00000")),
        an_order("nope", 1, "cust-7", "tok_visa", None),
        // Payload 1.2 from the US: validation-us validates it.
        {
            let mut us = an_order("mango", 1, "cust-7", "tok_visa", Some("94103"));
            us["country"] = json!("us");
            us["schema_version"] = json!("1.2");
            us
        },
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        ids.push(t.place(body).await);
    }
    for id in &ids {
        t.wait_terminal(id).await;
    }
    t.assert_invariants().await;
    let views = [
        (Service::Order, "orders"),
        (Service::Validation, "validations"),
        (Service::ValidationUs, "validations"),
        (Service::Credit, "credit"),
        (Service::Inventory, "inventory"),
        (Service::Payment, "payments"),
        (Service::Fulfillment, "shipments"),
        (Service::Notification, "notifications"),
        (Service::Insights, "dispatch"),
    ];
    // The notification sender writes after the saga ends: wait until every
    // notice has gone.
    let notifications = &t.system.stores[&Service::Notification];
    let far = udders_kernel::Timestamp::from_micros(i64::MAX);
    for _ in 0..200 {
        if notifications.due_documents("notifications", far, 1).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut system = t.system;
    for (service, _) in views {
        system.stop_service(service).await.unwrap();
    }
    let all = udders_eventstore::DocumentFilter { limit: 100_000, ..Default::default() };
    for (service, view) in views {
        let store = &system.stores[&service];
        let docs = |mut d: Vec<udders_eventstore::Document>| {
            d.sort_by(|a, b| a.key.cmp(&b.key));
            d
        };
        let live = docs(store.documents(view, &all).await.unwrap());
        assert!(!live.is_empty(), "{view} has documents");
        udders::registry::module(service).replay(store).await.unwrap();
        let rebuilt = docs(store.documents(view, &all).await.unwrap());
        assert_eq!(live, rebuilt, "{view}: the rebuilt read model equals the live one");
    }
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_with_an_empty_broker_keeps_every_order_and_finishes_the_sagas_in_flight() {
    let t = start().await;
    let mut ids = Vec::new();
    for i in 0..60u32 {
        let card = if i % 4 == 0 { "tok_declined" } else { "tok_visa" };
        ids.push(t.place(&an_order("chocolate", 1 + i % 3, &format!("cust-r{i}"), card, Some("018956"))).await);
    }
    // Stop while sagas are in flight: the broker (memory) loses every record.
    let dir = t.stop_keeping_data().await;
    let t = start_in(dir, |_| {}).await;
    for id in &ids {
        t.wait_terminal(id).await;
    }
    let (_, stats) = t.get("/orders/stats").await;
    assert_eq!(stats["total"], 60, "{stats}");
    assert_eq!(stats["by_status"]["REJECTED"], 15, "every fourth card is declined: {stats}");
    assert_eq!(stats["by_status"]["COMPLETED"], 45, "{stats}");
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_and_swagger_ui_are_served_from_the_binary() {
    let t = start().await;
    let (status, doc) = t.get("/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/orders",
        "/orders/{order_id}",
        "/orders/{order_id}/cancel",
        "/orders/stats",
        "/inventory",
        "/customers/{customer_id}/credit",
        "/payments/{order_id}",
        "/shipments/{order_id}",
        "/catalog",
        "/readyz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let page = t.client.get(format!("{}/swagger-ui/", t.base)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui") && !html.contains("https://"), "vendored assets, no CDN");
    let (status, catalog) = t.get("/catalog").await;
    assert_eq!(status, 200);
    assert!(catalog.to_string().contains("order/init/1.2/icecream/udders/{product}/{country}/{channel}"));
    t.stop().await;
}

/// The value of the sample `series` (name and labels, as printed) in
/// Prometheus text, 0 when it is not there.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_sagas_compensations_handler_latency_and_positions() {
    let t = start().await;
    let metrics = || async {
        let response = t.client.get(format!("{}/metrics", t.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    };
    let before = metrics().await;
    ends(&t, happy_order(), "COMPLETED", "").await;
    ends(&t, an_order("chocolate", 2, "cust-4", "tok_declined", None), "REJECTED", "declined").await;
    t.assert_invariants().await;
    let after = metrics().await;
    let delta = |series: &str| sample(&after, series) - sample(&before, series);

    assert_eq!(delta("udders_saga_duration_seconds_count{outcome=\"COMPLETED\"}"), 1.0, "{after}");
    assert_eq!(delta("udders_saga_duration_seconds_count{outcome=\"REJECTED\"}"), 1.0, "{after}");
    let took = delta("udders_saga_duration_seconds_sum{outcome=\"COMPLETED\"}");
    assert!(took > 0.0 && took < SAGA_TIMEOUT.as_secs_f64(), "a completed saga took {took} s");
    assert_eq!(delta("udders_saga_duration_seconds_bucket{outcome=\"COMPLETED\",le=\"+Inf\"}"), 1.0);
    // Both orders came through the point of sale's intake.
    for phase in ["waiting", "placing"] {
        assert_eq!(delta(&format!("udders_intake_duration_seconds_count{{phase=\"{phase}\"}}")), 2.0, "{after}");
        let took = delta(&format!("udders_intake_duration_seconds_sum{{phase=\"{phase}\"}}"));
        assert!(took > 0.0 && took < SAGA_TIMEOUT.as_secs_f64(), "{phase} took {took} s");
    }

    assert_eq!(delta("udders_compensations_total{service=\"credit\",kind=\"credit/released\"}"), 1.0, "{after}");
    assert_eq!(delta("udders_compensations_total{service=\"inventory\",kind=\"inventory/released\"}"), 1.0);
    assert!(after.contains("udders_compensations_total{service=\"payment\",kind=\"payment/refunded\"} 0"), "{after}");

    // The order service follows every saga event: at least the 2 placements,
    // their validations and the happy order's shipment.
    assert!(delta("udders_handler_duration_seconds_count{service=\"order\"}") >= 5.0, "{after}");
    assert!(delta("udders_consumer_transaction_duration_seconds_count{service=\"payment\"}") >= 1.0, "{after}");
    // Each transaction is also timed in its five parts, which add up to it
    // (validation: its work for these orders ended long before they did).
    let transactions = delta("udders_consumer_transaction_duration_seconds_count{service=\"validation\"}");
    let whole = delta("udders_consumer_transaction_duration_seconds_sum{service=\"validation\"}");
    assert!(transactions >= 1.0, "{after}");
    let mut parts = 0.0;
    for phase in ["waiting", "inbox", "handlers", "writes", "commit"] {
        let series =
            format!("udders_consumer_transaction_phase_seconds_count{{service=\"validation\",phase=\"{phase}\"}}");
        assert_eq!(delta(&series), transactions, "{phase}: {after}");
        parts += delta(&format!(
            "udders_consumer_transaction_phase_seconds_sum{{service=\"validation\",phase=\"{phase}\"}}"
        ));
    }
    assert!((parts - whole).abs() < 1e-6, "the parts ({parts} s) add up to the transactions ({whole} s)");
    let positions: f64 = after
        .lines()
        .filter(|l| l.starts_with("udders_consumer_position{service=\"order\",topic=\"udders.order\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(positions >= 2.0, "the order consumer stored positions past its own 2 placements: {after}");
    for service in ["order", "validation", "credit", "inventory", "payment", "fulfillment"] {
        assert_eq!(sample(&after, &format!("udders_outbox_backlog{{service=\"{service}\"}}")), 0.0, "{service}");
        assert!(after.contains(&format!("udders_outbox_oldest_age_seconds{{service=\"{service}\"}} 0\n")), "{service}");
        // Counted, whatever the count: a reply that overtakes the event that
        // starts a stream (a race the handlers allow for) makes one.
        assert!(after.contains(&format!("udders_store_wrong_opens_total{{service=\"{service}\"}} ")), "{service}");
    }
    assert_eq!(sample(&after, "udders_orders{status=\"COMPLETED\"}"), 1.0);

    // Every series the provisioned Grafana dashboard queries is exported.
    let dashboard = include_str!("../deploy/grafana/provisioning/dashboards/udders.json");
    let queried: BTreeSet<&str> = dashboard
        .match_indices("udders_")
        .map(|(at, _)| {
            let name = &dashboard[at..];
            &name[..name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(name.len())]
        })
        .collect();
    assert!(queried.len() >= 8, "{queried:?}");
    for name in queried {
        assert!(
            after.lines().any(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' '])),
            "{name} is not exported"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_order_list_comes_in_pages_linked_by_cursors() {
    let t = start().await;
    let mut placed = BTreeSet::new();
    for i in 0..5 {
        placed.insert(t.place(&an_order("vanilla", 1, &format!("cust-page-{i}"), "tok_visa", None)).await);
    }
    for id in &placed {
        t.wait_terminal(id).await;
    }
    let mut seen = Vec::new();
    let mut next = Some("/orders?limit=2&channel=web".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let response = t.client.get(format!("{}{path}", t.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        next = response.headers().get("link").map(|l| {
            let link = l.to_str().unwrap();
            assert!(link.ends_with(">; rel=\"next\"") && link.contains("channel=web"), "{link}");
            link.trim_start_matches('<').split_once('>').unwrap().0.to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|o| o["order_id"].as_str().unwrap().to_owned()));
        pages += 1;
    }
    assert_eq!(pages, 3, "2 + 2 + 1");
    assert_eq!(seen.len(), 5, "no order twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), placed);
    let (status, problem) = t.get("/orders?after=not-a-cursor").await;
    assert_eq!(status, 400, "{problem}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_broker_forgets_what_every_consumer_has_handled_and_a_restarted_consumer_resumes() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut t = start_with(|c| c.trim_every = Duration::from_millis(200)).await;
    for i in 0..10 {
        ends(&t, an_order("mango", 1, &format!("cust-trim-{i}"), "tok_visa", None), "COMPLETED", "").await;
    }
    let watermarks = |topic: &'static str| {
        let addr = t.system.broker_addr;
        async move {
            tokio::task::spawn_blocking(move || {
                let client: BaseConsumer = rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", addr.to_string())
                    .set("group.id", "watermarks")
                    .create()
                    .unwrap();
                client.fetch_watermarks(topic, 0, Duration::from_secs(5)).unwrap()
            })
            .await
            .unwrap()
        }
    };
    let mut trimmed = (0, 0);
    for _ in 0..50 {
        trimmed = watermarks("udders.order").await;
        if trimmed.0 > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (low, high) = trimmed;
    assert!(low > 0 && low < high, "the order topic keeps only the tail: {trimmed:?}");
    // Nothing below a stored position is gone: every consumer of the topic
    // resumes after it and the saga goes on.
    t.system.stop_service(Service::Fulfillment).await.unwrap();
    t.system.start_service(Service::Fulfillment).unwrap();
    t.system.wait_ready(Duration::from_secs(30)).await.unwrap();
    ends(&t, happy_order(), "COMPLETED", "").await;
    t.assert_invariants().await;
    t.stop().await;
}
