//! The notification service, end to end: it hears an order's start and its
//! outcome from the other services' topics, sends each notice through the
//! simulated courier (retrying the ones the courier refuses), shows them at
//! `GET /customers/{customer_id}/notifications`, and, when it starts after
//! orders were placed, catches up on them from the order service.

use std::time::Duration;

use serde_json::Value;
use udders_contracts::Service;
use udders_e2e::*;
use udders_notification::BACKFILL_VIEW;

/// The customer's notices once `count` of them are delivered.
async fn delivered(t: &TestSystem, customer: &str, count: usize) -> Vec<Value> {
    let mut listed = Vec::new();
    for _ in 0..300 {
        let (status, body) = t.get(&format!("/customers/{customer}/notifications")).await;
        assert_eq!(status, 200, "{body}");
        listed = body.as_array().cloned().unwrap_or_default();
        if listed.len() >= count && listed.iter().all(|n| n["status"] == "DELIVERED") {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{customer}: {count} delivered notices expected, got {listed:#?}");
}

fn kinds(notices: &[Value]) -> Vec<&str> {
    notices.iter().map(|n| n["kind"].as_str().unwrap_or_default()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_order_tells_its_customer_it_was_received_and_how_it_ended() {
    let t = start().await;
    let shipped = t.place(&an_order("mango", 2, "cust-told", "tok_visa", Some("018956"))).await;
    t.wait_terminal(&shipped).await;
    let declined = t.place(&an_order("mango", 1, "cust-told", "tok_declined", None)).await;
    t.wait_terminal(&declined).await;

    let notices = delivered(&t, "cust-told", 4).await;
    assert_eq!(kinds(&notices), ["refused", "received", "shipped", "received"], "newest first: {notices:#?}");
    assert_eq!(notices[0]["order_id"].as_str(), Some(declined.as_str()));
    assert_eq!(notices[0]["detail"].as_str(), Some("card declined by the issuer"), "{notices:#?}");
    assert_eq!(notices[2]["subject"].as_str(), Some(format!("Your order {shipped} is on its way").as_str()));
    assert!(notices[2]["detail"].as_str().unwrap_or_default().contains("018956"), "{notices:#?}");
    for notice in &notices {
        let id = notice["notification_id"].as_str().unwrap();
        let sent = t.system.courier().delivered_message(id).unwrap_or_else(|| panic!("{id} never reached the courier"));
        assert_eq!(sent.customer_id, "cust-told");
        assert_eq!(notice["attempts"].as_u64(), Some(u64::from(t.system.courier().attempts(id))), "{notice}");
    }

    let (status, none) = t.get("/customers/cust-nobody/notifications").await;
    assert_eq!((status, none.as_array().map(Vec::len)), (200, Some(0)));
    let (status, problem) = t.get("/customers/not%20an%20id/notifications").await;
    assert_eq!((status, problem["status"].as_u64()), (400, Some(400)), "{problem}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notice_the_courier_refuses_is_sent_again_and_reaches_the_customer_once() {
    let t = start().await;
    // The simulated courier refuses the first attempt of one notice in ten:
    // twenty orders make forty notices, enough for some to need a retry.
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(t.place(&an_order("vanilla", 1, &format!("cust-retry{i}"), "tok_visa", None)).await);
    }
    for id in &ids {
        t.wait_terminal(id).await;
    }
    let mut retried = 0;
    for i in 0..20 {
        for notice in delivered(&t, &format!("cust-retry{i}"), 2).await {
            let attempts = notice["attempts"].as_u64().unwrap_or(0);
            if attempts > 1 {
                retried += 1;
                assert!(notice["last_error"].as_str().is_some_and(|e| e.contains("busy")), "{notice}");
            }
        }
    }
    assert!(retried > 0, "no notice needed a second attempt: the retry path never ran");
    assert_eq!(t.system.courier().delivered(), 40, "each notice reaches its customer once");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notification_service_started_after_the_orders_catches_up_from_the_order_service() {
    let t = start().await;
    let mut ids = Vec::new();
    for (i, card) in ["tok_visa", "tok_declined", "tok_visa"].into_iter().enumerate() {
        ids.push(t.place(&an_order("chocolate", 1, &format!("cust-late{i}"), card, None)).await);
    }
    for id in &ids {
        t.wait_terminal(id).await;
    }
    let dir = t.stop_keeping_data().await;
    // As if the notification service had never run: its database is new,
    // the restarted broker is empty and the relays send nothing again, so
    // the history can only come from the order service's read model.
    for file in ["notification.db", "notification.db-wal", "notification.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let t = start_in(dir, |c| c.republish_window = Duration::ZERO).await;
    for (i, outcome) in ["shipped", "refused", "shipped"].into_iter().enumerate() {
        let notices = delivered(&t, &format!("cust-late{i}"), 2).await;
        assert_eq!(kinds(&notices), [outcome, "received"], "{notices:#?}");
        assert_eq!(notices[1]["order_id"].as_str(), Some(ids[i].as_str()));
    }
    let store = &t.system.stores[&Service::Notification];
    let mark = store.document(BACKFILL_VIEW, "order").await.expect("readable").expect("the backfill left its mark");
    assert_eq!(mark.doc["orders_read"].as_u64(), Some(3), "{:#}", mark.doc);
    // The backfill is done once: a restart reads nothing again.
    let (_, order) = t.get(&format!("/orders/{}", ids[0])).await;
    assert_eq!(order["status"], "COMPLETED");
    let dir = t.stop_keeping_data().await;
    let t = start_in(dir, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.system.courier().delivered(), 0, "nothing is sent twice after a restart");
    assert_eq!(kinds(&delivered(&t, "cust-late0", 2).await), ["shipped", "received"]);
    t.stop().await;
}
