//! The small commands: `broker`, `catalog`, `tap`.

use std::io::Write;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use udders_contracts::Pattern;
use udders_messaging::{EmbeddedBroker, KafkaSettings, ensure_topics, tap::tap as tap_events};

use crate::cli::{BrokerArgs, CatalogArgs, CatalogFormat, HealthcheckArgs, ReplayArgs, ServiceArgs, TapArgs};

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The service of this name, or an error that lists every name.
fn service_named(name: &str) -> anyhow::Result<udders_contracts::Service> {
    udders_contracts::Service::from_name(name).with_context(|| {
        let names: Vec<&str> = udders_contracts::Service::ALL.iter().map(|s| s.name()).collect();
        format!("{name:?} is not a service ({})", names.join(", "))
    })
}

/// `udders service NAME`: one service until SIGTERM or Ctrl-C, then a
/// bounded stop (intake first, then the consumer, then the relay's flush).
pub async fn service(args: ServiceArgs) -> anyhow::Result<()> {
    let service = service_named(&args.service)?;
    // Replicas of one container image differ by host name (and share pid 1).
    let instance = args.instance_id.unwrap_or_else(|| match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() => format!("{host}-{}", std::process::id()),
        _ => std::process::id().to_string(),
    });
    let config = udders::node::NodeConfig {
        service,
        database_url: args.database_url,
        bootstrap: args.bootstrap,
        http_addr: args.http_addr,
        instance: instance.clone(),
        partitions: args.saga.partitions.unwrap_or(udders::node::DEFAULT_PARTITIONS),
        replication_factor: args.replication_factor,
        min_insync_replicas: args.min_insync_replicas,
        fetch_wait_ms: args.saga.fetch_wait_ms,
        deadline: args.saga.saga_deadline,
        admission_wait: args.saga.admission_wait,
        sweep_every: std::time::Duration::from_millis(500),
        retention: args.retention.retention(),
        republish_window: args.retention.republish_window,
        order_url: args.order_url,
        access: udders_runtime::access::Access::new(args.access.operator_token.clone(), args.access.api_keys.clone()),
    };
    if args.access.operator_token.is_none() {
        tracing::warn!(
            "no UDDERS_OPERATOR_TOKEN: operator actions (dead-letter replay and discard, /admin changes) are refused"
        );
    }
    if service == udders_contracts::Service::Notification && config.order_url.is_none() {
        tracing::warn!("no UDDERS_ORDER_URL: orders placed before this service first ran will not be notified");
    }
    let node = udders::node::Node::start(config).await?;
    tracing::info!(%service, %instance, http = %node.http_addr, "service started");
    shutdown_signal().await;
    tracing::info!(%service, %instance, "stopping");
    match tokio::time::timeout(std::time::Duration::from_secs(10), node.stop()).await {
        Ok(stopped) => stopped,
        Err(_) => anyhow::bail!("{service} did not stop within 10 s"),
    }
}

/// `udders healthcheck URL`: exit 0 when `/readyz` says 200.
pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let url = format!("{}/readyz", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build()?;
    let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(response.status().is_success(), "GET {url}: {}", response.status());
    Ok(())
}

pub async fn broker(args: BrokerArgs) -> anyhow::Result<()> {
    let catalog = udders::catalog::udders()?;
    let broker = EmbeddedBroker::start(args.broker_addr).await.context("starting the embedded broker")?;
    let settings = KafkaSettings { partitions: args.partitions, ..KafkaSettings::new(broker.bootstrap()) };
    let topics: Vec<String> = catalog.all_topics().into_iter().collect();
    ensure_topics(&settings, &topics).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "udders broker: listening on {} (memory storage: keeps nothing across a restart)", broker.addr())?;
    writeln!(out, "topics ({} partitions each): {}", args.partitions, topics.join(", "))?;
    drop(out);
    shutdown_signal().await;
    broker.stop().await;
    Ok(())
}

pub fn catalog(args: CatalogArgs) -> anyhow::Result<()> {
    let catalog = udders::catalog::udders()?;
    let text = match args.format {
        CatalogFormat::Json => serde_json::to_string_pretty(&catalog.to_json())?,
        CatalogFormat::Asyncapi => udders_contracts::yaml::to_yaml(&catalog.to_asyncapi()),
        CatalogFormat::Markdown => catalog.to_markdown(),
    };
    let text = text.strip_suffix('\n').unwrap_or(&text);
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

pub async fn tap(args: TapArgs) -> anyhow::Result<()> {
    let pattern: Pattern = args.pattern.parse().with_context(|| format!("the pattern {:?}", args.pattern))?;
    let catalog = udders::catalog::udders()?;
    let topics: Vec<String> = {
        let matched: std::collections::BTreeSet<&str> = catalog.matched_by(&pattern).map(|e| e.topic()).collect();
        anyhow::ensure!(!matched.is_empty(), "the pattern {pattern} matches no catalogued event");
        matched.into_iter().map(str::to_owned).collect()
    };
    let since = (!args.from_beginning).then(|| udders_kernel::Timestamp::from_micros(now_micros()));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    let settings = KafkaSettings::new(args.broker_addr);
    eprintln!("tap: listening for {pattern} on {} (Ctrl-C to stop)", topics.join(", "));
    tap_events(&settings, &pattern, &topics, since, cancel, |line| {
        let _ = writeln!(std::io::stdout().lock(), "{}  key={}  id={}", line.subject, line.key, line.id);
    })
    .await?;
    Ok(())
}

fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let service = service_named(&args.service)?;
    let path = args.data_dir.join(format!("{service}.db"));
    anyhow::ensure!(path.exists(), "no database at {}", path.display());
    let store = udders_eventstore::EventStore::open_sqlite(&path, &udders_eventstore::StoreOptions::default()).await?;
    let started = std::time::Instant::now();
    let folded = udders::registry::module(service).replay(&store).await?;
    store.close().await;
    writeln!(
        std::io::stdout().lock(),
        "{service}: read models rebuilt from {folded} aggregates in {:.2}s",
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}
