//! The invariants of the saga, checked from the outside through the HTTP
//! read models (so `udders load` can check a running system, and the
//! end-to-end tests check theirs the same way).
//!
//! Checked once faults have stopped and the system is quiet:
//! 1. every order is terminal;
//! 2. stock: nothing is reserved any more, on hand never below zero, and per
//!    flavour and country what left the warehouse equals what the shipments
//!    carried, and on hand + shipped equals what was stocked (the seed and
//!    every restock); a completed
//!    order has a shipment;
//! 3. credit: per customer, nothing is reserved any more (a completed order's
//!    hold is settled, a rejected or cancelled one's released), never above
//!    the limit;
//! 4. money: a completed order is captured exactly once for its total; a
//!    rejected or cancelled one has a net charge of zero.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// An order as `GET /orders` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderRow {
    /// The order.
    pub order_id: String,
    /// Its status.
    pub status: String,
    /// Minor units.
    pub total: i64,
    /// The customer.
    pub customer_id: String,
    /// Country.
    pub country: String,
    /// When it was placed (RFC 3339).
    pub placed_at: String,
}

#[derive(Debug, Deserialize)]
struct StockRow {
    flavor: String,
    country: String,
    on_hand: i64,
    reserved: i64,
    shipped: i64,
    /// Every restock added up, the seed included.
    stocked: i64,
}

/// What the check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Orders per status.
    pub by_status: BTreeMap<String, usize>,
    /// Every broken invariant, in words; empty when all hold.
    pub violations: Vec<String>,
    /// Terminal orders whose notices could not all be seen: their customer
    /// has more notices than one listing holds (1,000, newest first), and
    /// they were placed before the listing's oldest notice.
    pub notices_unseen: usize,
}

impl Report {
    /// True when every invariant holds.
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }
}

async fn get<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: String) -> anyhow::Result<T> {
    let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.with_context(|| format!("reading GET {url}"))
}

/// Every item of a paged list: `GET {base}{path}`, then each page its
/// `Link: <…>; rel="next"` header names.
pub async fn all_pages<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    base: &str,
    path: &str,
) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next.take() {
        let url = format!("{base}{path}");
        let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(response.status().is_success(), "GET {url}: {}", response.status());
        next =
            response.headers().get(reqwest::header::LINK).and_then(|link| link.to_str().ok()).and_then(|link| {
                link.strip_prefix('<')?.split_once(">; rel=\"next\"").map(|(path, _)| path.to_owned())
            });
        let page: Vec<T> = response.json().await.with_context(|| format!("reading GET {url}"))?;
        items.extend(page);
    }
    Ok(items)
}

/// Every order the system holds, as rows of `T` (an [`OrderRow`], or the
/// fields a caller needs), 200 at a time: the order service reads a page
/// whole, timelines and all, so a small page keeps the check from swelling
/// the process it checks (docs/benchmarks.md, memory).
pub async fn orders<T: serde::de::DeserializeOwned>(client: &reqwest::Client, base: &str) -> anyhow::Result<Vec<T>> {
    all_pages(client, base, "/orders?limit=200").await
}

/// Where each service's read models answer: one base URL for `udders up`,
/// one per service when each runs in its own process.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `/orders`.
    pub order: String,
    /// `/customers/{id}/credit`.
    pub credit: String,
    /// `/inventory`.
    pub inventory: String,
    /// `/payments/{order_id}`.
    pub payment: String,
    /// `/shipments/{order_id}`.
    pub fulfillment: String,
    /// `/customers/{id}/notifications`.
    pub notification: String,
}

impl Endpoints {
    /// Every read model behind one base URL.
    pub fn one(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        Self {
            order: base.clone(),
            credit: base.clone(),
            inventory: base.clone(),
            payment: base.clone(),
            fulfillment: base.clone(),
            notification: base,
        }
    }
}

/// [`check`], again every 250 ms for up to `within` while something is
/// broken: the answers to the last terminal statuses (a settlement, a late
/// release) are still on their way when the last order turns terminal.
pub async fn check_settling(
    client: &reqwest::Client,
    at: &Endpoints,
    within: std::time::Duration,
) -> anyhow::Result<Report> {
    let until = std::time::Instant::now() + within;
    loop {
        let report = check(client, at).await?;
        if report.holds() || std::time::Instant::now() >= until {
            return Ok(report);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// How many orders (then customers) the check reads at once, each one's two
/// reads side by side (an order's payment and shipment, a customer's credit
/// and notices). The reads are independent, and one after another they took
/// twice as long as the ten-minute soak they checked; a handful at once
/// keeps the checked process's readers busy without crowding its writers.
const READS_IN_FLIGHT: usize = 8;

/// What the check needs of one terminal order beyond its row.
struct Outcome {
    /// Its payment's `net_charged`; 0 without a payment.
    net: i64,
    /// Its payment's status, when it has a payment.
    payment: Option<Value>,
    /// What its shipment carried (flavour, quantity), when it shipped.
    shipped: Option<Vec<(String, i64)>>,
}

/// `GET url`, or `None` on 404.
async fn get_if_any(client: &reqwest::Client, url: String) -> anyhow::Result<Option<Value>> {
    let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    anyhow::ensure!(response.status().is_success(), "GET {url}: {}", response.status());
    Ok(Some(response.json().await.with_context(|| format!("reading GET {url}"))?))
}

/// A terminal order's payment, shipment and, when it shipped, its lines.
async fn outcome(client: &reqwest::Client, at: &Endpoints, order_id: &str) -> anyhow::Result<Outcome> {
    let (payment, shipment) = futures::try_join!(
        get_if_any(client, format!("{}/payments/{order_id}", at.payment)),
        get_if_any(client, format!("{}/shipments/{order_id}", at.fulfillment)),
    )?;
    let shipped = match shipment {
        Some(shipment) if shipment["status"] == "SHIPPED" => {
            let full: Value = get(client, format!("{}/orders/{order_id}", at.order)).await?;
            Some(
                full["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|line| {
                        (line["flavor"].as_str().unwrap_or_default().to_owned(), line["quantity"].as_i64().unwrap_or(0))
                    })
                    .collect(),
            )
        }
        _ => None,
    };
    Ok(Outcome {
        net: payment.as_ref().and_then(|p| p["net_charged"].as_i64()).unwrap_or(0),
        payment: payment.map(|p| p["status"].clone()),
        shipped,
    })
}

/// Whether an order's status, as the read models spell it, is one it ends in.
pub fn is_terminal(status: &str) -> bool {
    udders_order_domain::Status::ALL.iter().any(|s| s.is_terminal() && s.as_str() == status)
}

/// Checks the invariants against a quiet system. Reads go out
/// `READS_IN_FLIGHT` at a time and are judged in the order of the orders
/// listed, so a report reads the same however the answers interleave.
pub async fn check(client: &reqwest::Client, at: &Endpoints) -> anyhow::Result<Report> {
    use futures::StreamExt as _;
    let orders: Vec<OrderRow> = orders(client, &at.order).await?;
    let mut report = Report::default();
    let mut shipped_lines: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut customers: BTreeMap<String, Vec<&OrderRow>> = BTreeMap::new();
    let mut outcomes = futures::stream::iter(&orders)
        .map(|order| async move {
            if is_terminal(&order.status) { outcome(client, at, &order.order_id).await.map(Some) } else { Ok(None) }
        })
        .buffered(READS_IN_FLIGHT);
    for order in &orders {
        let outcome = outcomes.next().await.context("one outcome per order")??;
        *report.by_status.entry(order.status.clone()).or_default() += 1;
        customers.entry(order.customer_id.clone()).or_default().push(order);
        let Some(Outcome { net, payment, shipped }) = outcome else {
            report.violations.push(format!("order {} is {}, not terminal", order.order_id, order.status));
            continue;
        };
        if let Some(lines) = shipped {
            for (flavor, quantity) in lines {
                *shipped_lines.entry((flavor, order.country.clone())).or_default() += quantity;
            }
        } else if order.status == "COMPLETED" {
            report.violations.push(format!("completed order {} has no shipment", order.order_id));
        }
        if order.status == "COMPLETED" {
            if net != order.total || payment.as_ref().is_none_or(|status| status != "CAPTURED") {
                report.violations.push(format!(
                    "completed order {} charged {net} (payment {payment:?}), not its total {}",
                    order.order_id, order.total
                ));
            }
        } else if net != 0 {
            report.violations.push(format!("{} order {} has a net charge of {net}", order.status, order.order_id));
        }
    }
    drop(outcomes);
    let stock: Vec<StockRow> = get(client, format!("{}/inventory", at.inventory)).await?;
    for row in &stock {
        let key = (row.flavor.clone(), row.country.clone());
        let shipped = shipped_lines.remove(&key).unwrap_or(0);
        // What was stocked: the seed plus every operator restock, never less
        // than the seed.
        let stocked = row.stocked;
        if stocked < i64::from(udders_inventory::initial_stock(&row.flavor).get()) {
            report.violations.push(format!("{}-{}: {stocked} stocked, less than the seed", row.flavor, row.country));
        }
        if row.reserved != 0 {
            report.violations.push(format!(
                "{}-{}: {} still reserved with every order terminal",
                row.flavor, row.country, row.reserved
            ));
        }
        if row.on_hand < 0 || row.shipped != shipped || row.on_hand + row.shipped != stocked {
            report.violations.push(format!(
                "{}-{}: on hand {}, shipped {} by the books, {shipped} by the shipments, {stocked} stocked",
                row.flavor, row.country, row.on_hand, row.shipped
            ));
        }
    }
    for ((flavor, country), quantity) in shipped_lines {
        report.violations.push(format!("{quantity} of {flavor}-{country} shipped but no such stock"));
    }
    // With every order terminal, every hold is settled or released.
    const LISTED: usize = 1000;
    let mut accounts = futures::stream::iter(&customers)
        .map(|(customer, _)| async move {
            futures::try_join!(
                get::<Value>(client, format!("{}/customers/{customer}/credit", at.credit)),
                get::<Vec<Value>>(
                    client,
                    format!("{}/customers/{customer}/notifications?limit={LISTED}", at.notification)
                ),
            )
        })
        .buffered(READS_IN_FLIGHT);
    for (customer, placed) in &customers {
        let (credit, notices) = accounts.next().await.context("one account per customer")??;
        let (reserved, limit) = (credit["reserved"].as_i64().unwrap_or(-1), credit["limit"].as_i64().unwrap_or(0));
        if reserved != 0 {
            report
                .violations
                .push(format!("customer {customer}: {reserved} reserved with every order terminal, limit {limit}"));
        }
        told(&notices, notices.len() >= LISTED, placed, &mut report);
    }
    Ok(report)
}

/// Every terminal order's customer was told it was received and how it
/// ended (a completed order: shipped; a rejected one: refused; a cancelled
/// one: one closing notice), and each notice reached them. `notices` is the
/// customer's listing, newest first; `cut` says it was full.
fn told(notices: &[Value], cut: bool, placed: &[&OrderRow], report: &mut Report) {
    // A full listing may have cut off the first notices of orders placed
    // before its oldest notice (RFC 3339 UTC texts compare as instants).
    let oldest_listed = notices.last().and_then(|n| n["time"].as_str()).unwrap_or_default();
    let mut by_order: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for notice in notices {
        by_order.entry(notice["order_id"].as_str().unwrap_or_default()).or_default().push(notice);
    }
    for order in placed.iter().filter(|o| is_terminal(&o.status)) {
        let mine = by_order.get(order.order_id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let kinds: Vec<&str> = mine.iter().filter_map(|n| n["kind"].as_str()).collect();
        let closing: Vec<&str> = kinds.iter().copied().filter(|k| *k != "received").collect();
        // CANCELLED tells of whatever the notification service heard first:
        // the cancel or the expiry, a refusal that the deadline overtook
        // while its compensation ran, or the parcel that a cancel raced.
        let expected: &[&str] = match order.status.as_str() {
            "COMPLETED" => &["shipped"],
            "REJECTED" => &["refused"],
            _ => &["cancelled", "expired", "refused", "shipped"],
        };
        // Cut off: placed before the oldest notice listed, and either none
        // of its notices listed or only its closing one (the newer).
        let before = order.placed_at.as_str() <= oldest_listed;
        let only_closing = !kinds.contains(&"received") && closing.len() == 1 && expected.contains(&closing[0]);
        if cut && before && (kinds.is_empty() || only_closing) {
            report.notices_unseen += 1;
        } else if !kinds.contains(&"received") || closing.len() != 1 || !expected.contains(&closing[0]) {
            report
                .violations
                .push(format!("{} order {}: its customer was told {kinds:?}", order.status, order.order_id));
        } else if let Some(pending) = mine.iter().find(|n| n["status"] != "DELIVERED") {
            report.violations.push(format!(
                "order {}: notice {} is {} after {} attempt(s)",
                order.order_id, pending["kind"], pending["status"], pending["attempts"]
            ));
        }
    }
}
