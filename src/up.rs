//! `udders up`: the one-process demo.
//!
//! Today it opens the six service databases (creating and migrating them)
//! and reports what they hold. The broker, the services and the HTTP API
//! come with the messaging and saga layers.

use anyhow::Context;
use udders_eventstore::{EventStore, StoreOptions};

use crate::cli::UpArgs;

/// The six services, each with its own database.
pub const SERVICES: [&str; 6] = ["order", "validation", "credit", "inventory", "payment", "fulfillment"];

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let mut out = String::new();
    for service in SERVICES {
        let path = args.data_dir.join(format!("{service}.db"));
        let store = EventStore::open_sqlite(&path, &StoreOptions::default())
            .await
            .with_context(|| format!("opening the {service} store at {}", path.display()))?;
        let events = store.head_position().await?;
        let backlog = store.outbox_backlog().await?;
        out.push_str(&format!(
            "  {service:<12} {:<28} events: {events:<8} outbox backlog: {backlog}\n",
            path.display()
        ));
        store.close().await;
    }
    #[allow(clippy::print_stdout)]
    {
        println!("udders: event stores ready\n{out}");
        println!(
            "The broker, the six services and the POS API are not built yet (see 'What works today' in README.md)."
        );
    }
    Ok(())
}
