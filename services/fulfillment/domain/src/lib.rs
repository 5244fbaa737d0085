//! Fulfillment's pure domain: one shipment per paid order, through a
//! simulated carrier.
//!
//! [`Shipment`] (stream `shipment-<order>`) ships when `payment/captured`
//! arrives: postal code `00000` is undeliverable (`fulfillment/failed`, which
//! sets off refund and restock), anything else ships (`order/shipped`). An
//! order cancelled or expired before its capture arrives is never shipped.
//! A cancel that arrives after the parcel left changes nothing here.
//!
//! Its subscriptions ([`SUBSCRIPTIONS`], one [`Route`] per purpose: `ship`,
//! `cancel`) are declared beside [`react`], which takes the route a record
//! came on first.
//!
//! What must not: I/O, clocks.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_contracts::events::{OrderShipped, StepRefused};
use udders_contracts::{Integration, Subscribe};
use udders_kernel::{Aggregate, Decider, ReadModel};

/// The postal code the simulated carrier cannot deliver to.
pub const UNDELIVERABLE: &str = "00000";
/// Where an order without a postal code goes: collected in store.
pub const PICKUP: &str = "pickup";

/// One order's shipment.
#[derive(Debug)]
pub struct Shipment;

/// Where a shipment stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipmentState {
    /// Nothing yet.
    #[default]
    Unseen,
    /// With the carrier.
    Shipped {
        /// The carrier's id.
        shipment_id: String,
        /// Where it goes.
        postal_code: String,
    },
    /// The carrier refused it.
    Failed {
        /// Why.
        reason: String,
    },
    /// Called off before shipping.
    Cancelled {
        /// `order/cancelled` or `order/expired`.
        cause: String,
    },
}

/// What a shipment is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentCommand {
    /// The order is paid: ship it.
    Ship {
        /// Where to, if given.
        postal_code: Option<String>,
    },
    /// The order was called off.
    CallOff {
        /// Its trigger.
        cause: String,
    },
}

/// What happened to a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ShipmentEvent {
    /// `order/shipped`
    Shipped(OrderShipped),
    /// `fulfillment/failed`
    Failed(StepRefused),
    /// Called off before shipping (not published).
    CalledOff {
        /// Its trigger.
        cause: String,
    },
}

impl Decider for Shipment {
    type State = ShipmentState;
    type Command = (String, ShipmentCommand);
    type Event = ShipmentEvent;
    type Error = std::convert::Infallible;

    fn initial_state() -> ShipmentState {
        ShipmentState::Unseen
    }

    fn decide(
        state: &ShipmentState,
        (order_id, command): (String, ShipmentCommand),
    ) -> Result<Vec<ShipmentEvent>, Self::Error> {
        if *state != ShipmentState::Unseen {
            return Ok(Vec::new());
        }
        Ok(vec![match command {
            ShipmentCommand::Ship { postal_code } => {
                let postal_code = postal_code.unwrap_or_else(|| PICKUP.to_owned());
                if postal_code == UNDELIVERABLE {
                    ShipmentEvent::Failed(StepRefused {
                        order_id,
                        reason: format!("the carrier cannot deliver to postal code {postal_code}"),
                    })
                } else {
                    ShipmentEvent::Shipped(OrderShipped {
                        shipment_id: format!("shp_{order_id}"),
                        order_id,
                        postal_code,
                    })
                }
            }
            ShipmentCommand::CallOff { cause } => ShipmentEvent::CalledOff { cause },
        }])
    }

    fn evolve(_state: ShipmentState, event: &ShipmentEvent) -> ShipmentState {
        match event {
            ShipmentEvent::Shipped(e) => {
                ShipmentState::Shipped { shipment_id: e.shipment_id.clone(), postal_code: e.postal_code.clone() }
            }
            ShipmentEvent::Failed(e) => ShipmentState::Failed { reason: e.reason.clone() },
            ShipmentEvent::CalledOff { cause } => ShipmentState::Cancelled { cause: cause.clone() },
        }
    }
}

impl Aggregate for Shipment {
    const CATEGORY: &'static str = "shipment";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

impl ShipmentEvent {
    /// The integration event it is published as, if any.
    pub fn integration(&self) -> Option<Integration> {
        match self {
            ShipmentEvent::Shipped(e) => Some(Integration::OrderShipped(e.clone())),
            ShipmentEvent::Failed(e) => Some(Integration::FulfillmentFailed(e.clone())),
            ShipmentEvent::CalledOff { .. } => None,
        }
    }
}

/// Fulfillment's routes: what each of its subscriptions is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `ship`: a paid order ships, or the carrier refuses it.
    Ship,
    /// `cancel`: an order called off before its capture is never shipped.
    Cancel,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Ship, Route::Cancel];

    fn name(self) -> &'static str {
        match self {
            Route::Ship => "ship",
            Route::Cancel => "cancel",
        }
    }
}

/// Fulfillment's subscriptions, in the order its consumer tries them (the
/// first match names the route), each with what its route may publish in
/// answer (`cancel` only records). The `udders` binary assembles them into
/// the catalog.
pub const SUBSCRIPTIONS: &[Subscribe<Route>] = &[
    Subscribe::new(Route::Ship, "payment/captured/>", &["order/shipped", "fulfillment/failed"]),
    Subscribe::new(Route::Cancel, "order/cancelled/>", &[]),
    Subscribe::new(Route::Cancel, "order/expired/>", &[]),
];

/// What fulfillment does with an integration event heard on `route`: the
/// order id and the command; `None` ignores it.
pub fn react(route: Route, event: &Integration) -> Option<(String, ShipmentCommand)> {
    let command = match (route, event) {
        (Route::Ship, Integration::PaymentCaptured(e)) => ShipmentCommand::Ship { postal_code: e.postal_code.clone() },
        (Route::Cancel, Integration::OrderCancelled(_) | Integration::OrderExpired(_)) => {
            let (domain, action) = event.name();
            ShipmentCommand::CallOff { cause: format!("{domain}/{action}") }
        }
        _ => return None,
    };
    Some((event.order_id().to_owned(), command))
}

/// Where a shipment stands, as its read model shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipmentStatus {
    /// With the carrier.
    Shipped,
    /// The carrier refused it.
    Failed,
    /// Called off before shipping.
    Cancelled,
}

impl ShipmentStatus {
    /// `SHIPPED`, `FAILED` or `CANCELLED`: its JSON value, and the view's tag.
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Shipped => "SHIPPED",
            ShipmentStatus::Failed => "FAILED",
            ShipmentStatus::Cancelled => "CANCELLED",
        }
    }
}

/// The read model of a shipment: `GET /shipments/{order_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShipmentView {
    /// The order.
    pub order_id: String,
    /// `SHIPPED`, `FAILED` or `CANCELLED`.
    pub status: ShipmentStatus,
    /// The carrier's id, once shipped.
    pub shipment_id: Option<String>,
    /// Where it went.
    pub postal_code: Option<String>,
    /// Why it failed or was called off.
    pub reason: Option<String>,
}

/// The shipment's read model, folded from its state; `None` before anything happened.
pub fn shipment_view(order_id: &str, state: &ShipmentState) -> Option<ShipmentView> {
    let (status, shipment_id, postal_code, reason) = match state {
        ShipmentState::Unseen => return None,
        ShipmentState::Shipped { shipment_id, postal_code } => {
            (ShipmentStatus::Shipped, Some(shipment_id.clone()), Some(postal_code.clone()), None)
        }
        ShipmentState::Failed { reason } => (ShipmentStatus::Failed, None, None, Some(reason.clone())),
        ShipmentState::Cancelled { cause } => (ShipmentStatus::Cancelled, None, None, Some(cause.clone())),
    };
    Some(ShipmentView { order_id: order_id.to_owned(), status, shipment_id, postal_code, reason })
}

impl ReadModel for Shipment {
    const VIEW: &'static str = "shipments";
    type Doc = ShipmentView;

    fn project(key: &str, _: Option<ShipmentView>, state: &ShipmentState, _: &ShipmentEvent) -> Option<ShipmentView> {
        shipment_view(key, state)
    }

    fn tags(doc: &ShipmentView) -> [Option<String>; 3] {
        [Some(doc.status.as_str().to_owned()), None, None]
    }
}

#[cfg(test)]
mod tests {
    use udders_kernel::testing::given;

    use super::*;

    fn ship(postal_code: Option<&str>) -> (String, ShipmentCommand) {
        ("o-1".into(), ShipmentCommand::Ship { postal_code: postal_code.map(Into::into) })
    }

    #[test]
    fn a_paid_order_ships_once() {
        let shipped = ShipmentEvent::Shipped(OrderShipped {
            order_id: "o-1".into(),
            shipment_id: "shp_o-1".into(),
            postal_code: "12345".into(),
        });
        given::<Shipment>([]).when(ship(Some("12345"))).then([shipped.clone()]);
        given::<Shipment>([shipped]).when(ship(Some("12345"))).then([]);
    }

    #[test]
    fn postal_code_00000_is_undeliverable() {
        let events = Shipment::decide(&ShipmentState::Unseen, ship(Some(UNDELIVERABLE))).unwrap();
        assert!(matches!(&events[..], [ShipmentEvent::Failed(f)] if f.reason.contains("00000")), "{events:?}");
    }

    #[test]
    fn an_order_called_off_before_its_capture_arrives_is_never_shipped() {
        given::<Shipment>([ShipmentEvent::CalledOff { cause: "order/cancelled".into() }]).when(ship(None)).then([]);
    }

    #[test]
    fn a_capture_ships_and_a_cancel_or_expiry_calls_off() {
        let captured = udders_contracts::events::PaymentMoved {
            order_id: "o-1".into(),
            amount: 600,
            charge_id: "ch_o-1".into(),
            postal_code: Some("12345".into()),
            cause: None,
        };
        assert_eq!(react(Route::Ship, &Integration::PaymentCaptured(captured)), Some(ship(Some("12345"))));
        let expired = udders_contracts::events::OrderCalledOff { order_id: "o-1".into(), reason: "deadline".into() };
        assert_eq!(
            react(Route::Cancel, &Integration::OrderExpired(expired)),
            Some(("o-1".into(), ShipmentCommand::CallOff { cause: "order/expired".into() }))
        );
    }

    #[test]
    fn the_view_shows_each_status_as_the_same_string_as_before() {
        for status in [ShipmentStatus::Shipped, ShipmentStatus::Failed, ShipmentStatus::Cancelled] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        let view = shipment_view("o-1", &ShipmentState::Cancelled { cause: "order/expired".into() }).unwrap();
        assert_eq!(serde_json::to_value(&view).unwrap()["status"], "CANCELLED");
        assert_eq!(Shipment::tags(&view)[0].as_deref(), Some("CANCELLED"));
    }

    #[test]
    fn every_route_has_a_subscription_and_a_name_of_its_own() {
        assert_eq!(udders_contracts::route_table_problems(SUBSCRIPTIONS), Vec::<String>::new());
    }
}
