//! `udders bench board`: what the console's orders board asks the order
//! read model for, timed on a SQLite read model of 10,000 orders (the
//! baseline) and of a million (by default), in the same run: the first page
//! of `GET /orders` (25 newest), a page of one status, of a rare status, of one country and
//! channel, of one customer (a filter read from the documents, without an
//! index), the counts by status of `GET /console/summary`, and the open
//! orders `GET /orders/stuck` looks up. Each figure is the median and the
//! 99th percentile of 50 runs, in milliseconds, and the ratio of the large
//! read model's median to the baseline's.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;
use udders_eventstore::{Document, DocumentFilter, EventStore, StoreOptions};
use udders_kernel::Timestamp;

use crate::cli::BoardBenchArgs;

const VIEW: &str = "orders";
const RUNS: usize = 50;
const STATUSES: [&str; 5] = ["COMPLETED", "REJECTED", "CANCELLED", "RESERVED", "COMPENSATING"];
const COUNTRIES: [&str; 6] = ["sg", "my", "kr", "us", "id", "th"];
const CHANNELS: [&str; 5] = ["lazada", "shopee", "store711", "web", "pos"];

/// An order read model document, shaped like the order service's (a
/// placed, validated, reserved, paid and shipped order's timeline).
fn order(n: u64, at: Timestamp) -> Document {
    // One in a thousand compensating: a rare status, as an open one is
    // among a long history of ended orders.
    let status = match (n % 100, n % 1000) {
        (_, 999) => STATUSES[4],
        (0..=74, _) => STATUSES[0],
        (75..=94, _) => STATUSES[1],
        (95..=97, _) => STATUSES[2],
        _ => STATUSES[3],
    };
    let (country, channel) = (COUNTRIES[(n % 6) as usize], CHANNELS[(n / 6 % 5) as usize]);
    let key = format!("0190b000-0000-7000-8000-{n:012x}");
    let customer = format!("cust-{}", n % 50_000);
    let timeline: Vec<serde_json::Value> = ["order/init/1.1", "order/valid/1.0", "credit/reserved/1.0", "inventory/reserved/1.0"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"event_id": format!("{key}-{i}"), "subject": format!("{name}/icecream/udders/mango/{country}/{channel}"),
                "source": "/udders/order", "time": at.to_string(), "causation_id": null, "kind": "step", "payload": null})
        })
        .collect();
    let doc = json!({
        "order_id": key, "status": status, "reason": null, "total": 1200, "customer_id": customer,
        "channel": channel, "country": country, "items": [{"flavor": "mango", "quantity": 2, "unit_price": 600}],
        "schema_version": "1.1", "placed_at": at.to_string(), "updated_at": at.to_string(),
        "deadline": at.plus_micros(30_000_000).to_string(), "correlation_id": key, "timeline": timeline,
    });
    let open = status == "RESERVED" || status == "COMPENSATING";
    Document {
        view: VIEW.into(),
        key,
        doc,
        tags: [Some(status.into()), Some(country.into()), Some(channel.into())],
        due: open.then(|| at.plus_micros(30_000_000)),
    }
}

/// Adds orders `from..to` to the read model, 10,000 to a transaction.
async fn fill(store: &EventStore, from: u64, to: u64) -> anyhow::Result<()> {
    let start = Timestamp::from_micros(1_800_000_000_000_000);
    let mut n = from;
    while n < to {
        let mut tx = store.begin().await?;
        for m in n..(n + 10_000).min(to) {
            tx.put_document(order(m, start.plus_micros(i64::try_from(m)? * 1_000))).await?;
        }
        tx.commit().await?;
        n = (n + 10_000).min(to);
    }
    Ok(())
}

/// Median and 99th percentile of `RUNS` runs of `what`, milliseconds.
async fn time<F, Fut>(mut what: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    let mut took = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let began = Instant::now();
        let found = what().await?;
        took.push(began.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(found > 0, "the query found nothing: the benchmark would time an empty answer");
    }
    took.sort_by(f64::total_cmp);
    let at = |p: f64| took[((took.len() - 1) as f64 * p).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// Times every board query on `store`: (measure, p50 ms, p99 ms).
async fn measure(store: &EventStore) -> anyhow::Result<Vec<(&'static str, f64, f64)>> {
    let page = |filter: DocumentFilter| {
        let store = store.clone();
        move || {
            let (store, filter) = (store.clone(), filter.clone());
            async move { Ok(store.document_page(VIEW, &filter).await?.documents.len()) }
        }
    };
    let newest = DocumentFilter { limit: 25, ..Default::default() };
    let by_status = DocumentFilter { tags: [Some("REJECTED".into()), None, None], ..newest.clone() };
    let by_rare_status = DocumentFilter { tags: [Some("COMPENSATING".into()), None, None], ..newest.clone() };
    let by_place = DocumentFilter { tags: [None, Some("sg".into()), Some("store711".into())], ..newest.clone() };
    let by_customer = DocumentFilter { field: Some(("customer_id".into(), "cust-7".into())), ..newest.clone() };
    let mut rows = Vec::new();
    for (name, filter) in [
        ("first page, 25 newest", newest),
        ("a page of one status", by_status),
        ("a page of a rare status (0.1%)", by_rare_status),
        ("a page of one country and channel", by_place),
        ("a page of one customer (no index)", by_customer),
    ] {
        let (p50, p99) = time(page(filter)).await?;
        rows.push((name, p50, p99));
    }
    let counts = || {
        let store = store.clone();
        async move { Ok(store.count_documents(VIEW, 0).await?.len()) }
    };
    let (p50, p99) = time(counts).await?;
    rows.push(("counts by status (the summary)", p50, p99));
    let due = || {
        let store = store.clone();
        async move { Ok(store.due_documents(VIEW, Timestamp::from_micros(i64::MAX), 1000).await?.len()) }
    };
    let (p50, p99) = time(due).await?;
    rows.push(("open orders, oldest 1,000 (stuck)", p50, p99));
    Ok(rows)
}

pub async fn run(args: BoardBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = EventStore::open_sqlite(&dir.path().join("order.db"), &StoreOptions::default()).await?;
    let mut out = std::io::stdout().lock();
    let baseline_orders = 10_000.min(args.orders);
    fill(&store, 0, baseline_orders).await?;
    let baseline = measure(&store).await?;
    let began = Instant::now();
    fill(&store, baseline_orders, args.orders).await?;
    let filled = began.elapsed();
    let large = measure(&store).await?;
    let size = std::fs::metadata(dir.path().join("order.db")).map_or(0, |m| m.len());
    writeln!(
        out,
        "read model: {} orders ({} MB of SQLite, {:.0} s to write); each figure: {RUNS} runs, ms",
        args.orders,
        size / 1_000_000,
        filled.max(Duration::from_millis(1)).as_secs_f64()
    )?;
    writeln!(
        out,
        "{:<36} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "measure", "10k p50", "10k p99", "large p50", "large p99", "ratio"
    )?;
    for ((name, b50, b99), (_, l50, l99)) in baseline.iter().zip(&large) {
        writeln!(out, "{name:<36} {b50:>12.2} {b99:>12.2} {l50:>12.2} {l99:>12.2} {:>8.1}", l50 / b50.max(1e-6))?;
    }
    let first_page = large[0].1;
    writeln!(out, "board_first_page_ms {first_page:.2}")?;
    store.close().await;
    Ok(())
}
