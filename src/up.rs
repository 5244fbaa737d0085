//! `udders up`: the whole system in one process, until Ctrl-C.

use std::io::Write;
use std::time::Duration;

use udders::system::{System, SystemConfig};

use crate::cli::UpArgs;
use crate::commands::shutdown_signal;

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let mut config = SystemConfig::new(&args.data_dir);
    config.http_addr = args.http_addr;
    config.broker_addr = args.broker_addr;
    config.partitions = args.saga.partitions.unwrap_or(config.partitions);
    config.deadline = args.saga.saga_deadline;
    config.fetch_wait_ms = args.saga.fetch_wait_ms;
    let system = System::start(config).await?;
    tokio::select! {
        ready = system.wait_ready(Duration::from_secs(60)) => ready?,
        () = shutdown_signal() => return system.stop().await,
    }
    let base = format!("http://{}", system.http_addr);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "udders is up: broker, six services and the POS API (data in {})", args.data_dir.display())?;
        writeln!(out, "  POS API      POST {base}/orders")?;
        writeln!(out, "  an order     GET  {base}/orders/{{order_id}}")?;
        writeln!(
            out,
            "  orders       GET  {base}/orders?status=&country=&channel=&limit=   stats: {base}/orders/stats"
        )?;
        writeln!(out, "  inventory    GET  {base}/inventory")?;
        writeln!(out, "  credit       GET  {base}/customers/{{customer_id}}/credit")?;
        writeln!(out, "  payments     GET  {base}/payments/{{order_id}}   shipments: {base}/shipments/{{order_id}}")?;
        writeln!(out, "  catalog      GET  {base}/catalog")?;
        writeln!(out, "  health       GET  {base}/livez  {base}/readyz  {base}/metrics")?;
        writeln!(
            out,
            "  broker       {} (udders tap 'order/>' --broker-addr {})",
            system.broker_addr, system.broker_addr
        )?;
        writeln!(out, "Ctrl-C stops intake, drains, then stops the broker.")?;
    }
    shutdown_signal().await;
    tracing::info!("stopping: intake first, then the services, then the broker");
    system.stop().await?;
    writeln!(std::io::stdout().lock(), "udders stopped")?;
    Ok(())
}

/// Parses `30s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 500ms or 2m"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    }
}
