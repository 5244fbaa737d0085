//! The inventory handler on a real, seeded store, one integration event at
//! a time (`udders_runtime::testing`): a valid order's lines are held and
//! published, a compensation gives them back, and an order of what is out
//! of stock is refused.

use udders_contracts::Integration;
use udders_contracts::events::{OrderLine, OrderValidated, StepRefused, StockMoved};
use udders_inventory::{InventoryHandler, SERVICE, SUBSCRIPTIONS, initial_stock, seed};
use udders_inventory_domain::count;
use udders_runtime::testing::{Published, ServiceHarness};

fn lines(flavor: &str, quantity: u32) -> Vec<OrderLine> {
    vec![OrderLine { flavor: flavor.into(), quantity, unit_price: 500 }]
}

fn order_valid(order: &str, flavor: &str, quantity: u32) -> Integration {
    Integration::OrderValidated(OrderValidated {
        order_id: order.into(),
        customer_id: "cust-1".into(),
        country: "sg".into(),
        items: lines(flavor, quantity),
        total: 500 * i64::from(quantity),
        card_token: "tok_visa".into(),
        postal_code: None,
        rule_set: "1.1".into(),
    })
}

fn integrations(published: &[Published]) -> Vec<Integration> {
    published.iter().map(|p| p.integration.clone()).collect()
}

/// `(reserved, available)` of a stock, from its read model.
async fn stock(inventory: &ServiceHarness<InventoryHandler>, id: &str) -> (i64, i64) {
    let doc = inventory.store().document("inventory", id).await.unwrap().expect("the stock's document").doc;
    (doc["reserved"].as_i64().unwrap(), doc["available"].as_i64().unwrap())
}

async fn seeded() -> ServiceHarness<InventoryHandler> {
    let inventory = ServiceHarness::start(SERVICE, SUBSCRIPTIONS, InventoryHandler::new).await.unwrap();
    assert!(seed(inventory.store(), inventory.outbound()).await.unwrap() > 0);
    inventory
}

#[tokio::test]
async fn inventory_holds_a_valid_order_and_releases_it_when_payment_is_declined() {
    let mut inventory = seeded().await;
    let reserved = inventory.deliver(&order_valid("o-1", "vanilla", 3)).await.unwrap();
    assert_eq!(
        integrations(&reserved),
        [Integration::StockReserved(StockMoved {
            order_id: "o-1".into(),
            country: "sg".into(),
            items: lines("vanilla", 3),
            cause: None,
        })]
    );
    assert_eq!(stock(&inventory, "vanilla-sg").await, (3, count(initial_stock("vanilla")) - 3));

    let declined = StepRefused { order_id: "o-1".into(), reason: "card declined by the issuer".into() };
    let released = inventory.deliver(&Integration::PaymentDeclined(declined)).await.unwrap();
    assert_eq!(
        integrations(&released),
        [Integration::StockReleased(StockMoved {
            order_id: "o-1".into(),
            country: "sg".into(),
            items: lines("vanilla", 3),
            cause: Some("payment/declined".into()),
        })]
    );
    assert_eq!(stock(&inventory, "vanilla-sg").await, (0, count(initial_stock("vanilla"))));
}

#[tokio::test]
async fn an_order_of_what_is_out_of_stock_is_refused_and_holds_nothing() {
    let mut inventory = seeded().await;
    let refused = inventory.deliver(&order_valid("o-2", "durian", 1)).await.unwrap();
    assert_eq!(
        integrations(&refused),
        [Integration::StockRejected(StepRefused {
            order_id: "o-2".into(),
            reason: "out of stock: durian in sg: 1 wanted, 0 available".into(),
        })]
    );
    assert_eq!(stock(&inventory, "durian-sg").await, (0, 0));
}
