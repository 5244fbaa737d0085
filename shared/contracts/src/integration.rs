//! Every integration event as one typed value: what a handler matches on
//! after the consumer has checked the envelope against the catalog.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::events::{
    CreditLimitChanged, CreditMoved, OrderCalledOff, OrderInvalidated, OrderPlaced, OrderPlacedV1_2, OrderShipped,
    OrderValidated, PaymentMoved, PriceChanged, StepRefused, StockMoved, StockRestocked,
};
use crate::subject::Subject;

/// An integration event, named by the first two levels of its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integration {
    /// `order/init` in payload version 1.1.
    OrderPlaced(OrderPlaced),
    /// `order/init` in payload version 1.2 (SKUs, sizes, money with its currency).
    OrderPlacedV1_2(OrderPlacedV1_2),
    /// `order/valid`
    OrderValidated(OrderValidated),
    /// `order/invalid`
    OrderInvalidated(OrderInvalidated),
    /// `credit/reserved`
    CreditReserved(CreditMoved),
    /// `credit/rejected`
    CreditRejected(StepRefused),
    /// `credit/released`
    CreditReleased(CreditMoved),
    /// `credit/settled`: the order completed, its hold became a sale.
    CreditSettled(CreditMoved),
    /// `inventory/reserved`
    StockReserved(StockMoved),
    /// `inventory/rejected`
    StockRejected(StepRefused),
    /// `inventory/released`
    StockReleased(StockMoved),
    /// `payment/captured`
    PaymentCaptured(PaymentMoved),
    /// `payment/declined`
    PaymentDeclined(StepRefused),
    /// `payment/refunded`
    PaymentRefunded(PaymentMoved),
    /// `order/shipped`
    OrderShipped(OrderShipped),
    /// `fulfillment/failed`
    FulfillmentFailed(StepRefused),
    /// `order/cancelled`
    OrderCancelled(OrderCalledOff),
    /// `order/expired`
    OrderExpired(OrderCalledOff),
    /// `price/changed`: reference data, about no order.
    PriceChanged(PriceChanged),
    /// `stock/restocked`: reference data, about no order.
    StockRestocked(StockRestocked),
    /// `credit/limit-changed`: reference data, about no order.
    CreditLimitChanged(CreditLimitChanged),
}

/// A payload that does not fit its subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {reason}")]
pub struct IntegrationError {
    /// The subject it came with.
    pub subject: String,
    /// What is wrong.
    pub reason: String,
}

fn decode<T: DeserializeOwned>(subject: &Subject, payload: Value) -> Result<T, IntegrationError> {
    serde_json::from_value(payload)
        .map_err(|e| IntegrationError { subject: subject.to_string(), reason: format!("payload: {e}") })
}

impl Integration {
    /// Reads a payload by its subject's `domain/action` and, where an event
    /// has several payload versions, its version.
    pub fn parse(subject: &Subject, payload: Value) -> Result<Self, IntegrationError> {
        let mut levels = subject.levels();
        let (domain, action) = (levels.next().unwrap_or(""), levels.next().unwrap_or(""));
        let version = levels.next().unwrap_or("");
        Ok(match (domain, action) {
            ("order", "init") if version == "1.2" => Self::OrderPlacedV1_2(decode(subject, payload)?),
            ("order", "init") => Self::OrderPlaced(decode(subject, payload)?),
            ("order", "valid") => Self::OrderValidated(decode(subject, payload)?),
            ("order", "invalid") => Self::OrderInvalidated(decode(subject, payload)?),
            ("credit", "reserved") => Self::CreditReserved(decode(subject, payload)?),
            ("credit", "rejected") => Self::CreditRejected(decode(subject, payload)?),
            ("credit", "released") => Self::CreditReleased(decode(subject, payload)?),
            ("credit", "settled") => Self::CreditSettled(decode(subject, payload)?),
            ("inventory", "reserved") => Self::StockReserved(decode(subject, payload)?),
            ("inventory", "rejected") => Self::StockRejected(decode(subject, payload)?),
            ("inventory", "released") => Self::StockReleased(decode(subject, payload)?),
            ("payment", "captured") => Self::PaymentCaptured(decode(subject, payload)?),
            ("payment", "declined") => Self::PaymentDeclined(decode(subject, payload)?),
            ("payment", "refunded") => Self::PaymentRefunded(decode(subject, payload)?),
            ("order", "shipped") => Self::OrderShipped(decode(subject, payload)?),
            ("fulfillment", "failed") => Self::FulfillmentFailed(decode(subject, payload)?),
            ("order", "cancelled") => Self::OrderCancelled(decode(subject, payload)?),
            ("order", "expired") => Self::OrderExpired(decode(subject, payload)?),
            ("price", "changed") => Self::PriceChanged(decode(subject, payload)?),
            ("stock", "restocked") => Self::StockRestocked(decode(subject, payload)?),
            ("credit", "limit-changed") => Self::CreditLimitChanged(decode(subject, payload)?),
            _ => {
                return Err(IntegrationError {
                    subject: subject.to_string(),
                    reason: format!("no integration event is named {domain}/{action}"),
                });
            }
        })
    }

    /// `(domain, action)`: the first two levels of its subject.
    pub fn name(&self) -> (&'static str, &'static str) {
        match self {
            Self::OrderPlaced(_) | Self::OrderPlacedV1_2(_) => ("order", "init"),
            Self::OrderValidated(_) => ("order", "valid"),
            Self::OrderInvalidated(_) => ("order", "invalid"),
            Self::CreditReserved(_) => ("credit", "reserved"),
            Self::CreditRejected(_) => ("credit", "rejected"),
            Self::CreditReleased(_) => ("credit", "released"),
            Self::CreditSettled(_) => ("credit", "settled"),
            Self::StockReserved(_) => ("inventory", "reserved"),
            Self::StockRejected(_) => ("inventory", "rejected"),
            Self::StockReleased(_) => ("inventory", "released"),
            Self::PaymentCaptured(_) => ("payment", "captured"),
            Self::PaymentDeclined(_) => ("payment", "declined"),
            Self::PaymentRefunded(_) => ("payment", "refunded"),
            Self::OrderShipped(_) => ("order", "shipped"),
            Self::FulfillmentFailed(_) => ("fulfillment", "failed"),
            Self::OrderCancelled(_) => ("order", "cancelled"),
            Self::OrderExpired(_) => ("order", "expired"),
            Self::PriceChanged(_) => ("price", "changed"),
            Self::StockRestocked(_) => ("stock", "restocked"),
            Self::CreditLimitChanged(_) => ("credit", "limit-changed"),
        }
    }

    /// A placed order as a version 1.1 reader sees it, whatever its payload
    /// version: how the readers that need no 1.2 field take both.
    pub fn placed(&self) -> Option<OrderPlaced> {
        match self {
            Self::OrderPlaced(e) => Some(e.clone()),
            Self::OrderPlacedV1_2(e) => Some(e.to_v1_1()),
            _ => None,
        }
    }

    /// True for reference data (prices, stock, credit limits): events about
    /// no order, which the saga's handlers pass by.
    pub fn is_reference(&self) -> bool {
        matches!(self, Self::PriceChanged(_) | Self::StockRestocked(_) | Self::CreditLimitChanged(_))
    }

    /// The Kafka key: the order's id, or for reference data what it is
    /// about (`mango-sg`, the customer id), so that changes to one thing
    /// stay in order.
    pub fn key(&self) -> String {
        match self {
            Self::PriceChanged(e) => format!("{}-{}", e.flavor, e.country),
            Self::StockRestocked(e) => format!("{}-{}", e.flavor, e.country),
            Self::CreditLimitChanged(e) => e.customer_id.clone(),
            _ => self.order_id().to_owned(),
        }
    }

    /// The order it is about; empty for reference data ([`Integration::is_reference`]).
    pub fn order_id(&self) -> &str {
        match self {
            Self::PriceChanged(_) | Self::StockRestocked(_) | Self::CreditLimitChanged(_) => "",
            Self::OrderPlaced(e) => &e.order_id,
            Self::OrderPlacedV1_2(e) => &e.order_id,
            Self::OrderValidated(e) => &e.order_id,
            Self::OrderInvalidated(e) => &e.order_id,
            Self::CreditReserved(e) | Self::CreditReleased(e) | Self::CreditSettled(e) => &e.order_id,
            Self::StockReserved(e) | Self::StockReleased(e) => &e.order_id,
            Self::CreditRejected(e)
            | Self::StockRejected(e)
            | Self::PaymentDeclined(e)
            | Self::FulfillmentFailed(e) => &e.order_id,
            Self::PaymentCaptured(e) | Self::PaymentRefunded(e) => &e.order_id,
            Self::OrderShipped(e) => &e.order_id,
            Self::OrderCancelled(e) | Self::OrderExpired(e) => &e.order_id,
        }
    }

    /// The JSON payload.
    pub fn payload(&self) -> Value {
        let value = match self {
            Self::OrderPlaced(e) => serde_json::to_value(e),
            Self::OrderPlacedV1_2(e) => serde_json::to_value(e),
            Self::OrderValidated(e) => serde_json::to_value(e),
            Self::OrderInvalidated(e) => serde_json::to_value(e),
            Self::CreditReserved(e) | Self::CreditReleased(e) | Self::CreditSettled(e) => serde_json::to_value(e),
            Self::StockReserved(e) | Self::StockReleased(e) => serde_json::to_value(e),
            Self::CreditRejected(e)
            | Self::StockRejected(e)
            | Self::PaymentDeclined(e)
            | Self::FulfillmentFailed(e) => serde_json::to_value(e),
            Self::PaymentCaptured(e) | Self::PaymentRefunded(e) => serde_json::to_value(e),
            Self::OrderShipped(e) => serde_json::to_value(e),
            Self::OrderCancelled(e) | Self::OrderExpired(e) => serde_json::to_value(e),
            Self::PriceChanged(e) => serde_json::to_value(e),
            Self::StockRestocked(e) => serde_json::to_value(e),
            Self::CreditLimitChanged(e) => serde_json::to_value(e),
        };
        // Plain structs of strings and integers always serialise.
        value.unwrap_or(Value::Null)
    }

    /// `Some("credit/released")` and the like for the events that give back
    /// what an earlier step took: the compensations.
    pub fn compensation_kind(&self) -> Option<&'static str> {
        match self {
            Self::CreditReleased(_) => Some("credit/released"),
            Self::StockReleased(_) => Some("inventory/released"),
            Self::PaymentRefunded(_) => Some("payment/refunded"),
            _ => None,
        }
    }

    /// True for the events that ask holders to give back what they hold.
    pub fn is_compensation_trigger(&self) -> bool {
        matches!(
            self,
            Self::CreditRejected(_)
                | Self::StockRejected(_)
                | Self::PaymentDeclined(_)
                | Self::FulfillmentFailed(_)
                | Self::OrderCancelled(_)
                | Self::OrderExpired(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_payload_is_read_by_its_subject_and_written_back_unchanged() {
        let subject: Subject = "credit/rejected/1.0/icecream/udders/mango/sg/web".parse().unwrap();
        let payload = json!({"order_id": "o-1", "reason": "limit"});
        let event = Integration::parse(&subject, payload.clone()).unwrap();
        assert_eq!(event.name(), ("credit", "rejected"));
        assert_eq!(event.order_id(), "o-1");
        assert_eq!(event.payload(), payload);
    }

    #[test]
    fn order_init_is_read_by_its_payload_version_and_a_1_2_order_reads_as_1_1_too() {
        let v1_2 = json!({
            "order_id": "o-1", "customer_id": "c-1", "channel": "web", "country": "us",
            "items": [{"sku": "mango-pint", "flavor": "mango", "size": "pint", "quantity": 2,
                       "unit_price": {"amount": 600, "currency": "USD"}}],
            "total": {"amount": 1200, "currency": "USD"}, "card_token": "tok", "postal_code": "94103"
        });
        let subject: Subject = "order/init/1.2/icecream/udders/mango/us/web".parse().unwrap();
        let event = Integration::parse(&subject, v1_2.clone()).unwrap();
        assert!(matches!(event, Integration::OrderPlacedV1_2(_)));
        assert_eq!(event.payload(), v1_2, "written back unchanged");
        let as_1_1 = event.placed().unwrap();
        assert_eq!((as_1_1.total, as_1_1.items[0].unit_price, as_1_1.items[0].quantity), (1200, 600, 2));
        let old: Subject = "order/init/1.1/icecream/udders/mango/us/web".parse().unwrap();
        let error = Integration::parse(&old, v1_2).unwrap_err();
        assert!(error.reason.contains("invalid type"), "a 1.2 payload is not a 1.1 payload: {error}");
    }

    #[test]
    fn a_payload_that_does_not_fit_its_subject_names_both() {
        let subject: Subject = "order/valid/1.0/icecream/udders/mango/sg/web".parse().unwrap();
        let error = Integration::parse(&subject, json!({"order_id": "o-1"})).unwrap_err();
        assert!(error.to_string().starts_with("order/valid/1.0/"), "{error}");
        assert!(error.reason.contains("missing field"), "{error}");
    }
}
