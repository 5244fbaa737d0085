//! The order lifecycle, given/when/then.

use udders_contracts::events::OrderLine;
use udders_kernel::testing::given;

use super::*;

const T0: Timestamp = Timestamp::from_micros(1_000_000);

fn placement() -> Placement {
    Placement {
        order: OrderPlaced {
            order_id: "o-1".into(),
            customer_id: "cust-1".into(),
            channel: "web".into(),
            country: "sg".into(),
            items: vec![OrderLine { flavor: "mango".into(), quantity: 2, unit_price: 600 }],
            total: 1200,
            card_token: "tok_visa".into(),
            postal_code: None,
        },
        schema_version: "1.1".into(),
        sizes: vec!["tub".into()],
        currency: "SGD".into(),
        placed_at: T0,
        deadline: T0.plus_micros(30_000_000),
        request_fingerprint: None,
        correlation_id: CorrelationId::from_uuid(uuid::Uuid::nil()),
    }
}

fn seen(step: Step) -> Observation {
    Observation {
        event_id: format!("{step:?}"),
        subject: "x".into(),
        source: "/udders/x".into(),
        time: T0,
        step,
        causation_id: None,
        payload: serde_json::Value::Null,
    }
}

fn observed(step: Step) -> OrderEvent {
    OrderEvent::Observed(seen(step))
}

fn when_seen(history: Vec<OrderEvent>, step: Step) -> Vec<OrderEvent> {
    Order::decide(&Order::fold(&history), OrderCommand::Observe(seen(step), T0)).unwrap()
}

fn reserved_and_paid() -> Vec<OrderEvent> {
    vec![
        OrderEvent::Placed(placement()),
        observed(Step::Validated),
        OrderEvent::Advanced { status: Status::Validated, at: T0 },
        observed(Step::CreditReserved),
        observed(Step::StockReserved),
        OrderEvent::Advanced { status: Status::Reserved, at: T0 },
        observed(Step::PaymentCaptured { amount: Money::from_minor(1200) }),
        OrderEvent::Advanced { status: Status::Paid, at: T0 },
    ]
}

#[test]
fn the_happy_path_moves_through_every_status_to_completed() {
    let placed = given::<Order>([]).when(OrderCommand::Place(placement())).then([OrderEvent::Placed(placement())]);
    assert_eq!(placed.status, Status::Placed);
    let history = reserved_and_paid();
    assert_eq!(Order::fold(&history).status, Status::Paid);
    given::<Order>(history)
        .when(OrderCommand::Observe(seen(Step::Shipped), T0))
        .then([observed(Step::Shipped), OrderEvent::Advanced { status: Status::Completed, at: T0 }]);
}

#[test]
fn placing_again_changes_nothing() {
    given::<Order>([OrderEvent::Placed(placement())]).when(OrderCommand::Place(placement())).then([]);
}

#[test]
fn an_invalid_order_is_rejected_at_once_because_nobody_holds_anything() {
    let events = when_seen(vec![OrderEvent::Placed(placement())], Step::Invalidated { reasons: vec!["bad".into()] });
    let state = Order::fold(&[vec![OrderEvent::Placed(placement())], events.clone()].concat());
    assert_eq!(state.status, Status::Rejected, "{events:?}");
    assert_eq!(state.reason.as_deref(), Some("invalid: bad"));
}

#[test]
fn credit_rejected_waits_for_inventory_to_answer_before_rejecting() {
    let mut history = vec![OrderEvent::Placed(placement()), observed(Step::Validated)];
    history.extend(when_seen(history.clone(), Step::StockReserved));
    history.extend(when_seen(history.clone(), Step::CreditRejected { reason: "no credit".into() }));
    assert_eq!(Order::fold(&history).status, Status::Compensating);
    history.extend(when_seen(history.clone(), Step::StockReleased));
    let state = Order::fold(&history);
    assert_eq!((state.status, state.reason.as_deref()), (Status::Rejected, Some("no credit")));
}

#[test]
fn both_reservations_refused_rejects_without_any_release() {
    let mut history = vec![OrderEvent::Placed(placement())];
    history.extend(when_seen(history.clone(), Step::CreditRejected { reason: "no credit".into() }));
    history.extend(when_seen(history.clone(), Step::StockRejected { reason: "no stock".into() }));
    assert_eq!(Order::fold(&history).status, Status::Rejected);
}

#[test]
fn fulfillment_failed_rejects_only_after_release_release_and_refund() {
    let mut history = reserved_and_paid();
    history.extend(when_seen(history.clone(), Step::FulfillmentFailed { reason: "00000".into() }));
    for step in [Step::CreditReleased, Step::PaymentRefunded { amount: Money::from_minor(1200) }] {
        history.extend(when_seen(history.clone(), step));
        assert_eq!(Order::fold(&history).status, Status::Compensating);
    }
    history.extend(when_seen(history.clone(), Step::StockReleased));
    assert_eq!(Order::fold(&history).status, Status::Rejected);
}

#[test]
fn a_customer_cancel_before_shipping_ends_cancelled_once_everything_is_given_back() {
    let state = given::<Order>(reserved_and_paid())
        .when(OrderCommand::Cancel { at: T0 })
        .then([OrderEvent::CancelRequested { at: T0 }]);
    assert_eq!(state.status, Status::Compensating);
    let mut history = reserved_and_paid();
    history.push(OrderEvent::CancelRequested { at: T0 });
    for step in [Step::Cancelled, Step::CreditReleased, Step::StockReleased] {
        history.extend(when_seen(history.clone(), step));
    }
    assert_eq!(Order::fold(&history).status, Status::Compensating);
    history.extend(when_seen(history.clone(), Step::PaymentRefunded { amount: Money::from_minor(1200) }));
    assert_eq!(Order::fold(&history).status, Status::Cancelled);
}

/// Every order of `items` (Heap's algorithm).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(items.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, items, out);
            items.swap(if k.is_multiple_of(2) { i } else { 0 }, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(items.len(), &mut items.to_vec(), &mut out);
    out
}

#[test]
fn a_cancelled_order_ends_cancelled_whatever_order_the_answers_arrive_in() {
    // Each service's own events can reach the order out of order (two relays
    // publish one outbox; a killed relay's claimed rows go out late), so a
    // hold's reservation may arrive after its release.
    let steps = [
        Step::CreditReserved,
        Step::CreditReleased,
        Step::StockReserved,
        Step::StockReleased,
        Step::PaymentCaptured { amount: Money::from_minor(1200) },
        Step::PaymentRefunded { amount: Money::from_minor(1200) },
    ];
    let orders = permutations(&steps);
    assert_eq!(orders.len(), 720);
    for arrival in orders {
        let mut history = vec![OrderEvent::Placed(placement()), OrderEvent::CancelRequested { at: T0 }];
        for step in arrival.iter().cloned() {
            history.extend(when_seen(history.clone(), step));
        }
        assert_eq!(Order::fold(&history).status, Status::Cancelled, "answers arrived as {arrival:?}");
    }
}

#[test]
fn a_cancel_after_shipping_is_refused() {
    let mut history = reserved_and_paid();
    history.extend(when_seen(history.clone(), Step::Shipped));
    given::<Order>(history).when(OrderCommand::Cancel { at: T0 }).then_error(OrderError::AlreadyShipped);
    given::<Order>([]).when(OrderCommand::Cancel { at: T0 }).then_error(OrderError::NotFound);
}

#[test]
fn the_deadline_expires_an_unfinished_order_only_once_it_has_passed() {
    let history = vec![OrderEvent::Placed(placement()), observed(Step::Validated)];
    given::<Order>(history.clone()).when(OrderCommand::Expire { at: T0.plus_micros(29_000_000) }).then([]);
    let late = T0.plus_micros(31_000_000);
    let state =
        given::<Order>(history).when(OrderCommand::Expire { at: late }).then([OrderEvent::Expired { at: late }]);
    assert_eq!(state.reason.as_deref(), Some("the saga deadline passed"));
    given::<Order>([OrderEvent::Placed(placement()), OrderEvent::Expired { at: late }])
        .when(OrderCommand::Expire { at: late })
        .then([]);
}

#[test]
fn the_read_model_keeps_the_timeline_oldest_first() {
    let mut state = OrderState::default();
    let mut view = None;
    let mut later = seen(Step::Validated);
    later.time = T0.plus_micros(5);
    for event in [OrderEvent::Placed(placement()), OrderEvent::Observed(later), observed(Step::Placed)] {
        state = Order::evolve(state, &event);
        view = project(view, &state, &event);
    }
    let view = view.unwrap();
    assert_eq!(view.timeline.len(), 2);
    assert_eq!(view.timeline[0].event_id, "Placed");
    assert_eq!((view.status, view.total, view.reason), (Status::Placed, Money::from_minor(1200), None));
}

#[test]
fn the_read_model_keeps_its_json_shape_amounts_in_minor_units_and_kinds_as_strings() {
    let mut state = OrderState::default();
    let mut view = None;
    for event in [
        OrderEvent::Placed(placement()),
        observed(Step::PaymentCaptured { amount: Money::from_minor(1200) }),
        observed(Step::PaymentRefunded { amount: Money::from_minor(1200) }),
        observed(Step::CreditRejected { reason: "no credit".into() }),
    ] {
        state = Order::evolve(state, &event);
        view = project(view, &state, &event);
    }
    let json = serde_json::to_value(view.unwrap()).unwrap();
    assert_eq!(json["total"], 1200);
    let kinds: Vec<&str> = json["timeline"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["step", "compensation", "refusal"]);
    // A stored observation keeps its amount as a bare number.
    let stored = serde_json::to_value(Step::PaymentCaptured { amount: Money::from_minor(1200) }).unwrap();
    assert_eq!(stored, serde_json::json!({"kind": "payment_captured", "amount": 1200}));
    assert_eq!(
        serde_json::from_value::<Step>(stored).unwrap(),
        Step::PaymentCaptured { amount: Money::from_minor(1200) }
    );
}

#[test]
fn the_one_route_follows_every_saga_event_and_passes_reference_data_by() {
    assert_eq!(udders_contracts::route_table_problems(SUBSCRIPTIONS), Vec::<String>::new());
    let cancelled = udders_contracts::events::OrderCalledOff { order_id: "o-1".into(), reason: "customer".into() };
    assert_eq!(react(Route::Follow, &Integration::OrderCancelled(cancelled)), Some(Step::Cancelled));
    let price = udders_contracts::events::PriceChanged {
        flavor: "mango".into(),
        country: "sg".into(),
        unit_price: 650,
        previous: 600,
    };
    assert_eq!(react(Route::Follow, &Integration::PriceChanged(price)), None);
}
