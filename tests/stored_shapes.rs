//! Stores written by an older build, read by this one. An order placed
//! before orders had sizes and a currency is stored as `Placed` of event
//! schema 1; this build upcasts it when it loads the order. A stock
//! snapshot taken before stocks counted `stocked` is of state schema 1;
//! this build ignores it and folds the stock from its events. Both run on a
//! real SQLite store, with the rows written the way the older build wrote
//! them.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use serde_json::json;
use udders_contracts::Integration;
use udders_eventstore::{Aggregate, EventMetadata, EventStore, ExpectedVersion, NewEvent, StoreOptions, StreamId};
use udders_inventory_domain::{Stock, StockCommand, StockEvent, StockState};
use udders_kernel::{Decider, EventId, Quantity, Timestamp};
use udders_order_domain::{Order, Status};

async fn sqlite_store(dir: &tempfile::TempDir) -> EventStore {
    EventStore::open_sqlite(&dir.path().join("old.sqlite"), &StoreOptions::default()).await.expect("the store opens")
}

/// An event row exactly as the older build appended it.
fn old_row(event_type: &str, schema_version: u16, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: EventId::from_uuid(uuid::Uuid::new_v4()),
        event_type: event_type.to_owned(),
        schema_version,
        payload,
        metadata: EventMetadata { correlation_id: None, causation_id: None, occurred_at: Timestamp::from_micros(1) },
    }
}

#[tokio::test]
async fn an_order_placed_by_the_older_build_loads_with_tubs_in_its_countrys_currency() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let id = uuid::Uuid::new_v4().to_string();
    // `Placed` of event schema 1: the placement had no `sizes` and no `currency`.
    let placed_v1 = json!({
        "order": {
            "order_id": id, "customer_id": "cust-old", "channel": "web", "country": "us",
            "items": [{"flavor": "mango", "quantity": 2, "unit_price": 600},
                      {"flavor": "vanilla", "quantity": 1, "unit_price": 500}],
            "total": 1700, "card_token": "tok_visa", "postal_code": "94103"
        },
        "schema_version": "1.2",
        "placed_at": 1_000_000, "deadline": 31_000_000,
        "request_fingerprint": null,
        "correlation_id": uuid::Uuid::nil()
    });
    let advanced_v1 = json!({"status": "VALIDATED", "at": 2_000_000});
    store
        .append(
            &StreamId::new(Order::CATEGORY, &id),
            ExpectedVersion::NoStream,
            &[old_row("Placed", 1, placed_v1), old_row("Advanced", 1, advanced_v1)],
            &[],
        )
        .await
        .expect("the old rows are written");

    let order = store.load::<Order>(&id).await.expect("an order of schema 1 loads");
    assert_eq!(order.version, 2);
    assert_eq!(order.state.status, Status::Validated, "events that kept their shape read as they were");
    let placement = order.state.placement.expect("placed");
    assert_eq!(placement.sizes, ["tub", "tub"], "one size per line, tubs as before");
    assert_eq!(placement.currency, "USD", "the currency of its country");
    let Integration::OrderPlacedV1_2(published) = placement.published() else { panic!("a 1.2 order publishes 1.2") };
    assert_eq!(published.items[0].sku, "mango-tub");
    assert_eq!((published.total.amount, published.total.currency.as_str()), (1700, "USD"));

    // A schema this build does not know is an error that names it, not a guess.
    let other = uuid::Uuid::new_v4().to_string();
    store
        .append(
            &StreamId::new(Order::CATEGORY, &other),
            ExpectedVersion::NoStream,
            &[old_row("Placed", 9, json!({}))],
            &[],
        )
        .await
        .unwrap();
    let error = store.load::<Order>(&other).await.expect_err("schema 9 is refused");
    assert!(error.to_string().contains("not 9"), "{error}");
}

/// The stock as the older build kept it: its state had no `stocked`, and
/// it snapshotted after every event.
#[derive(Debug)]
struct StockOfTheOlderBuild;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct OldStockState {
    on_hand: i64,
    reserved: i64,
    shipped: i64,
}

impl Decider for StockOfTheOlderBuild {
    type State = OldStockState;
    type Command = StockEvent;
    type Event = StockEvent;
    type Error = std::convert::Infallible;

    fn initial_state() -> OldStockState {
        OldStockState::default()
    }

    fn decide(_: &OldStockState, event: StockEvent) -> Result<Vec<StockEvent>, Self::Error> {
        Ok(vec![event])
    }

    fn evolve(state: OldStockState, event: &StockEvent) -> OldStockState {
        let new = Stock::evolve(
            StockState { on_hand: state.on_hand, reserved: state.reserved, shipped: state.shipped, stocked: 0 },
            event,
        );
        OldStockState { on_hand: new.on_hand, reserved: new.reserved, shipped: new.shipped }
    }
}

impl Aggregate for StockOfTheOlderBuild {
    const CATEGORY: &'static str = Stock::CATEGORY;
    const SNAPSHOT_EVERY: Option<NonZeroU64> = NonZeroU64::new(1);
    const STATE_SCHEMA: u32 = 1;
}

#[tokio::test]
async fn a_stock_snapshot_of_the_older_build_is_passed_over_and_the_stock_folded_from_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let mut old = store.load::<StockOfTheOlderBuild>("mango-us").await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let events = vec![
        StockEvent::Restocked { quantity: Quantity::new(100) },
        StockEvent::Reserved { order: "o-1".into(), quantity: Quantity::new(3) },
        StockEvent::Shipped { order: "o-1".into(), quantity: Quantity::new(3) },
        StockEvent::Restocked { quantity: Quantity::new(20) },
    ];
    tx.record(&mut old, events, EventMetadata::default()).await.unwrap();
    tx.commit().await.unwrap();
    let written = store.load::<StockOfTheOlderBuild>("mango-us").await.unwrap();
    assert_eq!(written.snapshot_version, Some(4), "the older build left a snapshot without `stocked`");

    let stock = store.load::<Stock>("mango-us").await.expect("the stock loads");
    assert_eq!(stock.snapshot_version, None, "a snapshot of state schema 1 is not this build's");
    assert_eq!(stock.state, StockState { on_hand: 117, reserved: 0, shipped: 3, stocked: 120 });
    let Ok(more) = Stock::decide(&stock.state, StockCommand::Restock(Quantity::new(5))) else { unreachable!() };
    assert_eq!(more, [StockEvent::Restocked { quantity: Quantity::new(5) }]);
}
