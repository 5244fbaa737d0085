//! The point of sale's prices, reference data the order service owns:
//! `GET /prices`, and `PUT /admin/prices/{flavor}/{country}` (operator
//! token) which records a [`Price`] change and publishes `price/changed`.
//! [`price_list`] is what `POST /orders` prices an order with; the order
//! carries those prices from then on, so a change never reaches an order
//! in flight.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use udders_contracts::events::PriceChanged;
use udders_contracts::{Integration, reference};
use udders_eventstore::{DocumentFilter, EventStore, StoreError};
use udders_kernel::Money;
use udders_order_domain::price::{Price, PriceEvent, PriceView, SetPrice, price_id};
use udders_runtime::http::{JsonBody, Path, Problem};
use udders_runtime::{Cause, change_reference};

use crate::OrderApi;

/// The unit prices an order placed now pays in `country`, for `flavors`
/// (each on sale; others are left out and the order fails validation).
pub async fn price_list<'a>(
    store: &EventStore,
    country: &str,
    flavors: impl Iterator<Item = &'a str>,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut prices = BTreeMap::new();
    for flavor in flavors {
        if prices.contains_key(flavor) {
            continue;
        }
        let Some(list_price) = reference::unit_price(flavor) else { continue };
        let changed =
            match store.document(<Price as udders_kernel::ReadModel>::VIEW, &price_id(flavor, country)).await? {
                Some(doc) => serde_json::from_value::<PriceView>(doc.doc).ok().map(|v| v.unit_price.minor()),
                None => None,
            };
        prices.insert(flavor.to_owned(), changed.unwrap_or(list_price));
    }
    Ok(prices)
}

/// Every flavour's price in every country served: the list price unless an
/// operator changed it.
#[utoipa::path(get, path = "/prices", tag = "order",
    responses((status = 200, body = [PriceView])))]
pub async fn prices(State(api): State<OrderApi>) -> Result<Response, Problem> {
    let view = <Price as udders_kernel::ReadModel>::VIEW;
    let changed: BTreeMap<(String, String), PriceView> = api
        .store
        .documents(view, &DocumentFilter { limit: 10_000, ..DocumentFilter::default() })
        .await?
        .into_iter()
        .filter_map(|doc| serde_json::from_value::<PriceView>(doc.doc).ok())
        .map(|v| ((v.flavor.clone(), v.country.clone()), v))
        .collect();
    let mut all = Vec::new();
    for country in reference::COUNTRIES {
        for (flavor, list_price) in reference::FLAVORS {
            all.push(changed.get(&(flavor.to_owned(), country.to_owned())).cloned().unwrap_or(PriceView {
                flavor: flavor.to_owned(),
                country: country.to_owned(),
                unit_price: Money::from_minor(list_price),
                changed: false,
            }));
        }
    }
    Ok(axum::Json(all).into_response())
}

/// The body of `PUT /admin/prices/{flavor}/{country}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrice {
    /// Minor units, 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1000000)]
    #[serde(deserialize_with = "udders_runtime::http::whole_i64")]
    pub unit_price: i64,
}

/// Changes a flavour's price in a country for orders placed from now on,
/// and publishes `price/changed`. Orders in flight keep their price.
#[utoipa::path(put, path = "/admin/prices/{flavor}/{country}", tag = "operations",
    params(("flavor" = String, Path, description = "A flavour on sale"),
        ("country" = String, Path, description = "A country served")),
    request_body = NewPrice,
    security(("operator" = [])),
    responses((status = 200, body = PriceView),
        (status = 404, description = "No such flavour or country", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Changed concurrently too often", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn change_price(
    State(api): State<OrderApi>,
    Path((flavor, country)): Path<(String, String)>,
    JsonBody(body): JsonBody<NewPrice>,
) -> Result<Response, Problem> {
    let list_price = reference::unit_price(&flavor)
        .map(Money::from_minor)
        .ok_or_else(|| Problem::not_found(format!("no flavour {flavor:?} is on sale")))?;
    if !reference::serves(&country) {
        return Err(Problem::not_found(format!("country {country:?} is not served")));
    }
    let cause = Cause::new_saga(flavor.clone(), country.clone(), "admin".to_owned());
    let state = change_reference::<Price>(
        &api.store,
        &api.outbound,
        &price_id(&flavor, &country),
        &cause,
        |state| {
            let unit_price = Money::from_minor(body.unit_price);
            <Price as udders_kernel::Decider>::decide(state, SetPrice { unit_price, list_price })
                .map_err(|e| Problem::unprocessable(e.to_string()))
        },
        |_, PriceEvent::Changed { unit_price, previous }| {
            Some(Integration::PriceChanged(PriceChanged {
                flavor: flavor.clone(),
                country: country.clone(),
                unit_price: unit_price.minor(),
                previous: previous.minor(),
            }))
        },
    )
    .await?;
    let unit_price = state.unit_price.unwrap_or(list_price);
    Ok(axum::Json(PriceView { flavor, country, unit_price, changed: state.unit_price.is_some() }).into_response())
}
