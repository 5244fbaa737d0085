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
    config.admission_wait = args.saga.admission_wait;
    config.fetch_wait_ms = args.saga.fetch_wait_ms;
    config.retention = args.retention.retention();
    config.republish_window = args.retention.republish_window;
    let token = args.access.operator_token.clone().unwrap_or_else(udders_runtime::access::Access::random_token);
    config.operator_token = Some(token.clone());
    config.api_keys = args.access.api_keys.clone();
    config.store_options.cache_capacity = Some(args.memory.store_cache);
    config.store_options.sqlite_page_cache_kib = args.memory.sqlite_page_cache_kib;
    config.consumer_queue_kib = args.memory.consumer_queue_kib;
    let keys_required = config.api_keys.iter().any(|k| !k.trim().is_empty());
    let system = System::start(config).await?;
    tokio::select! {
        ready = system.wait_ready(Duration::from_secs(60)) => ready?,
        () = shutdown_signal() => return system.stop().await,
    }
    let base = format!("http://{}", system.http_addr);
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "udders is up: broker, the saga's six services (and validation-us), notification, insights and the POS API (data in {})",
            args.data_dir.display()
        )?;
        writeln!(out, "  console      {base}/")?;
        let origin = if args.access.operator_token.is_some() {
            "from UDDERS_OPERATOR_TOKEN"
        } else {
            "random, new at each start"
        };
        writeln!(
            out,
            "  operator     token {token} ({origin}): dead-letter replay and discard, and /admin changes, need it"
        )?;
        if keys_required {
            writeln!(out, "  POS          needs an API key (UDDERS_API_KEYS): Authorization: Bearer <key>")?;
        } else {
            writeln!(out, "  POS          open: no API keys set (set UDDERS_API_KEYS to require one)")?;
        }
        writeln!(out, "  POS API      POST {base}/orders")?;
        writeln!(out, "  an order     GET  {base}/orders/{{order_id}}")?;
        writeln!(
            out,
            "  orders       GET  {base}/orders?status=&country=&channel=&limit=   stats: {base}/orders/stats"
        )?;
        writeln!(out, "  inventory    GET  {base}/inventory")?;
        writeln!(out, "  credit       GET  {base}/customers/{{customer_id}}/credit")?;
        writeln!(out, "  payments     GET  {base}/payments/{{order_id}}   shipments: {base}/shipments/{{order_id}}")?;
        writeln!(out, "  notices      GET  {base}/customers/{{customer_id}}/notifications")?;
        writeln!(out, "  insights     GET  {base}/insights/channels/store711   {base}/insights/countries/sg")?;
        writeln!(out, "  catalog      GET  {base}/catalog   AsyncAPI: {base}/asyncapi.json")?;
        writeln!(out, "  operations   GET  {base}/orders/stuck   {base}/dead-letters")?;
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
