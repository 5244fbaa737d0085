//! The OpenAPI document of the one-process system, and Swagger UI (its
//! assets are vendored into the binary: no CDN).

use utoipa::OpenApi;

/// Every HTTP path of `udders up`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Udders",
        description = "Event-sourced ice-cream order processing, choreographed over Kafka. \
            Errors are application/problem+json. Business refusals are not HTTP errors: \
            the order is accepted and ends REJECTED with a reason.",
        license(name = "Apache-2.0")
    ),
    paths(
        udders_order::api::place,
        udders_order::api::one,
        udders_order::api::cancel,
        udders_order::api::list,
        udders_order::api::stats,
        udders_inventory::inventory,
        udders_credit::credit,
        udders_payment::payment,
        udders_fulfillment::shipment,
        crate::http::catalog,
        crate::http::livez,
        crate::http::readyz,
        crate::http::metrics,
    ),
    tags(
        (name = "order", description = "The point of sale and the order lifecycle"),
        (name = "inventory", description = "Stock per flavour and country"),
        (name = "credit", description = "Customer credit"),
        (name = "payment", description = "Charges and refunds"),
        (name = "fulfillment", description = "Shipments"),
        (name = "system", description = "Catalog, health and metrics"),
    )
)]
pub struct ApiDoc;
