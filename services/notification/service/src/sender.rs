//! The delivery queue. The handler queues a notice in the transaction that
//! records the fact it tells (an outbox, in effect): the read model marks
//! the order's document due, and this sender takes due documents off the
//! store's due index, hands each due notice to the courier, and records the
//! attempt (delivered, or failed with the time of the next). A crash
//! between the courier's answer and the record sends the notice again,
//! under the same notification id, which the courier takes only once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use udders_eventstore::{EventStore, StoreError};
use udders_kernel::{Decider, ReadModel, Timestamp};
use udders_notification_domain::{Notices, NoticesCommand, notification_id};
use udders_runtime::{Cause, Outbound, change_reference, clock};

use crate::courier::{Courier, Message};

/// Documents looked at per round.
const BATCH: u32 = 200;

/// Sends every notice due at `now`; returns how many attempts were made.
pub async fn send_due(
    store: &EventStore,
    outbound: &Outbound,
    courier: &impl Courier,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut attempts = 0;
    for order_id in store.due_documents(Notices::VIEW, now, BATCH).await? {
        let mut tx = store.begin().await?;
        let state = tx.load::<Notices>(&order_id).await?.state;
        tx.rollback().await?;
        let Some(customer_id) = state.customer_id.clone() else { continue };
        for notice in state.due(now) {
            let message = Message {
                notification_id: notification_id(&order_id, notice.kind),
                customer_id: customer_id.clone(),
                subject: notice.kind.subject(&order_id),
                body: notice.detail.clone(),
            };
            let result = courier.send(&message).await;
            if let Err(error) = &result {
                tracing::debug!(notification = %message.notification_id, %error, "the courier did not take a notice");
            }
            attempts += 1;
            let command = NoticesCommand::Report { kind: notice.kind, result, at: clock::now() };
            let cause = Cause::new_saga("none".to_owned(), "all".to_owned(), "notification".to_owned());
            let recorded = change_reference::<Notices>(
                store,
                outbound,
                &order_id,
                &cause,
                |state| Ok(Notices::decide(state, command.clone()).unwrap_or_default()),
                |_, _| None,
            )
            .await;
            if let Err(problem) = recorded {
                // The notice stays due: the next round tries again, and the
                // courier will not deliver it twice.
                tracing::warn!(%order_id, detail = %problem.detail, "cannot record a delivery attempt");
            }
        }
    }
    Ok(attempts)
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
            tracing::warn!(%error, "the notification sender failed; trying again");
        }
    }
}
