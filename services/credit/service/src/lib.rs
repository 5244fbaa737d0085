//! The credit service's I/O: its handler (reserve on `order/valid`, release
//! on every compensation trigger, settle on `order/shipped`), its read model and its HTTP route
//! `GET /customers/{customer_id}/credit`, and the operator's
//! `PUT /admin/customers/{customer_id}/credit-limit`, which publishes
//! `credit/limit-changed`. The rules are in `udders-credit-domain`, how a
//! reaction meets the account and the order's hold included
//! (`account_touched`, `decide_reaction`): the handler loads, asks and records.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use udders_contracts::events::CreditLimitChanged;
use udders_contracts::{Integration, Service};
use udders_credit_domain::{
    Account, AccountCommand, AccountEvent, AccountState, CreditView, HoldEvent, OrderHold, Reaction, account_touched,
    credit_view, decide_reaction, limit_for, react,
};
use udders_eventstore::{EventStore, StoreError, Tx};
use udders_kernel::Money;
use udders_kernel::{Decider, ReadModel};
use udders_messaging::{Handler, HandlerError, Incoming};
use udders_runtime::http::{JsonBody, Path, Problem};
use udders_runtime::replay::replay_one;
use udders_runtime::{Cause, Outbound, change_reference, integration, record, record_viewed, route};

/// This service's routes and subscriptions, declared in its domain crate.
pub use udders_credit_domain::{Route, SUBSCRIPTIONS};

/// This service.
pub const SERVICE: Service = Service::Credit;

/// Reacts to validated orders and compensation triggers.
#[derive(Debug, Clone)]
pub struct CreditHandler {
    outbound: Outbound,
}

impl CreditHandler {
    /// A handler publishing through `outbound`.
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }
}

impl Handler for CreditHandler {
    async fn handle(&self, tx: &mut Tx, incoming: &Incoming) -> Result<(), HandlerError> {
        let route: Route = route(incoming, SERVICE)?;
        let Some(reaction) = react(route, &integration(incoming)?) else { return Ok(()) };
        let cause = Cause::of(incoming);
        // The validated order starts the order's hold: no read would find one.
        let mut hold = match reaction {
            Reaction::Reserve { .. } => tx.open::<OrderHold>(reaction.order()).await?,
            _ => tx.load::<OrderHold>(reaction.order()).await?,
        };
        let mut account = match account_touched(&reaction, &hold.state) {
            Some(customer) => Some(tx.load::<Account>(customer).await?),
            None => None,
        };
        let decision = decide_reaction(reaction, &hold.state, account.as_ref().map(|loaded| &loaded.state))
            .map_err(HandlerError::permanent)?;
        if let Some(account) = &mut account {
            record_viewed(tx, account, decision.account, &cause, &self.outbound, |_| None).await?;
        }
        let publish = |e: &HoldEvent| Some((e.integration(), None));
        record(tx, &mut hold, decision.hold, &cause, &self.outbound, publish).await?;
        Ok(())
    }
}

/// Drops and rebuilds this service's read models from its events.
pub async fn replay(store: &EventStore) -> Result<usize, StoreError> {
    replay_one::<Account>(store).await
}

/// `GET /customers/{customer_id}/credit`.
pub fn routes(store: EventStore) -> Router {
    Router::new().route("/customers/{customer_id}/credit", get(credit)).with_state(store)
}

/// A customer's limit, reserved amount and what is available. A customer
/// never seen has the seeded limit and nothing reserved.
#[utoipa::path(get, path = "/customers/{customer_id}/credit", tag = "credit",
    params(("customer_id" = String, Path, pattern = "^[A-Za-z0-9_.:-]{1,64}$", description = "The customer, for example cust-42")),
    responses((status = 200, body = CreditView), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn credit(
    State(store): State<EventStore>,
    Path(customer): Path<String>,
) -> Result<axum::Json<CreditView>, Problem> {
    if udders_kernel::CustomerId::parse(customer.as_str()).is_err() {
        return Err(Problem::bad_request(format!("{customer:?} is not a customer id")));
    }
    let view = match store.document(Account::VIEW, &customer).await? {
        Some(doc) => serde_json::from_value(doc.doc).map_err(|e| Problem::internal(&e))?,
        None => credit_view(&customer, &AccountState::default()),
    };
    Ok(axum::Json(view))
}

/// The operator's route (the caller puts it behind the operator token):
/// `PUT /admin/customers/{customer_id}/credit-limit`.
pub fn admin_routes(store: EventStore, outbound: Outbound) -> Router {
    Router::new().route("/admin/customers/{customer_id}/credit-limit", put(change_limit)).with_state((store, outbound))
}

/// The body of `PUT /admin/customers/{customer_id}/credit-limit`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLimit {
    /// Minor units, 0 to 1,000,000,000,000.
    #[schema(minimum = 0, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "udders_runtime::http::whole_i64")]
    pub limit: i64,
}

/// The highest limit accepted, minor units.
pub const MAX_LIMIT: i64 = 1_000_000_000_000;

/// Sets a customer's credit limit for the reservations to come (holds
/// already taken stay) and publishes `credit/limit-changed`.
#[utoipa::path(put, path = "/admin/customers/{customer_id}/credit-limit", tag = "operations",
    params(("customer_id" = String, Path, pattern = "^[A-Za-z0-9_.:-]{1,64}$", description = "The customer, for example cust-42")),
    request_body = NewLimit,
    security(("operator" = [])),
    responses((status = 200, body = CreditView),
        (status = 409, description = "Changed concurrently too often", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn change_limit(
    State((store, outbound)): State<(EventStore, Outbound)>,
    Path(customer): Path<String>,
    JsonBody(body): JsonBody<NewLimit>,
) -> Result<axum::Json<CreditView>, Problem> {
    if udders_kernel::CustomerId::parse(customer.as_str()).is_err() {
        return Err(Problem::bad_request(format!("{customer:?} is not a customer id")));
    }
    if !(0..=MAX_LIMIT).contains(&body.limit) {
        return Err(Problem::unprocessable(format!(
            "limit must be 0 to {MAX_LIMIT} (minor units), not {}",
            body.limit
        )));
    }
    let cause = Cause::new_saga("none".to_owned(), "all".to_owned(), "admin".to_owned());
    let command = AccountCommand::SetLimit { limit: Money::from_minor(body.limit), opening: limit_for(&customer) };
    let state = change_reference::<Account>(
        &store,
        &outbound,
        &customer,
        &cause,
        |state| Account::decide(state, command.clone()).map_err(|e| Problem::unprocessable(format!("{e:?}"))),
        |_, event| match event {
            AccountEvent::LimitChanged { limit, previous } => {
                Some(Integration::CreditLimitChanged(CreditLimitChanged {
                    customer_id: customer.clone(),
                    limit: limit.minor(),
                    previous: previous.minor(),
                }))
            }
            _ => None,
        },
    )
    .await?;
    Ok(axum::Json(credit_view(&customer, &state)))
}

mod module;

pub use module::{MODULE, Module};
