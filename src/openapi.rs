//! The OpenAPI document of the one-process system, and Swagger UI (its
//! assets are vendored into the binary: no CDN): the system's own paths,
//! each service module's (the [`crate::registry`]), and the problems and
//! credentials of every operation.

use utoipa::{Modify, OpenApi};

/// Every HTTP path of `udders up`: the system's own and each service
/// module's, with the schemas they use, the two credentials and each
/// operation's problems. What `/openapi.json` serves.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    // Each service's tag comes with its module, in the registry's order,
    // ahead of the system's own.
    let system_tags = document.tags.take();
    for module in &crate::registry::MODULES {
        document.merge(module.openapi());
    }
    document.tags.get_or_insert_with(Vec::new).extend(system_tags.unwrap_or_default());
    // After the merge, so that the services' operations answer their
    // problems too.
    Security.modify(&mut document);
    Problems.modify(&mut document);
    document
}

/// The system's own paths (catalog, health, metrics, the console, the dead
/// letters), the document's info and the system's tags; [`document`] adds
/// the services' paths and tags.
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
        crate::http::catalog,
        crate::http::livez,
        crate::http::readyz,
        crate::http::metrics,
        crate::console::summary,
        crate::console::access,
        crate::console::live_events,
        crate::console::match_pattern,
        crate::console::catalog_live,
        crate::console::asyncapi,
        crate::console::dead_letters::list,
        crate::console::dead_letters::replay_one,
        crate::console::dead_letters::replay_matching,
        crate::console::dead_letters::discard,
    ),
    tags(
        (name = "system", description = "Catalog, health and metrics"),
        (name = "console", description = "What the console at / reads: the board's summary, the live feed, access"),
        (name = "operations", description = "Dead letters (list, replay, discard) and reference data (prices, stock, credit limits); every change needs the operator token"),
    )
)]
struct ApiDoc;

/// The problems every operation can answer, documented on each: 500 (the
/// server failed; the error is logged), 400 for an operation with
/// parameters (a query or path that does not parse), 401 for one that needs
/// a credential, and 413 and 415 for one with a JSON body (`JsonBody`
/// refuses a body over 64 KiB or of another type).
#[derive(Debug)]
struct Problems;

impl utoipa::Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |what: &str| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            ResponseBuilder::new().description(what).content("application/problem+json", content).build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let needs_credential = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                if has_parameters && !responses.contains_key("400") {
                    responses.insert("400".into(), problem("A query or path parameter does not parse").into());
                }
                if needs_credential {
                    responses.entry("401".into()).or_insert_with(|| {
                        problem("The credential is missing or wrong (Authorization: Bearer <token>)").into()
                    });
                }
                if has_body {
                    responses.entry("413".into()).or_insert_with(|| problem("The body is over 64 KiB").into());
                    responses.entry("415".into()).or_insert_with(|| problem("Not application/json").into());
                }
                responses
                    .entry("500".into())
                    .or_insert_with(|| problem("The server failed; the error is logged").into());
            }
        }
    }
}

/// The two credentials: the operator token (dead-letter actions) and a POS
/// API key (`POST /orders` and cancel, when `UDDERS_API_KEYS` is set).
#[derive(Debug)]
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("operator", "The operator token (UDDERS_OPERATOR_TOKEN, or the one `udders up` prints)"),
            ("api_key", "A POS API key (one of UDDERS_API_KEYS), when keys are set"),
        ] {
            let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(what)).build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every service's paths are in the document, and the modifiers ran on
    /// the merged document: each operation answers its problems.
    #[test]
    fn the_document_merges_every_service_and_gives_each_operation_its_problems() {
        let document = serde_json::to_value(super::document()).expect("the document is JSON");
        for path in [
            "/orders",
            "/orders/{order_id}",
            "/orders/{order_id}/cancel",
            "/orders/{order_id}/events",
            "/orders/stats",
            "/orders/stuck",
            "/prices",
            "/admin/prices/{flavor}/{country}",
            "/inventory",
            "/admin/stock/{flavor}/{country}",
            "/customers/{customer_id}/credit",
            "/admin/customers/{customer_id}/credit-limit",
            "/payments/{order_id}",
            "/shipments/{order_id}",
            "/customers/{customer_id}/notifications",
            "/insights/channels/{channel}",
            "/insights/countries/{country}",
            "/catalog",
            "/readyz",
        ] {
            let item = document["paths"][path].as_object().unwrap_or_else(|| panic!("{path} is documented"));
            for (method, operation) in item {
                if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    assert!(operation["responses"]["500"].is_object(), "{method} {path} documents its problems");
                }
            }
        }
        let schemas = &document["components"]["schemas"];
        for schema in ["Problem", "NewLimit", "Restock", "DispatchQueue"] {
            assert!(schemas[schema].is_object(), "the schema {schema} is in the components");
        }
        for scheme in ["operator", "api_key"] {
            assert!(document["components"]["securitySchemes"][scheme].is_object(), "{scheme}");
        }
        let tags: Vec<&str> =
            document["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(tags.first(), Some(&"order"));
        assert_eq!(tags.len(), 10, "{tags:?}");
    }
}
