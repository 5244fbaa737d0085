//! The credit handler on a real store, one integration event at a time
//! (`udders_runtime::testing`): what it publishes, what its account shows,
//! and that a redelivered record changes nothing.

use udders_contracts::Integration;
use udders_contracts::events::{CreditMoved, OrderLine, OrderValidated, StepRefused};
use udders_credit::{CreditHandler, SERVICE, SUBSCRIPTIONS};
use udders_runtime::testing::{Published, ServiceHarness};

fn order_valid(order: &str, customer: &str, total: i64) -> Integration {
    Integration::OrderValidated(OrderValidated {
        order_id: order.into(),
        customer_id: customer.into(),
        country: "sg".into(),
        items: vec![OrderLine { flavor: "vanilla".into(), quantity: 2, unit_price: total / 2 }],
        total,
        card_token: "tok_visa".into(),
        postal_code: None,
        rule_set: "1.1".into(),
    })
}

fn integrations(published: &[Published]) -> Vec<Integration> {
    published.iter().map(|p| p.integration.clone()).collect()
}

/// `(reserved, available)` of a customer's account, from its read model.
async fn account(credit: &ServiceHarness<CreditHandler>, customer: &str) -> (i64, i64) {
    let doc = credit.store().document("credit", customer).await.unwrap().expect("the account's document").doc;
    (doc["reserved"].as_i64().unwrap(), doc["available"].as_i64().unwrap())
}

#[tokio::test]
async fn credit_publishes_its_reservation_then_its_release_when_inventory_rejects_the_order() {
    let mut credit = ServiceHarness::start(SERVICE, SUBSCRIPTIONS, CreditHandler::new).await.unwrap();
    let valid = credit.incoming(&order_valid("o-1", "cust-1", 1200)).unwrap();
    assert_eq!(valid.route, "reserve");
    let reserved = credit.handle(&valid).await.unwrap();
    assert_eq!(
        integrations(&reserved),
        [Integration::CreditReserved(CreditMoved {
            order_id: "o-1".into(),
            customer_id: "cust-1".into(),
            amount: 1200,
            cause: None,
        })]
    );
    assert_eq!(reserved[0].topic, "udders.credit");
    assert_eq!(reserved[0].envelope.causation_id, Some(valid.envelope.id));
    assert_eq!(reserved[0].envelope.correlation_id, valid.envelope.correlation_id);
    assert_eq!(account(&credit, "cust-1").await, (1200, 98_800));

    let rejected = StepRefused { order_id: "o-1".into(), reason: "out of stock: vanilla in sg".into() };
    let released = credit.deliver(&Integration::StockRejected(rejected)).await.unwrap();
    assert_eq!(
        integrations(&released),
        [Integration::CreditReleased(CreditMoved {
            order_id: "o-1".into(),
            customer_id: "cust-1".into(),
            amount: 1200,
            cause: Some("inventory/rejected".into()),
        })]
    );
    assert_eq!(account(&credit, "cust-1").await, (0, 100_000));
}

#[tokio::test]
async fn a_redelivered_order_is_a_duplicate_and_a_second_trigger_gets_no_answer() {
    let mut credit = ServiceHarness::start(SERVICE, SUBSCRIPTIONS, CreditHandler::new).await.unwrap();
    let valid = credit.incoming(&order_valid("o-2", "cust-2", 500)).unwrap();
    assert_eq!(credit.handle(&valid).await.unwrap().len(), 1);
    assert!(credit.handle(&valid).await.unwrap().is_empty(), "the inbox drops the same record");
    let again = credit.deliver(&order_valid("o-2", "cust-2", 500)).await.unwrap();
    assert!(again.is_empty(), "the hold has seen the order: {again:?}");
    assert_eq!(account(&credit, "cust-2").await, (500, 99_500));

    let declined = StepRefused { order_id: "o-2".into(), reason: "card declined by the issuer".into() };
    let first = credit.deliver(&Integration::PaymentDeclined(declined.clone())).await.unwrap();
    assert_eq!(integrations(&first).len(), 1);
    let second = credit.deliver(&Integration::PaymentDeclined(declined)).await.unwrap();
    assert!(second.is_empty(), "only the first trigger is answered: {second:?}");
    assert_eq!(account(&credit, "cust-2").await, (0, 100_000));
}

#[tokio::test]
async fn the_broke_customer_is_refused_and_credit_ignores_its_own_rejection() {
    let mut credit = ServiceHarness::start(SERVICE, SUBSCRIPTIONS, CreditHandler::new).await.unwrap();
    let refused = credit.deliver(&order_valid("o-3", "cust-broke", 500)).await.unwrap();
    let rejection =
        StepRefused { order_id: "o-3".into(), reason: "credit: 500 needed, 0 available for cust-broke".into() };
    assert_eq!(integrations(&refused), [Integration::CreditRejected(rejection.clone())]);
    let own = credit.deliver(&Integration::CreditRejected(rejection)).await;
    assert!(matches!(own, Err(udders_runtime::testing::HarnessError::Skipped { .. })), "{own:?}");
}
