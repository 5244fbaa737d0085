//! `udders load`: drives a running system at a steady rate with a mix of
//! happy and failing orders, then reports throughput, POST-to-terminal
//! latency, outcomes, and the invariants.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use udders_kernel::Timestamp;

use crate::cli::LoadArgs;

/// The order mix: (weight, what it exercises, body for order `i`).
/// `udders bench floor` posts its happy ones.
pub(crate) fn body(i: u64, run: &str) -> (&'static str, Value) {
    let flavors = ["vanilla", "chocolate", "mango", "rumraisin"];
    let countries = ["sg", "my", "kr", "us", "id", "th"];
    let channels = ["lazada", "shopee", "store711", "web", "pos"];
    let mut order = json!({
        "customer_id": format!("cust-{run}-{}", i % 5000),
        "channel": channels[(i % 5) as usize],
        "country": countries[((i / 5) % 6) as usize],
        "items": [{ "flavor": flavors[((i / 30) % 4) as usize], "quantity": 1 }],
        "payment": { "card_token": "tok_visa" },
        "delivery": { "postal_code": "40213" },
    });
    let kind = match i % 20 {
        0 => {
            order["items"][0]["flavor"] = json!("bubblegum");
            "invalid"
        }
        1 => {
            order["customer_id"] = json!("cust-broke");
            "no-credit"
        }
        2 => {
            order["items"][0]["flavor"] = json!("durian");
            "no-stock"
        }
        3 => {
            order["payment"]["card_token"] = json!("tok_declined");
            "declined"
        }
        4 => {
            order["delivery"]["postal_code"] = json!("00000");
            "undeliverable"
        }
        _ => "happy",
    };
    // Half the US orders are placed in payload 1.2, which validation-us
    // validates; the mix of outcomes is the same.
    if order["country"] == "us" && (i / 30) % 2 == 1 {
        order["schema_version"] = json!("1.2");
        order["items"][0]["size"] = json!(["cup", "pint", "tub"][(i % 3) as usize]);
    }
    (kind, order)
}

#[derive(Debug, Deserialize)]
struct Row {
    order_id: String,
    status: String,
    reason: Option<String>,
    placed_at: String,
    updated_at: String,
}

/// The share of the mix that is happy (every `body` but five in twenty).
const HAPPY_SHARE: f64 = 0.75;

/// How far the completed share may stray from the happy share, points.
const MIX_TOLERANCE: f64 = 2.0;

/// The mix as it came out: the share of this run's accepted orders that
/// completed against the share that was meant to (the happy ones), and each
/// kind's outcomes. A drift of more than [`MIX_TOLERANCE`] points is said
/// (stock or credit running out turns happy orders into refusals, and the
/// figures then measure another workload).
fn mix(kinds: &HashMap<String, &'static str>, rows: &[Row]) -> String {
    let mut by_kind: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut completed = 0;
    for row in rows {
        if let Some(kind) = kinds.get(&row.order_id) {
            *by_kind.entry(kind).or_default().entry(row.status.as_str()).or_default() += 1;
            completed += usize::from(row.status == "COMPLETED");
        }
    }
    let seen: usize = by_kind.values().flat_map(BTreeMap::values).sum();
    if seen == 0 {
        return "mix         no order of this run seen".to_owned();
    }
    let share = |n: usize| 100.0 * n as f64 / seen as f64;
    let happy = by_kind.get("happy").map_or(0, |s| s.values().sum());
    let drift = share(completed) - 100.0 * HAPPY_SHARE;
    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(kind, outcomes)| {
            let outcomes: Vec<String> = outcomes.iter().map(|(s, n)| format!("{s} {n}")).collect();
            format!("{kind} ({})", outcomes.join(", "))
        })
        .collect();
    let verdict = if drift.abs() > MIX_TOLERANCE {
        format!(
            "DRIFTED by {drift:+.1} points (more than {MIX_TOLERANCE}): stock or credit ran out, or refusals changed"
        )
    } else {
        format!("within {MIX_TOLERANCE} points")
    };
    format!(
        "mix         {:.1}% of {seen} accepted completed against the mix's {:.0}% ({:.1}% were happy): {verdict}\n            {}",
        share(completed),
        100.0 * HAPPY_SHARE,
        share(happy),
        kinds.join("; ")
    )
}

/// The most stock this run's orders can hold at once, per (flavour,
/// country): one unit for each order that reaches inventory (all but the
/// invalid and the out-of-stock flavour), as if none had finished yet.
fn stock_needed(orders: u64, run: &str) -> BTreeMap<(String, String), i64> {
    let mut needed = BTreeMap::new();
    for i in 0..orders {
        let (kind, order) = body(i, run);
        if kind == "invalid" || kind == "no-stock" {
            continue;
        }
        let (flavor, country) = (&order["items"][0]["flavor"], &order["country"]);
        let key = (flavor.as_str().unwrap_or_default().to_owned(), country.as_str().unwrap_or_default().to_owned());
        *needed.entry(key).or_default() += order["items"][0]["quantity"].as_i64().unwrap_or(1);
    }
    needed
}

/// Adds what the run needs to each stock short of it, through the operator
/// API, and says what it did: the run then measures the mix it posts, not a
/// warehouse running dry.
async fn restock(
    client: &reqwest::Client,
    inventory: &str,
    token: Option<&str>,
    needed: &BTreeMap<(String, String), i64>,
) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Stock {
        flavor: String,
        country: String,
        available: i64,
    }
    let stocks: Vec<Stock> =
        client.get(format!("{inventory}/inventory")).send().await?.error_for_status()?.json().await?;
    let available: HashMap<(String, String), i64> =
        stocks.into_iter().map(|s| ((s.flavor, s.country), s.available)).collect();
    let short: Vec<(&(String, String), i64)> = needed
        .iter()
        .map(|(key, need)| (key, need - available.get(key).copied().unwrap_or(0)))
        .filter(|(_, missing)| *missing > 0)
        .collect();
    if short.is_empty() {
        return Ok(format!("stock       enough for this run in each of the {} stocks it orders from", needed.len()));
    }
    let Some(token) = token else {
        let missing: i64 = short.iter().map(|(_, m)| m).sum();
        return Ok(format!(
            "stock       NOT restocked (no --operator-token): {} stocks are {missing} units short of what this run \
             can hold, and the mix may drift",
            short.len()
        ));
    };
    let mut added = 0;
    for ((flavor, country), missing) in &short {
        client
            .post(format!("{inventory}/admin/stock/{flavor}/{country}"))
            .bearer_auth(token)
            .json(&json!({ "add": missing }))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("restocking {flavor} in {country}"))?;
        added += missing;
    }
    Ok(format!(
        "stock       restocked {} of the {} stocks this run orders from ({added} units, POST /admin/stock), \
         so none runs out",
        short.len(),
        needed.len()
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let before: Value =
        client.get(format!("{base}/orders/stats")).send().await.context("is udders up?")?.json().await?;
    let already = before["total"].as_u64().unwrap_or(0);
    let run_id = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs());
    let inventory = args.inventory_url.as_deref().map_or(base.clone(), |url| url.trim_end_matches('/').to_owned());
    let stock =
        restock(&client, &inventory, args.operator_token.as_deref(), &stock_needed(args.orders, &run_id)).await?;
    let _ = writeln!(std::io::stderr(), "{stock}");
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // 503 at the door: counted, and no order is sent until its Retry-After passed.
    let at_capacity = Arc::new(AtomicU64::new(0));
    let resume_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    // What each accepted order was meant to exercise (its order id: its kind).
    let kinds: Arc<std::sync::Mutex<HashMap<String, &'static str>>> = Arc::default();
    let mut backed_off = 0u64;
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut err = std::io::stderr();
    for i in 0..args.orders {
        ticker.tick().await;
        if resume_at.lock().ok().and_then(|r| *r).is_some_and(|at| Instant::now() < at) {
            backed_off += 1;
            continue;
        }
        let permit = in_flight.clone().acquire_owned().await?;
        let (kind, order) = body(i, &run_id);
        let (client, url, ok, refused) = (client.clone(), format!("{base}/orders"), accepted.clone(), failed.clone());
        let (full, resume, kinds) = (at_capacity.clone(), resume_at.clone(), kinds.clone());
        tokio::spawn(async move {
            match client.post(url).json(&order).send().await {
                Ok(r) if r.status().as_u16() == 202 => {
                    let answer: Value = r.json().await.unwrap_or_default();
                    if let (Some(id), Ok(mut kinds)) = (answer["order_id"].as_str(), kinds.lock()) {
                        kinds.insert(id.to_owned(), kind);
                    }
                    ok.fetch_add(1, Ordering::Relaxed)
                }
                Ok(r) if r.status().as_u16() == 503 => {
                    let wait = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    let until = Instant::now() + Duration::from_secs(wait.unwrap_or(1));
                    if let Ok(mut resume) = resume.lock() {
                        *resume = Some(resume.map_or(until, |at| at.max(until)));
                    }
                    full.fetch_add(1, Ordering::Relaxed)
                }
                _ => refused.fetch_add(1, Ordering::Relaxed),
            };
            drop(permit);
        });
        if i % 200 == 0 {
            let done = accepted.load(Ordering::Relaxed);
            let _ = write!(
                err,
                "\rposting  {:>7}/{} accepted  {:>5.1}s",
                done,
                args.orders,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let _ = in_flight.acquire_many(args.concurrency as u32).await?;
    let posted_in = started.elapsed();
    let accepted = accepted.load(Ordering::Relaxed);
    let at_capacity = at_capacity.load(Ordering::Relaxed);
    let _ = writeln!(
        err,
        "\rposted   {accepted}/{} accepted in {:.1}s ({} failed, {at_capacity} refused at capacity, {backed_off} not sent during Retry-After)",
        args.orders,
        posted_in.as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    if args.wait_secs == 0 {
        writeln!(
            std::io::stdout().lock(),
            "orders      {accepted} accepted of {} posted; not waiting for them (--wait-secs 0)",
            args.orders
        )?;
        return Ok(());
    }
    // Wait for every order to reach a terminal status.
    let deadline = Instant::now() + Duration::from_secs(args.wait_secs);
    let terminal = loop {
        let stats: Value = client.get(format!("{base}/orders/stats")).send().await?.json().await?;
        let by = &stats["by_status"];
        let terminal: u64 = ["COMPLETED", "REJECTED", "CANCELLED"].iter().map(|s| by[s].as_u64().unwrap_or(0)).sum();
        let total = stats["total"].as_u64().unwrap_or(0);
        let _ = write!(err, "\rsettling {:>7}/{} terminal  {:>5.1}s", terminal, total, started.elapsed().as_secs_f64());
        if terminal >= total || Instant::now() > deadline {
            break terminal;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    let _ = writeln!(err);
    let rows: Vec<Row> = udders::invariants::orders(&client, &base).await?;
    let mut latencies: Vec<f64> = rows
        .iter()
        .filter(|r| udders::invariants::is_terminal(&r.status))
        .filter_map(|r| {
            let (a, b) = (Timestamp::parse_rfc3339(&r.placed_at).ok()?, Timestamp::parse_rfc3339(&r.updated_at).ok()?);
            Some((b.micros() - a.micros()) as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut at = udders::invariants::Endpoints::one(&base);
    for (url, given) in [
        (&mut at.credit, &args.credit_url),
        (&mut at.inventory, &args.inventory_url),
        (&mut at.payment, &args.payment_url),
        (&mut at.fulfillment, &args.fulfillment_url),
        (&mut at.notification, &args.notification_url),
    ] {
        if let Some(given) = given {
            *url = given.trim_end_matches('/').to_owned();
        }
    }
    let report = udders::invariants::check_settling(&client, &at, Duration::from_secs(5)).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "orders      {accepted} accepted of {} posted at {}/s ({} already in the system)",
        args.orders, args.rate, already
    )?;
    writeln!(
        out,
        "throughput  {:.0} terminal orders/s ({} in {:.1}s, from the first POST to the last terminal status)",
        (terminal.saturating_sub(already)) as f64 / elapsed.as_secs_f64(),
        terminal.saturating_sub(already),
        elapsed.as_secs_f64()
    )?;
    writeln!(
        out,
        "latency     POST to terminal: p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    )?;
    writeln!(
        out,
        "outcomes    {}",
        report.by_status.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ")
    )?;
    let kinds = kinds.lock().map(|k| k.clone()).unwrap_or_default();
    writeln!(out, "{}", mix(&kinds, &rows))?;
    writeln!(out, "{stock}")?;
    let expired = rows
        .iter()
        .filter(|r| r.status == "CANCELLED" && r.reason.as_deref().is_some_and(|r| r.contains("deadline")))
        .count();
    writeln!(
        out,
        "refused     {at_capacity} at the door (503, capacity), {backed_off} not sent while honouring Retry-After; \
         {expired} accepted orders expired (saga deadline)"
    )?;
    if report.notices_unseen > 0 {
        writeln!(
            out,
            "notices     {} terminal orders not checked for their notices: their customer has more than one \
             listing holds (cust-broke takes one order in twenty)",
            report.notices_unseen
        )?;
    }
    if report.holds() {
        writeln!(out, "invariants  hold")?;
    } else {
        writeln!(out, "invariants  BROKEN ({}):", report.violations.len())?;
        for v in report.violations.iter().take(20) {
            writeln!(out, "  {v}")?;
        }
        anyhow::bail!("invariants broken");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(outcomes: &[(&str, &str)]) -> Vec<Row> {
        outcomes
            .iter()
            .map(|(id, status)| Row {
                order_id: (*id).to_owned(),
                status: (*status).to_owned(),
                reason: None,
                placed_at: String::new(),
                updated_at: String::new(),
            })
            .collect()
    }

    #[test]
    fn the_mix_says_when_its_completed_share_strays_from_the_happy_share() {
        let kinds: HashMap<String, &'static str> =
            [("a", "happy"), ("b", "happy"), ("c", "happy"), ("d", "declined")].map(|(i, k)| (i.to_owned(), k)).into();
        let held = mix(&kinds, &rows(&[("a", "COMPLETED"), ("b", "COMPLETED"), ("c", "COMPLETED"), ("d", "REJECTED")]));
        assert!(held.contains("75.0% of 4 accepted completed") && held.contains("within 2 points"), "{held}");
        assert!(held.contains("declined (REJECTED 1); happy (COMPLETED 3)"), "{held}");
        // Stock ran out: a happy order was refused.
        let drifted =
            mix(&kinds, &rows(&[("a", "COMPLETED"), ("b", "REJECTED"), ("c", "COMPLETED"), ("d", "REJECTED")]));
        assert!(drifted.contains("DRIFTED by -25.0 points"), "{drifted}");
        // Orders of other runs are not this run's mix.
        let other = mix(
            &kinds,
            &rows(&[("x", "REJECTED"), ("a", "COMPLETED"), ("b", "COMPLETED"), ("c", "COMPLETED"), ("d", "REJECTED")]),
        );
        assert!(other.contains("of 4 accepted"), "{other}");
    }

    #[test]
    fn the_stock_a_run_needs_counts_every_order_that_reaches_inventory() {
        // One in twenty is invalid and one in twenty orders durian (none in stock).
        let needed = stock_needed(2_000, "r");
        assert_eq!(needed.values().sum::<i64>(), 1_800);
        assert!(!needed.keys().any(|(flavor, _)| flavor == "durian" || flavor == "bubblegum"), "{needed:?}");
        assert_eq!(needed.len(), 24, "4 flavours in 6 countries: {needed:?}");
    }
}
