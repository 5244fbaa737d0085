//! Insights' pure domain: the two listeners of the guide Udders comes from,
//! each bound to its exact pattern.
//!
//! - [`Sale`] (stream `sale-<order>`): an order of the 711 chain, heard on
//!   `order/*/*/*/*/*/*/store711` (placed, shipped, invalid, cancelled,
//!   expired) and on the refusals of its other steps: placed with its total
//!   and lines, then finished one way. The channel insight (orders, revenue
//!   and top flavours per minute) is folded from these at query time.
//! - [`Dispatch`] (stream `dispatch-<order>`): a valid Singapore order,
//!   heard on `order/valid/*/icecream/**/sg/*`, waiting for dispatch until
//!   it ships or ends otherwise.
//!
//! Outcomes and starts travel on different topics, so either may come
//! first: an outcome heard first is kept, and the order is never shown as
//! open or waiting once it arrives.
//!
//! Its subscriptions ([`SUBSCRIPTIONS`]) are declared here, each [`Route`]
//! feeding one [`Listener`] ([`Route::listener`]), beside the listeners'
//! reactions ([`react_sale`], [`react_dispatch`]). What must not: I/O,
//! clocks.

use std::marker::PhantomData;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use udders_contracts::events::OrderLine;
use udders_contracts::{Integration, Subscribe};
use udders_kernel::{Aggregate, Decider, Money, ReadModel, Timestamp};

/// Which listener a subscription feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Listener {
    /// The 711 chain's sales: routes `store711…`.
    Store711,
    /// Singapore's orders waiting for dispatch: routes `sg…`.
    Singapore,
}

/// Insights' routes: each feeds one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// `store711`: the guide's 711 pattern, every order event of the chain.
    Store711,
    /// `store711-outcome`: the chain's refusals its pattern does not reach.
    Store711Outcome,
    /// `sg-valid`: the guide's Singapore pattern, valid orders.
    SgValid,
    /// `sg-outcome`: how Singapore's orders end.
    SgOutcome,
}

impl udders_contracts::Route for Route {
    const ALL: &'static [Route] = &[Route::Store711, Route::Store711Outcome, Route::SgValid, Route::SgOutcome];

    fn name(self) -> &'static str {
        match self {
            Route::Store711 => "store711",
            Route::Store711Outcome => "store711-outcome",
            Route::SgValid => "sg-valid",
            Route::SgOutcome => "sg-outcome",
        }
    }
}

impl Route {
    /// The listener it feeds.
    pub fn listener(self) -> Listener {
        match self {
            Route::Store711 | Route::Store711Outcome => Listener::Store711,
            Route::SgValid | Route::SgOutcome => Listener::Singapore,
        }
    }
}

/// Insights' subscriptions, in the order its consumer tries them. Every
/// route only records: it publishes nothing in answer. The consumer names
/// only the first match, and a record may be for both listeners, so the
/// handler feeds the listener of every route whose pattern matches. The
/// `udders` binary assembles them into the catalog.
pub const SUBSCRIPTIONS: &[Subscribe<Route>] = &[
    // Insights: the guide's two listeners, on its exact patterns,
    // and the outcomes their patterns do not reach.
    Subscribe::new(Route::Store711, "order/*/*/*/*/*/*/store711", &[]),
    Subscribe::new(Route::Store711Outcome, "credit/rejected/*/*/*/*/*/store711", &[]),
    Subscribe::new(Route::Store711Outcome, "inventory/rejected/*/*/*/*/*/store711", &[]),
    Subscribe::new(Route::Store711Outcome, "payment/declined/*/*/*/*/*/store711", &[]),
    Subscribe::new(Route::Store711Outcome, "fulfillment/failed/*/*/*/*/*/store711", &[]),
    Subscribe::new(Route::SgValid, "order/valid/*/icecream/**/sg/*", &[]),
    Subscribe::new(Route::SgOutcome, "order/shipped/*/icecream/**/sg/*", &[]),
    Subscribe::new(Route::SgOutcome, "order/cancelled/*/icecream/**/sg/*", &[]),
    Subscribe::new(Route::SgOutcome, "order/expired/*/icecream/**/sg/*", &[]),
    Subscribe::new(Route::SgOutcome, "credit/rejected/*/icecream/**/sg/*", &[]),
    Subscribe::new(Route::SgOutcome, "inventory/rejected/*/icecream/**/sg/*", &[]),
    Subscribe::new(Route::SgOutcome, "payment/declined/*/icecream/**/sg/*", &[]),
    Subscribe::new(Route::SgOutcome, "fulfillment/failed/*/icecream/**/sg/*", &[]),
];

/// How an order ended, for the insights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Ending {
    /// Shipped.
    Shipped,
    /// A step refused it.
    Refused,
    /// Cancelled by the customer or the deadline.
    CalledOff,
}

/// The ending an event tells of, if it is one.
pub fn ending_of(event: &Integration) -> Option<Ending> {
    match event {
        Integration::OrderShipped(_) => Some(Ending::Shipped),
        Integration::OrderInvalidated(_)
        | Integration::CreditRejected(_)
        | Integration::StockRejected(_)
        | Integration::PaymentDeclined(_)
        | Integration::FulfillmentFailed(_) => Some(Ending::Refused),
        Integration::OrderCancelled(_) | Integration::OrderExpired(_) => Some(Ending::CalledOff),
        _ => None,
    }
}

/// An order as one listener follows it: the fact that starts it (the
/// first heard wins) and its ending (the first heard wins). Either may come
/// first: they travel on different topics.
#[derive(Debug)]
pub struct Followed<S>(PhantomData<fn() -> S>);

/// What a followed order knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedState<S> {
    /// The fact that starts it, once heard.
    pub start: Option<S>,
    /// How and when it ended.
    pub ended: Option<(Ending, Timestamp)>,
}

impl<S> Default for FollowedState<S> {
    fn default() -> Self {
        Self { start: None, ended: None }
    }
}

/// What a followed order is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowCommand<S> {
    /// The fact that starts it.
    Start(S),
    /// An outcome.
    End {
        /// Which.
        ending: Ending,
        /// When.
        at: Timestamp,
    },
}

/// What happened to a followed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FollowEvent<S> {
    /// Started (the first start heard).
    Started(S),
    /// Ended (the first outcome heard).
    Ended {
        /// How.
        ending: Ending,
        /// When.
        at: Timestamp,
    },
}

impl<S: Clone> Decider for Followed<S> {
    type State = FollowedState<S>;
    type Command = FollowCommand<S>;
    type Event = FollowEvent<S>;
    type Error = std::convert::Infallible;

    fn initial_state() -> FollowedState<S> {
        FollowedState::default()
    }

    fn decide(state: &FollowedState<S>, command: FollowCommand<S>) -> Result<Vec<FollowEvent<S>>, Self::Error> {
        Ok(match command {
            FollowCommand::Start(start) if state.start.is_none() => vec![FollowEvent::Started(start)],
            FollowCommand::End { ending, at } if state.ended.is_none() => vec![FollowEvent::Ended { ending, at }],
            _ => Vec::new(),
        })
    }

    fn evolve(mut state: FollowedState<S>, event: &FollowEvent<S>) -> FollowedState<S> {
        match event {
            FollowEvent::Started(start) => state.start = Some(start.clone()),
            FollowEvent::Ended { ending, at } => state.ended = Some((*ending, *at)),
        }
        state
    }
}

/// A listener's reaction: `start` when the event starts an order, else the
/// ending it tells of, if any.
fn follow<S>(event: &Integration, at: Timestamp, start: Option<S>) -> Option<(String, FollowCommand<S>)> {
    let command = match (start, ending_of(event)) {
        (Some(start), _) => FollowCommand::Start(start),
        (None, Some(ending)) => FollowCommand::End { ending, at },
        (None, None) => return None,
    };
    Some((event.order_id().to_owned(), command))
}

/// An order of the 711 chain as placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The channel.
    pub channel: String,
    /// The order's total.
    pub total: Money,
    /// The lines.
    pub items: Vec<OrderLine>,
    /// When.
    pub at: Timestamp,
}

/// An order of the 711 chain (stream `sale-<order>`).
pub type Sale = Followed<Placement>;

impl Aggregate for Sale {
    const CATEGORY: &'static str = "sale";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

/// What the 711 listener does with an event: the order id and the command.
pub fn react_sale(event: &Integration, at: Timestamp) -> Option<(String, FollowCommand<Placement>)> {
    let start =
        event.placed().map(|e| Placement { channel: e.channel, total: Money::from_minor(e.total), items: e.items, at });
    follow(event, at, start)
}

/// A sale as stored for the channel insight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleView {
    /// The order.
    pub order_id: String,
    /// The channel.
    pub channel: String,
    /// The order's total.
    pub total: Money,
    /// The lines.
    pub items: Vec<OrderLine>,
    /// When it was placed.
    pub placed_at: Timestamp,
    /// How it ended, if it has.
    pub ending: Option<Ending>,
    /// When.
    pub ended_at: Option<Timestamp>,
}

impl ReadModel for Sale {
    const VIEW: &'static str = "sales";
    type Doc = SaleView;

    fn project(
        key: &str,
        _: Option<SaleView>,
        state: &FollowedState<Placement>,
        _: &FollowEvent<Placement>,
    ) -> Option<SaleView> {
        let Placement { channel, total, items, at: placed_at } = state.start.clone()?;
        Some(SaleView {
            order_id: key.to_owned(),
            channel,
            total,
            items,
            placed_at,
            ending: state.ended.map(|(ending, _)| ending),
            ended_at: state.ended.map(|(_, at)| at),
        })
    }

    fn tags(doc: &SaleView) -> [Option<String>; 3] {
        [Some(doc.channel.clone()), None, None]
    }
}

/// A channel's activity in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MinuteInsight {
    /// RFC 3339: the minute's start.
    pub minute: String,
    /// Orders placed in it.
    pub orders: u64,
    /// Orders shipped in it.
    pub shipped: u64,
    /// What the orders shipped in it were worth, minor units.
    #[schema(value_type = i64)]
    pub revenue: Money,
    /// Orders refused in it (rules, credit, stock, payment, carrier).
    pub refused: u64,
    /// Orders cancelled or expired in it.
    pub called_off: u64,
    /// The flavours ordered in it, most scoops first (at most five).
    pub top_flavors: Vec<FlavorCount>,
}

/// Scoops of one flavour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlavorCount {
    /// The flavour.
    pub flavor: String,
    /// Scoops ordered.
    pub quantity: u64,
}

/// A channel's last hour: `GET /insights/channels/{channel}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelInsight {
    /// The channel.
    pub channel: String,
    /// RFC 3339: the window's start, the start of the minute 59 minutes
    /// before `to`'s (sixty whole or partial minutes).
    pub from: String,
    /// RFC 3339: when it was computed.
    pub to: String,
    /// Orders placed in the window.
    pub orders: u64,
    /// Orders shipped in the window.
    pub shipped: u64,
    /// What they were worth, minor units.
    #[schema(value_type = i64)]
    pub revenue: Money,
    /// Orders refused in the window.
    pub refused: u64,
    /// Orders cancelled or expired in the window.
    pub called_off: u64,
    /// The window's flavours, most scoops first (at most five).
    pub top_flavors: Vec<FlavorCount>,
    /// Each minute with any activity, oldest first.
    pub minutes: Vec<MinuteInsight>,
}

const MINUTE_US: i64 = 60_000_000;
/// How many flavours a top list holds.
pub const TOP: usize = 5;

fn minute_of(at: Timestamp) -> i64 {
    at.micros().div_euclid(MINUTE_US) * MINUTE_US
}

fn top(counts: std::collections::BTreeMap<String, u64>) -> Vec<FlavorCount> {
    let mut list: Vec<FlavorCount> =
        counts.into_iter().map(|(flavor, quantity)| FlavorCount { flavor, quantity }).collect();
    list.sort_by(|a, b| b.quantity.cmp(&a.quantity).then_with(|| a.flavor.cmp(&b.flavor)));
    list.truncate(TOP);
    list
}

/// Folds a channel's sales into its last hour at `now`: orders and flavours
/// count in the minute they were placed, revenue in the minute they shipped.
pub fn channel_insight<'a>(
    channel: &str,
    sales: impl IntoIterator<Item = &'a SaleView>,
    now: Timestamp,
) -> ChannelInsight {
    use std::collections::BTreeMap;
    let from = minute_of(now) - 59 * MINUTE_US;
    let inside = |at: Timestamp| (from..=now.micros()).contains(&at.micros());
    let mut minutes: BTreeMap<i64, (MinuteInsight, BTreeMap<String, u64>)> = BTreeMap::new();
    let mut hour: BTreeMap<String, u64> = BTreeMap::new();
    for sale in sales {
        if inside(sale.placed_at) {
            let (minute, flavors) = minutes.entry(minute_of(sale.placed_at)).or_default();
            minute.orders += 1;
            for line in &sale.items {
                *flavors.entry(line.flavor.clone()).or_default() += u64::from(line.quantity);
                *hour.entry(line.flavor.clone()).or_default() += u64::from(line.quantity);
            }
        }
        if let (Some(ending), Some(at)) = (sale.ending, sale.ended_at)
            && inside(at)
        {
            let (minute, _) = minutes.entry(minute_of(at)).or_default();
            match ending {
                Ending::Shipped => {
                    minute.shipped += 1;
                    minute.revenue = minute.revenue + sale.total;
                }
                Ending::Refused => minute.refused += 1,
                Ending::CalledOff => minute.called_off += 1,
            }
        }
    }
    let minutes: Vec<MinuteInsight> = minutes
        .into_iter()
        .map(|(start, (minute, flavors))| MinuteInsight {
            minute: Timestamp::from_micros(start).to_string(),
            top_flavors: top(flavors),
            ..minute
        })
        .collect();
    ChannelInsight {
        channel: channel.to_owned(),
        from: Timestamp::from_micros(from).to_string(),
        to: now.to_string(),
        orders: minutes.iter().map(|m| m.orders).sum(),
        shipped: minutes.iter().map(|m| m.shipped).sum(),
        revenue: minutes.iter().fold(Money::ZERO, |sum, m| sum + m.revenue),
        refused: minutes.iter().map(|m| m.refused).sum(),
        called_off: minutes.iter().map(|m| m.called_off).sum(),
        top_flavors: top(hour),
        minutes,
    }
}

/// A Singapore order as validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidOrder {
    /// The customer.
    pub customer_id: String,
    /// The lines.
    pub items: Vec<OrderLine>,
    /// The order's total.
    pub total: Money,
    /// Where to, if given.
    pub postal_code: Option<String>,
    /// When it was validated.
    pub at: Timestamp,
}

/// A valid Singapore order, until it is dispatched or ends (stream
/// `dispatch-<order>`).
pub type Dispatch = Followed<ValidOrder>;

impl Aggregate for Dispatch {
    const CATEGORY: &'static str = "dispatch";
    const SNAPSHOT_EVERY: Option<NonZeroU64> = None;
}

/// What the Singapore listener does with an event: the order id and the command.
pub fn react_dispatch(event: &Integration, at: Timestamp) -> Option<(String, FollowCommand<ValidOrder>)> {
    let start = match event {
        Integration::OrderValidated(e) => Some(ValidOrder {
            customer_id: e.customer_id.clone(),
            items: e.items.clone(),
            total: Money::from_minor(e.total),
            postal_code: e.postal_code.clone(),
            at,
        }),
        _ => None,
    };
    follow(event, at, start)
}

/// Where a Singapore order stands: waiting for dispatch, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DispatchStatus {
    /// Validated, not yet ended.
    Waiting,
    /// Shipped.
    Shipped,
    /// A step refused it.
    Refused,
    /// Cancelled by the customer or the deadline.
    CalledOff,
}

impl DispatchStatus {
    /// `WAITING`, `SHIPPED`, `REFUSED` or `CALLED_OFF`: its JSON value, and
    /// the view's tag.
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchStatus::Waiting => "WAITING",
            DispatchStatus::Shipped => "SHIPPED",
            DispatchStatus::Refused => "REFUSED",
            DispatchStatus::CalledOff => "CALLED_OFF",
        }
    }
}

impl From<Ending> for DispatchStatus {
    fn from(ending: Ending) -> Self {
        match ending {
            Ending::Shipped => DispatchStatus::Shipped,
            Ending::Refused => DispatchStatus::Refused,
            Ending::CalledOff => DispatchStatus::CalledOff,
        }
    }
}

/// A Singapore order as `GET /insights/countries/sg` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DispatchView {
    /// The order.
    pub order_id: String,
    /// The customer.
    pub customer_id: String,
    /// The lines.
    pub items: Vec<OrderLine>,
    /// Minor units.
    #[schema(value_type = i64)]
    pub total: Money,
    /// Where it goes (absent: collected in store).
    pub postal_code: Option<String>,
    /// RFC 3339: when it was validated.
    pub validated_at: String,
    /// `WAITING`, or how it ended: `SHIPPED`, `REFUSED`, `CALLED_OFF`.
    pub status: DispatchStatus,
    /// RFC 3339: when it ended.
    pub ended_at: Option<String>,
}

impl ReadModel for Dispatch {
    const VIEW: &'static str = "dispatch";
    type Doc = DispatchView;

    fn project(
        key: &str,
        _: Option<DispatchView>,
        state: &FollowedState<ValidOrder>,
        _: &FollowEvent<ValidOrder>,
    ) -> Option<DispatchView> {
        let ValidOrder { customer_id, items, total, postal_code, at } = state.start.clone()?;
        let status = state.ended.map_or(DispatchStatus::Waiting, |(ending, _)| ending.into());
        Some(DispatchView {
            order_id: key.to_owned(),
            customer_id,
            items,
            total,
            postal_code,
            validated_at: at.to_string(),
            status,
            ended_at: state.ended.map(|(_, at)| at.to_string()),
        })
    }

    /// A waiting order is due from its validation: the store's due index
    /// then lists the longest waiting first.
    fn due(doc: &DispatchView) -> Option<Timestamp> {
        (doc.status == DispatchStatus::Waiting).then(|| Timestamp::parse_rfc3339(&doc.validated_at).ok()).flatten()
    }

    fn tags(doc: &DispatchView) -> [Option<String>; 3] {
        [Some(doc.status.as_str().to_owned()), None, None]
    }
}

#[cfg(test)]
mod tests {
    use udders_contracts::events::{OrderPlaced, OrderShipped, StepRefused};
    use udders_kernel::testing::given;

    use super::*;

    const T0: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

    fn line(flavor: &str, quantity: u32) -> OrderLine {
        OrderLine { flavor: flavor.into(), quantity, unit_price: 500 }
    }

    fn sale(id: &str, items: Vec<OrderLine>, placed: i64, shipped: Option<i64>) -> SaleView {
        SaleView {
            order_id: id.into(),
            channel: "store711".into(),
            total: Money::from_minor(items.iter().map(|l| l.unit_price * i64::from(l.quantity)).sum()),
            items,
            placed_at: T0.plus_micros(placed),
            ending: shipped.map(|_| Ending::Shipped),
            ended_at: shipped.map(|s| T0.plus_micros(s)),
        }
    }

    #[test]
    fn routes_name_their_listener() {
        use udders_contracts::Route as _;
        let listener = |name: &str| Route::from_name(name).map(Route::listener);
        assert_eq!(listener("store711"), Some(Listener::Store711));
        assert_eq!(listener("store711-outcome"), Some(Listener::Store711));
        assert_eq!(listener("sg-valid"), Some(Listener::Singapore));
        assert_eq!(listener("sg-outcome"), Some(Listener::Singapore));
        assert_eq!(listener("rules-1.1"), None);
        assert_eq!(listener("sgx"), None);
        assert_eq!(udders_contracts::route_table_problems(SUBSCRIPTIONS), Vec::<String>::new());
    }

    #[test]
    fn the_first_outcome_ends_a_sale_even_when_it_comes_before_the_order() {
        let ended = FollowEvent::Ended { ending: Ending::Refused, at: T0 };
        given::<Sale>([]).when(FollowCommand::End { ending: Ending::Refused, at: T0 }).then([ended.clone()]);
        given::<Sale>([ended.clone()]).when(FollowCommand::End { ending: Ending::Shipped, at: T0 }).then([]);
        let state = Sale::fold(&[ended]);
        assert_eq!(Sale::project("o-1", None, &state, &FollowEvent::Ended { ending: Ending::Refused, at: T0 }), None);
    }

    #[test]
    fn the_hour_counts_orders_where_placed_and_revenue_where_shipped() {
        let minute = 60_000_000;
        let sales = [
            sale("o-1", vec![line("mango", 2), line("durian", 1)], 0, Some(minute + 5)),
            sale("o-2", vec![line("mango", 3)], 10, None),
            sale("o-old", vec![line("vanilla", 9)], -2 * 3_600_000_000, Some(-2 * 3_600_000_000 + 10)),
        ];
        let insight = channel_insight("store711", &sales, T0.plus_micros(minute + 30));
        assert_eq!((insight.orders, insight.shipped, insight.revenue), (2, 1, Money::from_minor(1500)));
        assert_eq!(insight.minutes.len(), 2, "{insight:#?}");
        assert_eq!((insight.minutes[0].orders, insight.minutes[0].revenue), (2, Money::ZERO));
        assert_eq!(
            (insight.minutes[1].orders, insight.minutes[1].shipped, insight.minutes[1].revenue),
            (0, 1, Money::from_minor(1500))
        );
        let json = serde_json::to_value(&insight).unwrap();
        assert_eq!(
            (&json["revenue"], &json["minutes"][1]["revenue"]),
            (&serde_json::json!(1500), &serde_json::json!(1500))
        );
        let top: Vec<(&str, u64)> = insight.top_flavors.iter().map(|f| (f.flavor.as_str(), f.quantity)).collect();
        assert_eq!(top, [("mango", 5), ("durian", 1)], "vanilla was ordered two hours ago");
    }

    #[test]
    fn a_singapore_order_waits_from_valid_until_it_ships() {
        let placed = Integration::OrderPlaced(OrderPlaced {
            order_id: "o-1".into(),
            customer_id: "cust-1".into(),
            channel: "web".into(),
            country: "sg".into(),
            items: vec![line("mango", 1)],
            total: 500,
            card_token: "tok_visa".into(),
            postal_code: None,
        });
        assert_eq!(react_dispatch(&placed, T0), None, "only validated orders wait");
        let shipped = Integration::OrderShipped(OrderShipped {
            order_id: "o-1".into(),
            shipment_id: "s".into(),
            postal_code: "018956".into(),
        });
        let (_, end) = react_dispatch(&shipped, T0).expect("an outcome");
        let waiting = FollowEvent::Started(ValidOrder {
            customer_id: "cust-1".into(),
            items: vec![line("mango", 1)],
            total: Money::from_minor(500),
            postal_code: None,
            at: T0,
        });
        let state = Dispatch::fold(std::slice::from_ref(&waiting));
        let view = Dispatch::project("o-1", None, &state, &waiting).expect("a view");
        assert_eq!((view.status, Dispatch::due(&view)), (DispatchStatus::Waiting, Some(T0)));
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!((&json["status"], &json["total"]), (&serde_json::json!("WAITING"), &serde_json::json!(500)));
        assert_eq!(Dispatch::tags(&view)[0].as_deref(), Some("WAITING"));
        let ended = Dispatch::decide(&state, end).unwrap();
        let state = Dispatch::fold(&[waiting, ended[0].clone()]);
        let view = Dispatch::project("o-1", None, &state, &ended[0]).expect("a view");
        assert_eq!((view.status.as_str(), Dispatch::due(&view)), ("SHIPPED", None), "an order that ended is not due");
        for ending in [Ending::Shipped, Ending::Refused, Ending::CalledOff] {
            let status = DispatchStatus::from(ending);
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::to_value(ending).unwrap());
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        let refused = Integration::PaymentDeclined(StepRefused { order_id: "o-1".into(), reason: "no".into() });
        assert_eq!(ending_of(&refused), Some(Ending::Refused));
    }
}
