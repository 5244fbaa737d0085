//! Rebuilding read models from the event log, with the projections the live
//! handlers use, so a rebuilt model equals the live one.

use std::collections::BTreeMap;

use udders_eventstore::{EventStore, StoreError, Tx, decode_event};
use udders_kernel::ReadModel;

use crate::record::project;

/// Rebuilds the documents of one read model from every event of its
/// aggregate category. Returns how many aggregates were folded. Run it in
/// the transaction that cleared the read models first.
pub async fn rebuild<A: ReadModel>(store: &EventStore, tx: &mut Tx) -> Result<usize, StoreError> {
    let mut streams: BTreeMap<String, Vec<A::Event>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for recorded in page.iter().filter(|e| e.category == A::CATEGORY) {
            streams.entry(recorded.stream.clone()).or_default().push(decode_event::<A>(recorded)?);
        }
    }
    let prefix = A::CATEGORY.len() + 1;
    for (stream, events) in &streams {
        project::<A>(tx, stream.get(prefix..).unwrap_or(""), A::initial_state(), events).await?;
    }
    Ok(streams.len())
}

/// Drops a service's read models and rebuilds them from its log, for a
/// service whose read models all come from aggregate `A`. Returns how many
/// aggregates were folded.
pub async fn replay_one<A: ReadModel>(store: &EventStore) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    tx.clear_documents().await?;
    let folded = rebuild::<A>(store, &mut tx).await?;
    tx.commit().await?;
    Ok(folded)
}
