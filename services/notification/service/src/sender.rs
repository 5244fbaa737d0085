//! The delivery queue. The handler queues a notice in the transaction that
//! records the fact it tells (an outbox, in effect): the read model marks
//! the order's document due, and this sender takes due documents off the
//! store's due index, hands each due notice to the courier, and records
//! the round's attempts (delivered, or failed with the time of the next)
//! in one transaction. A crash between the courier's answer and the record
//! sends the notice again, under the same notification id, which the
//! courier takes only once.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use udders_eventstore::{EventStore, StoreError};
use udders_kernel::{Decider, ReadModel, Timestamp};
use udders_notification_domain::{Notices, NoticesCommand, NoticesView};
use udders_runtime::{Cause, Outbound, clock, record_viewed};

use crate::courier::{Courier, Message};

/// Documents looked at per round.
const BATCH: u32 = 500;

/// Sends every notice due at `now`; returns how many attempts were made.
pub async fn send_due(
    store: &EventStore,
    outbound: &Outbound,
    courier: &impl Courier,
    now: Timestamp,
) -> Result<usize, StoreError> {
    // What is due, from the read model; then the courier, outside any
    // transaction.
    let mut reports: BTreeMap<String, Vec<NoticesCommand>> = BTreeMap::new();
    let mut sent = 0;
    for doc in store.due_documents_read(Notices::VIEW, now, BATCH).await? {
        let order_id = doc.key;
        let view: NoticesView = serde_json::from_value(doc.doc)
            .map_err(|e| StoreError::Corrupt { what: format!("notices of {order_id}"), reason: e.to_string() })?;
        for notice in view.due(now) {
            let message = Message {
                notification_id: notice.notification_id.clone(),
                customer_id: view.customer_id.clone(),
                subject: notice.subject.clone(),
                body: notice.detail.clone(),
            };
            let result = courier.send(&message).await;
            if let Err(error) = &result {
                tracing::debug!(notification = %message.notification_id, %error, "the courier did not take a notice");
            }
            let report = NoticesCommand::Report { kind: notice.kind, result, at: clock::now() };
            reports.entry(order_id.clone()).or_default().push(report);
            sent += 1;
        }
    }
    if reports.is_empty() {
        return Ok(0);
    }
    // One transaction records the round. On a conflict with the consumer
    // (PostgreSQL) the round is decided again on the newer states; a notice
    // delivered meanwhile decides nothing.
    let cause = Cause::new_saga("none".to_owned(), "all".to_owned(), "notification".to_owned());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut tx = store.begin().await?;
        let recorded: Result<(), StoreError> = async {
            for (order_id, commands) in &reports {
                let mut notices = tx.load::<Notices>(order_id).await?;
                let (mut state, mut events) = (notices.state.clone(), Vec::new());
                for command in commands {
                    let Ok(decided) = Notices::decide(&state, command.clone());
                    state = decided.iter().fold(state, Notices::evolve);
                    events.extend(decided);
                }
                record_viewed(&mut tx, &mut notices, events, &cause, outbound, |_| None).await?;
            }
            Ok(())
        }
        .await;
        match recorded {
            Ok(()) => match tx.commit().await {
                Ok(()) => return Ok(sent),
                Err(StoreError::Conflict { .. }) if attempts < 3 => continue,
                Err(error) => return Err(error),
            },
            Err(StoreError::Conflict { .. }) if attempts < 3 => {
                let _ = tx.rollback().await;
            }
            Err(error) => {
                let _ = tx.rollback().await;
                return Err(error);
            }
        }
    }
}

/// Runs [`send_due`] every `every` until `cancel`.
pub async fn run_sender(
    store: EventStore,
    outbound: Outbound,
    courier: impl Courier,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(error) = send_due(&store, &outbound, &courier, clock::now()).await {
            // The notices stay due: the next round tries again, and the
            // courier will not deliver any of them twice.
            tracing::warn!(%error, "the notification sender failed; trying again");
        }
    }
}
