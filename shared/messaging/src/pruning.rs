//! Pruning: the outbox rows a relay has published and the inbox ids a
//! consumer has seen, deleted once they are older than a retention, so a
//! service's database stops growing with its traffic (docs/adr/0019).
//!
//! An outbox row is kept while a relay may still send it again: at least
//! its re-send window after a broker that lost everything
//! ([`crate::RelayConfig::republish_window`]). An inbox id is kept while a
//! duplicate of its record can still arrive: as long as the broker keeps
//! records (Kafka's default retention is 7 days), which also covers a
//! consumer that was down while the records it had already handled were
//! sent again.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use udders_eventstore::EventStore;

/// How long published outbox rows and inbox ids are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Published outbox rows older than this are deleted (unpublished rows
    /// never are).
    pub outbox: Duration,
    /// Inbox ids received longer ago than this are deleted.
    pub inbox: Duration,
}

impl Retention {
    /// One hour of published rows (six times the relay's default re-send
    /// window), seven days of inbox ids (Kafka's default retention).
    pub const DEFAULT: Retention =
        Retention { outbox: Duration::from_secs(3_600), inbox: Duration::from_secs(7 * 24 * 3_600) };

    /// The retention a relay with this re-send window can live with: the
    /// outbox keeps at least the window (a row pruned inside it could not be
    /// sent again after a broker loss), the inbox at least as long as the
    /// outbox (a row sent again must still meet its id).
    pub fn covering(self, republish_window: Duration) -> Retention {
        let outbox = self.outbox.max(republish_window);
        Retention { outbox, inbox: self.inbox.max(outbox) }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How often a pruner runs: each run deletes what aged out since the last,
/// a few statements' work at any rate this system takes.
pub const EVERY: Duration = Duration::from_secs(10);

/// Prunes `store` every `every` on `retention` until `cancel`. A failed run
/// (the database away) is logged and tried again at the next tick.
pub async fn run_pruner(
    store: EventStore,
    name: &'static str,
    retention: Retention,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match store.prune(retention.outbox, retention.inbox).await {
            Ok(pruned) if pruned.outbox_rows + pruned.inbox_rows > 0 => {
                tracing::debug!(service = name, outbox = pruned.outbox_rows, inbox = pruned.inbox_rows, "pruned");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(service = name, %error, "pruning failed; trying again at the next tick"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_covers_the_relays_re_send_window() {
        let (min, hour) = (Duration::from_secs(60), Duration::from_secs(3_600));
        let cases = [
            (
                Retention { outbox: hour, inbox: hour * 24 },
                min * 10,
                Retention { outbox: hour, inbox: hour * 24 },
                "kept",
            ),
            (
                Retention { outbox: min, inbox: min },
                min * 10,
                Retention { outbox: min * 10, inbox: min * 10 },
                "raised",
            ),
            (Retention { outbox: hour, inbox: min }, min, Retention { outbox: hour, inbox: hour }, "inbox ≥ outbox"),
        ];
        for (asked, window, got, why) in cases {
            assert_eq!(asked.covering(window), got, "{why}");
        }
    }
}
