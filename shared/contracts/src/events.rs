//! The integration events: what one service tells the others. Each payload
//! carries what its subscribers need (no service calls another to ask).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct OrderLine {
    /// Flavour, for example `rumraisin`.
    pub flavor: String,
    /// Scoops (tubs) of it.
    pub quantity: u32,
    /// Unit price in minor units, from the catalogue (0 when unknown).
    #[serde(default)]
    pub unit_price: i64,
}

/// `order/init`: the point of sale placed an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlaced {
    /// The order (also the Kafka key).
    pub order_id: String,
    /// Who buys.
    pub customer_id: String,
    /// Sales channel, for example `lazada`.
    pub channel: String,
    /// Country code, for example `sg`.
    pub country: String,
    /// What is bought.
    pub items: Vec<OrderLine>,
    /// Sum of the lines in minor units.
    pub total: i64,
    /// Card token for the payment gateway.
    pub card_token: String,
    /// Delivery postal code, if given.
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// An amount of money with its currency (payload 1.2 and later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    /// Minor units, for example cents.
    pub amount: i64,
    /// ISO 4217 code, for example `USD`.
    pub currency: String,
}

/// One line of an order in payload 1.2: a stock-keeping unit of a flavour in a size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLineV1_2 {
    /// The stock-keeping unit, `<flavor>-<size>`, for example `mango-pint`.
    pub sku: String,
    /// Flavour, for example `rumraisin`.
    pub flavor: String,
    /// `cup`, `pint` or `tub`.
    pub size: String,
    /// How many.
    pub quantity: u32,
    /// Unit price, from the price list of the order's country.
    pub unit_price: Money,
}

/// `order/init` in payload version 1.2: lines carry their SKU and size, and
/// money carries its currency. Version 1.1 readers see it through
/// [`OrderPlacedV1_2::to_v1_1`], which drops what 1.1 has no place for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlacedV1_2 {
    /// The order (also the Kafka key).
    pub order_id: String,
    /// Who buys.
    pub customer_id: String,
    /// Sales channel, for example `lazada`.
    pub channel: String,
    /// Country code, for example `us`.
    pub country: String,
    /// What is bought.
    pub items: Vec<OrderLineV1_2>,
    /// Sum of the lines.
    pub total: Money,
    /// Card token for the payment gateway.
    pub card_token: String,
    /// Delivery postal code, if given.
    #[serde(default)]
    pub postal_code: Option<String>,
}

impl OrderPlacedV1_2 {
    /// The order in payload 1.2: `order` with each line's size (in line
    /// order; `tub` where none is given) and the currency of its amounts.
    pub fn from_v1_1(order: &OrderPlaced, sizes: &[String], currency: &str) -> Self {
        let money = |amount| Money { amount, currency: currency.to_owned() };
        let items = order
            .items
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let size = sizes.get(i).cloned().unwrap_or_else(|| crate::reference::DEFAULT_SIZE.to_owned());
                OrderLineV1_2 {
                    sku: crate::reference::sku(&line.flavor, &size),
                    flavor: line.flavor.clone(),
                    size,
                    quantity: line.quantity,
                    unit_price: money(line.unit_price),
                }
            })
            .collect();
        Self {
            order_id: order.order_id.clone(),
            customer_id: order.customer_id.clone(),
            channel: order.channel.clone(),
            country: order.country.clone(),
            items,
            total: money(order.total),
            card_token: order.card_token.clone(),
            postal_code: order.postal_code.clone(),
        }
    }

    /// The order as a version 1.1 reader sees it: amounts in minor units,
    /// without SKUs, sizes and currency.
    pub fn to_v1_1(&self) -> OrderPlaced {
        OrderPlaced {
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            channel: self.channel.clone(),
            country: self.country.clone(),
            items: self
                .items
                .iter()
                .map(|l| OrderLine { flavor: l.flavor.clone(), quantity: l.quantity, unit_price: l.unit_price.amount })
                .collect(),
            total: self.total.amount,
            card_token: self.card_token.clone(),
            postal_code: self.postal_code.clone(),
        }
    }
}

/// `order/valid`: the order passed its rule set; carries what credit,
/// inventory, payment and fulfillment need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderValidated {
    /// The order.
    pub order_id: String,
    /// Who buys.
    pub customer_id: String,
    /// Country code.
    pub country: String,
    /// What is bought, priced.
    pub items: Vec<OrderLine>,
    /// Amount to reserve and charge, in minor units.
    pub total: i64,
    /// Card token for the payment gateway.
    pub card_token: String,
    /// Delivery postal code, if given.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// The rule set that passed it, `1.1` or `1.2`.
    pub rule_set: String,
}

/// `order/invalid`: the order broke its rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderInvalidated {
    /// The order.
    pub order_id: String,
    /// Every rule it broke.
    pub reasons: Vec<String>,
    /// The rule set that refused it.
    pub rule_set: String,
}

/// `credit/reserved`, `credit/released`: an amount held (or let go) against a customer's limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreditMoved {
    /// The order.
    pub order_id: String,
    /// The customer.
    pub customer_id: String,
    /// Minor units.
    pub amount: i64,
    /// For a release: the event that caused it (`payment/declined`, …).
    #[serde(default)]
    pub cause: Option<String>,
}

/// `inventory/reserved`, `inventory/released`: stock held (or let go) for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockMoved {
    /// The order.
    pub order_id: String,
    /// Country of the warehouse.
    pub country: String,
    /// Flavours and quantities.
    pub items: Vec<OrderLine>,
    /// For a release: the event that caused it.
    #[serde(default)]
    pub cause: Option<String>,
}

/// `credit/rejected`, `inventory/rejected`, `payment/declined`,
/// `fulfillment/failed`: a step refused the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepRefused {
    /// The order.
    pub order_id: String,
    /// Why, for people.
    pub reason: String,
}

/// `payment/captured`, `payment/refunded`: money taken (or given back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentMoved {
    /// The order.
    pub order_id: String,
    /// Minor units.
    pub amount: i64,
    /// The gateway's charge id.
    pub charge_id: String,
    /// Postal code to ship to (on capture), for fulfillment.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// For a refund: the event that caused it.
    #[serde(default)]
    pub cause: Option<String>,
}

/// `order/shipped`: the carrier took the parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderShipped {
    /// The order.
    pub order_id: String,
    /// The carrier's shipment id.
    pub shipment_id: String,
    /// Where it goes.
    pub postal_code: String,
}

/// `order/cancelled`, `order/expired`: the order is called off (customer or deadline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCalledOff {
    /// The order.
    pub order_id: String,
    /// `customer` or `deadline`.
    pub reason: String,
}

/// `price/changed`: the point of sale prices a flavour in a country at
/// `unit_price` from now on. Orders carry the prices they were placed with,
/// so an order in flight keeps its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PriceChanged {
    /// The flavour.
    pub flavor: String,
    /// The country.
    pub country: String,
    /// The new unit price, minor units.
    pub unit_price: i64,
    /// The price it replaces.
    pub previous: i64,
}

/// `stock/restocked`: goods added to a flavour's stock in a country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockRestocked {
    /// The flavour.
    pub flavor: String,
    /// The country.
    pub country: String,
    /// How many were added.
    pub added: i64,
    /// On hand afterwards.
    pub on_hand: i64,
}

/// `credit/limit-changed`: a customer's credit limit from now on (holds
/// already taken stay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreditLimitChanged {
    /// The customer.
    pub customer_id: String,
    /// The new limit, minor units.
    pub limit: i64,
    /// The limit it replaces.
    pub previous: i64,
}
