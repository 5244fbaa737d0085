//! The payment handler on a real store, one integration event at a time
//! (`udders_runtime::testing`), charging through a gateway double: the
//! charge happens in the handling that completes the order and both
//! reservations, and the gateway's answer is what is published.

use std::sync::Arc;

use udders_contracts::Integration;
use udders_contracts::events::{CreditMoved, OrderLine, OrderValidated, PaymentMoved, StepRefused, StockMoved};
use udders_payment::{PaymentHandler, SERVICE, SUBSCRIPTIONS};
use udders_payment_domain::testing::DecliningGateway;
use udders_payment_domain::{PaymentGateway, SimulatedGateway};
use udders_runtime::testing::{Published, ServiceHarness};

fn order_valid(order: &str, card_token: &str) -> Integration {
    Integration::OrderValidated(OrderValidated {
        order_id: order.into(),
        customer_id: "cust-1".into(),
        country: "sg".into(),
        items: vec![OrderLine { flavor: "vanilla".into(), quantity: 2, unit_price: 600 }],
        total: 1200,
        card_token: card_token.into(),
        postal_code: Some("018956".into()),
        rule_set: "1.1".into(),
    })
}

fn credit_reserved(order: &str) -> Integration {
    Integration::CreditReserved(CreditMoved {
        order_id: order.into(),
        customer_id: "cust-1".into(),
        amount: 1200,
        cause: None,
    })
}

fn stock_reserved(order: &str) -> Integration {
    Integration::StockReserved(StockMoved {
        order_id: order.into(),
        country: "sg".into(),
        items: vec![OrderLine { flavor: "vanilla".into(), quantity: 2, unit_price: 600 }],
        cause: None,
    })
}

fn integrations(published: &[Published]) -> Vec<Integration> {
    published.iter().map(|p| p.integration.clone()).collect()
}

#[tokio::test]
async fn a_declining_gateway_makes_the_completing_reservation_publish_payment_declined() {
    let gateway = Arc::new(DecliningGateway::default());
    let supplied: Arc<dyn PaymentGateway> = gateway.clone();
    let mut payment = ServiceHarness::start(SERVICE, SUBSCRIPTIONS, |outbound| PaymentHandler::new(outbound, supplied))
        .await
        .unwrap();
    // tok_visa: the simulated gateway would approve it; the double declines.
    assert!(payment.deliver(&order_valid("o-1", "tok_visa")).await.unwrap().is_empty());
    assert!(payment.deliver(&credit_reserved("o-1")).await.unwrap().is_empty());
    assert!(gateway.requests().is_empty(), "nothing is charged before both reservations");
    let declined = payment.deliver(&stock_reserved("o-1")).await.unwrap();
    assert_eq!(
        integrations(&declined),
        [Integration::PaymentDeclined(StepRefused { order_id: "o-1".into(), reason: "insufficient funds".into() })]
    );
    assert_eq!(declined[0].topic, "udders.payment");
    assert_eq!(gateway.requests().len(), 1, "charged once");
    let view = payment.store().document("payments", "o-1").await.unwrap().expect("the payment's document").doc;
    assert_eq!(view["status"], "DECLINED");
    // A redelivered reservation charges nothing more.
    assert!(payment.deliver(&stock_reserved("o-1")).await.unwrap().is_empty());
    assert_eq!(gateway.requests().len(), 1);
}

#[tokio::test]
async fn the_simulated_gateway_captures_on_whichever_fact_comes_last() {
    let mut payment = ServiceHarness::start(SERVICE, SUBSCRIPTIONS, |outbound| {
        PaymentHandler::new(outbound, Arc::new(SimulatedGateway))
    })
    .await
    .unwrap();
    assert!(payment.deliver(&credit_reserved("o-2")).await.unwrap().is_empty());
    assert!(payment.deliver(&stock_reserved("o-2")).await.unwrap().is_empty());
    let captured = payment.deliver(&order_valid("o-2", "tok_visa")).await.unwrap();
    assert_eq!(
        integrations(&captured),
        [Integration::PaymentCaptured(PaymentMoved {
            order_id: "o-2".into(),
            amount: 1200,
            charge_id: "ch_o-2".into(),
            postal_code: Some("018956".into()),
            cause: None,
        })]
    );
    // The order's stream holds the note and the capture, recorded together.
    let stream = payment.store().read_stream(&udders_eventstore::StreamId::new("payment", "o-2"), 0).await.unwrap();
    let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["CreditNoted", "StockNoted", "OrderNoted", "Captured"]);
}
