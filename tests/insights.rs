//! The insights service, end to end: the 711 listener (bound to
//! `order/*/*/*/*/*/*/store711`) folds the chain's last hour, and the
//! Singapore listener (bound to `order/valid/*/icecream/**/sg/*`) lists the
//! valid orders waiting for dispatch until they ship.

use std::time::Duration;

use serde_json::Value;
use udders_contracts::Service;
use udders_e2e::*;

fn at(order: Value, channel: &str, country: &str) -> Value {
    let mut order = order;
    order["channel"] = channel.into();
    order["country"] = country.into();
    order
}

/// Polls `path` until `done` holds for its body.
async fn until(t: &TestSystem, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut body = Value::Null;
    for _ in 0..300 {
        let (status, answer) = t.get(path).await;
        assert_eq!(status, 200, "{answer}");
        body = answer;
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never got there: {body:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_711_chain_gets_its_hour_of_orders_revenue_and_flavours() {
    let t = start().await;
    let shipped = [
        at(an_order("mango", 2, "cust-711a", "tok_visa", None), "store711", "sg"),
        at(an_order("chocolate", 1, "cust-711b", "tok_visa", None), "store711", "my"),
    ];
    let declined = at(an_order("mango", 4, "cust-711c", "tok_declined", None), "store711", "sg");
    let elsewhere = at(an_order("vanilla", 9, "cust-web", "tok_visa", None), "web", "sg");
    let mut revenue = 0;
    for body in shipped.iter().chain([&declined, &elsewhere]) {
        let id = t.place(body).await;
        let order = t.wait_terminal(&id).await;
        if order["status"] == "COMPLETED" && order["channel"] == "store711" {
            revenue += order["total"].as_i64().unwrap();
        }
    }
    assert!(revenue > 0);
    let hour =
        until(&t, "/insights/channels/store711", |h| h["orders"] == 3 && h["shipped"] == 2 && h["refused"] == 1).await;
    assert_eq!(hour["revenue"].as_i64(), Some(revenue), "revenue counts the shipped orders only: {hour:#}");
    assert_eq!(hour["top_flavors"][0]["flavor"], "mango", "{hour:#}");
    assert_eq!(hour["top_flavors"][0]["quantity"], 6, "the declined order's scoops were ordered too: {hour:#}");
    assert!(!hour.to_string().contains("vanilla"), "the web order is not the chain's: {hour:#}");
    let minutes = hour["minutes"].as_array().unwrap();
    assert!(!minutes.is_empty() && minutes.len() <= 2, "{hour:#}");
    let (status, problem) = t.get("/insights/channels/web").await;
    assert_eq!((status, problem["status"].as_u64()), (404, Some(404)), "{problem}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn singapore_lists_its_valid_orders_until_they_are_dispatched() {
    // Fulfillment stopped: paid orders wait for the carrier.
    let mut t = start_with(|c| c.stopped = vec![Service::Fulfillment]).await;
    let sg = t.place(&an_order("mango", 1, "cust-sg", "tok_visa", Some("018956"))).await;
    let my = t.place(&at(an_order("mango", 1, "cust-my", "tok_visa", None), "web", "my")).await;
    let declined = t.place(&an_order("mango", 1, "cust-sg2", "tok_declined", None)).await;
    t.wait_terminal(&declined).await;
    // A 711 order in Singapore is for both listeners.
    let chain = t.place(&at(an_order("chocolate", 1, "cust-711sg", "tok_visa", None), "store711", "sg")).await;
    // Insights hears the declined order's refusal in its own time: wait
    // for the list to settle, then it holds the two, longest waiting first.
    let ids = |w: &Value| -> Vec<String> {
        w["orders"].as_array().into_iter().flatten().filter_map(|o| o["order_id"].as_str().map(str::to_owned)).collect()
    };
    let expected = [sg.clone(), chain.clone()];
    let waiting = until(&t, "/insights/countries/sg", |w| w["waiting"] == 2 && ids(w) == expected).await;
    assert_eq!(waiting["orders"][0]["postal_code"], "018956");
    assert!(!waiting.to_string().contains(&my), "a Malaysian order is not Singapore's");
    let (_, limited) = t.get("/insights/countries/sg?limit=1").await;
    assert_eq!(limited["orders"].as_array().map(Vec::len), Some(1), "{limited:#}");
    let hour = until(&t, "/insights/channels/store711", |h| h["orders"] == 1).await;
    assert_eq!(hour["top_flavors"][0]["flavor"], "chocolate", "{hour:#}");
    let (status, _) = t.get("/insights/countries/my").await;
    assert_eq!(status, 404);

    t.system.start_service(Service::Fulfillment).expect("fulfillment starts");
    t.wait_terminal(&sg).await;
    t.wait_terminal(&chain).await;
    let waiting = until(&t, "/insights/countries/sg", |w| w["waiting"] == 0).await;
    assert_eq!(waiting["orders"].as_array().map(Vec::len), Some(0), "{waiting:#}");
    t.stop().await;
}
