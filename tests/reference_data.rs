//! Reference data as events, end to end: an operator changes a price, a
//! stock and a credit limit through the admin routes; each change is an
//! event in its owner's store, published on the broker (the order service,
//! which follows every event, hears it), and orders placed afterwards see
//! it while an order placed before keeps what it was placed with.

use std::time::Duration;

use serde_json::{Value, json};
use udders_e2e::*;

const TOKEN: &str = "reference-data-operator-token";

async fn admin(t: &TestSystem, method: reqwest::Method, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = t.client.request(method, format!("{}{path}", t.base)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the order service has heard `count` events of `event_type`
/// (`price/changed/1.0`) from the broker.
async fn heard(t: &TestSystem, event_type: &str, count: u64) {
    for _ in 0..300 {
        let (_, seen) = t.get("/catalog/live").await;
        if seen[event_type]["count"].as_u64().unwrap_or(0) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{event_type} never came back from the broker: {:#}", t.get("/catalog/live").await.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_price_change_reaches_the_orders_placed_after_it_and_travels_as_an_event() {
    let t = start_with(|c| c.operator_token = Some(TOKEN.into())).await;
    let before = t.place(&an_order("mango", 2, "cust-price", "tok_visa", None)).await;

    let put = reqwest::Method::PUT;
    let (status, refused) = admin(&t, put.clone(), "/admin/prices/mango/sg", json!({"unit_price": 550}), None).await;
    assert_eq!(status, 401, "{refused}");
    let wrong = Some("not-the-token");
    assert_eq!(admin(&t, put.clone(), "/admin/prices/mango/sg", json!({"unit_price": 550}), wrong).await.0, 401);
    let (status, bad) = admin(&t, put.clone(), "/admin/prices/mango/sg", json!({"unit_price": 0}), Some(TOKEN)).await;
    assert_eq!((status, bad["status"].as_u64()), (422, Some(422)), "{bad}");
    assert_eq!(
        admin(&t, put.clone(), "/admin/prices/bubblegum/sg", json!({"unit_price": 5}), Some(TOKEN)).await.0,
        404
    );

    let (status, price) =
        admin(&t, put.clone(), "/admin/prices/mango/sg", json!({"unit_price": 550}), Some(TOKEN)).await;
    assert_eq!((status, &price["unit_price"], &price["changed"]), (200, &json!(550), &json!(true)), "{price}");
    let (_, prices) = t.get("/prices").await;
    let mango = |country: &str| {
        prices.as_array().unwrap().iter().find(|p| p["flavor"] == "mango" && p["country"] == country).cloned().unwrap()
    };
    assert_eq!((mango("sg")["unit_price"].as_i64(), mango("my")["unit_price"].as_i64()), (Some(550), Some(600)));
    heard(&t, "price/changed/1.0", 1).await;

    let after = t.place(&an_order("mango", 2, "cust-price", "tok_visa", None)).await;
    let (before, after) = (t.wait_terminal(&before).await, t.wait_terminal(&after).await);
    assert_eq!((before["status"].as_str(), after["status"].as_str()), (Some("COMPLETED"), Some("COMPLETED")));
    assert_eq!((before["total"].as_i64(), before["items"][0]["unit_price"].as_i64()), (Some(1200), Some(600)));
    assert_eq!((after["total"].as_i64(), after["items"][0]["unit_price"].as_i64()), (Some(1100), Some(550)));
    let (_, paid) = t.get(&format!("/payments/{}", after["order_id"].as_str().unwrap())).await;
    assert_eq!(paid["net_charged"].as_i64(), Some(1100), "payment charges the price the order carries");
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restock_lets_orders_through_that_the_stock_refused() {
    let t = start_with(|c| c.operator_token = Some(TOKEN.into())).await;
    // Durian is seeded with nothing on hand: refused for stock.
    let first = t.place(&an_order("durian", 3, "cust-stock", "tok_visa", None)).await;
    let first = t.wait_terminal(&first).await;
    assert_eq!(first["status"], "REJECTED", "{first:#}");

    let post = reqwest::Method::POST;
    assert_eq!(admin(&t, post.clone(), "/admin/stock/durian/sg", json!({"add": 5}), None).await.0, 401);
    assert_eq!(admin(&t, post.clone(), "/admin/stock/durian/sg", json!({"add": -1}), Some(TOKEN)).await.0, 422);
    let (status, stock) = admin(&t, post.clone(), "/admin/stock/durian/sg", json!({"add": 5}), Some(TOKEN)).await;
    assert_eq!((status, &stock["on_hand"], &stock["stocked"]), (200, &json!(5), &json!(5)), "{stock}");
    heard(&t, "stock/restocked/1.0", 1).await;

    let second = t.place(&an_order("durian", 3, "cust-stock", "tok_visa", None)).await;
    assert_eq!(t.wait_terminal(&second).await["status"], "COMPLETED");
    let (_, rows) = t.get("/inventory?flavor=durian&country=sg").await;
    assert_eq!((&rows[0]["on_hand"], &rows[0]["shipped"], &rows[0]["stocked"]), (&json!(2), &json!(3), &json!(5)));
    t.assert_invariants().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credit_limit_change_applies_to_the_next_reservation() {
    let t = start_with(|c| c.operator_token = Some(TOKEN.into())).await;
    let put = reqwest::Method::PUT;
    let path = "/admin/customers/cust-limit/credit-limit";
    assert_eq!(admin(&t, put.clone(), path, json!({"limit": 0}), None).await.0, 401);
    assert_eq!(admin(&t, put.clone(), path, json!({"limit": -1}), Some(TOKEN)).await.0, 422);
    let (status, credit) = admin(&t, put.clone(), path, json!({"limit": 0}), Some(TOKEN)).await;
    assert_eq!((status, &credit["limit"], &credit["available"]), (200, &json!(0), &json!(0)), "{credit}");
    heard(&t, "credit/limit-changed/1.0", 1).await;
    let refused = t.place(&an_order("mango", 2, "cust-limit", "tok_visa", None)).await;
    let refused = t.wait_terminal(&refused).await;
    assert_eq!(refused["status"], "REJECTED", "{refused:#}");
    assert!(refused["reason"].as_str().unwrap_or_default().starts_with("credit:"), "{refused:#}");

    let (status, credit) = admin(&t, put.clone(), path, json!({"limit": 200000}), Some(TOKEN)).await;
    assert_eq!((status, &credit["limit"]), (200, &json!(200000)), "{credit}");
    // 100 mango and 100 rum raisin are 125,000: over the default limit of
    // 100,000, within the new one.
    let mut big = an_order("mango", 100, "cust-limit", "tok_visa", None);
    big["items"].as_array_mut().unwrap().push(json!({"flavor": "rumraisin", "quantity": 100}));
    let fits = t.place(&big).await;
    let fits = t.wait_terminal(&fits).await;
    assert_eq!((fits["status"].as_str(), fits["total"].as_i64()), (Some("COMPLETED"), Some(125_000)), "{fits:#}");
    t.assert_invariants().await;
    t.stop().await;
}
