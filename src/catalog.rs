//! The Udders catalog, assembled: the events the contracts publish
//! (`udders_contracts::udders_events`) and every deployable's subscriptions,
//! each declared in its service's domain crate beside the `react` that
//! handles them (`services/<name>/domain/src/lib.rs`: a typed `Route` enum
//! and its `SUBSCRIPTIONS`), re-exported by the service crates.
//! `udders catalog` prints it; every process checks it at start.

use std::collections::{BTreeMap, VecDeque};

use udders_contracts::{Catalog, CatalogError, Service, Subscription, subscriptions, udders_events};

/// The order the catalog lists the rows in: each step takes the next rows
/// of one deployable's declaration (in its own priority order). The routes
/// of one service keep their order whatever this says; the order across
/// services is that of `docs/events.md` (the reactions to each event, the
/// subscriptions table) and of the AsyncAPI operations, which a test keeps
/// unchanged.
const ORDER: &[(Service, usize)] = &[
    (Service::ValidationUs, 1),
    (Service::Validation, 1),
    (Service::Credit, 3),
    (Service::Inventory, 2),
    (Service::Payment, 8),
    (Service::Fulfillment, 1),
    (Service::Inventory, 1),
    (Service::Fulfillment, 2),
    (Service::Order, 1),
    (Service::Notification, 9),
    (Service::Insights, 13),
    // The compensation triggers each holder answers: cancelled, expired,
    // declined, failed.
    (Service::Credit, 1),
    (Service::Inventory, 1),
    (Service::Credit, 1),
    (Service::Inventory, 1),
    (Service::Credit, 1),
    (Service::Inventory, 1),
    (Service::Credit, 1),
    (Service::Inventory, 1),
    (Service::Payment, 2),
];

/// Every deployable's subscriptions as its domain crate declares them, each
/// in its own priority order.
pub fn declared() -> Result<BTreeMap<Service, VecDeque<Subscription>>, CatalogError> {
    let mut rows = Vec::new();
    for (service, row) in udders_validation::SUBSCRIPTIONS {
        rows.push(row.subscription(*service)?);
    }
    rows.extend(subscriptions(udders_credit::SERVICE, udders_credit::SUBSCRIPTIONS)?);
    rows.extend(subscriptions(udders_inventory::SERVICE, udders_inventory::SUBSCRIPTIONS)?);
    rows.extend(subscriptions(udders_payment::SERVICE, udders_payment::SUBSCRIPTIONS)?);
    rows.extend(subscriptions(udders_fulfillment::SERVICE, udders_fulfillment::SUBSCRIPTIONS)?);
    rows.extend(subscriptions(udders_order::SERVICE, udders_order::SUBSCRIPTIONS)?);
    rows.extend(subscriptions(udders_notification::SERVICE, udders_notification::SUBSCRIPTIONS)?);
    rows.extend(subscriptions(udders_insights::SERVICE, udders_insights::SUBSCRIPTIONS)?);
    let mut declared: BTreeMap<Service, VecDeque<Subscription>> = BTreeMap::new();
    for row in rows {
        declared.entry(row.service).or_default().push_back(row);
    }
    Ok(declared)
}

/// The Udders catalog: the published events and every deployable's
/// subscriptions, checked (see [`Catalog::check`]).
pub fn udders() -> Result<Catalog, CatalogError> {
    let mut declared = declared()?;
    let mut subscriptions = Vec::new();
    for &(service, rows) in ORDER {
        let next = declared.entry(service).or_default();
        let rows = rows.min(next.len());
        subscriptions.extend(next.drain(..rows));
    }
    // Rows `ORDER` does not reach yet (a new subscription) come last, by
    // service: none is lost, and the test below names the step to add.
    subscriptions.extend(declared.into_values().flatten());
    Catalog::assemble(udders_events(), subscriptions)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use udders_contracts::Subject;

    use super::*;

    /// `docs/events.md` is what `udders catalog --format markdown` prints;
    /// `UDDERS_BLESS_SCHEMAS=1` writes it.
    #[test]
    fn the_committed_event_table_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md");
        let generated = udders().unwrap().to_markdown();
        if std::env::var_os("UDDERS_BLESS_SCHEMAS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/events.md is stale: udders catalog --format markdown > docs/events.md (or UDDERS_BLESS_SCHEMAS=1)"
        );
    }

    #[test]
    fn the_order_takes_every_declared_row_once() {
        let declared = declared().unwrap();
        for service in Service::ALL {
            let taken: usize = ORDER.iter().filter(|(s, _)| *s == service).map(|(_, rows)| rows).sum();
            let rows = declared.get(&service).map_or(0, VecDeque::len);
            assert_eq!(taken, rows, "ORDER takes {taken} of the {rows} rows {service} declares");
            assert!(rows > 0, "{service} declares no subscription");
        }
    }

    #[test]
    fn the_udders_catalog_holds_together() {
        let catalog = udders().unwrap();
        assert_eq!(catalog.events.len(), 21, "18 saga events and 3 of reference data");
        assert!(catalog.topics_for(Service::Validation).contains("udders.order"));
        assert_eq!(catalog.topics_for(Service::Fulfillment), ["udders.order", "udders.payment"].into_iter().collect());
        assert_eq!(catalog.topics_for(Service::Order).len(), 6, "order follows every service");
        let init_12 = catalog.events.iter().find(|e| e.name() == "order/init" && e.version == "1.2").unwrap();
        let subscribers = catalog.subscribers_of(init_12);
        assert!(subscribers.contains(&(Service::ValidationUs, "rules-1.2-us")));
        assert!(subscribers.contains(&(Service::Validation, "rules-1.1")), "1.2 from outside the US goes to 1.1");
    }

    #[test]
    fn validation_and_validation_us_share_one_route_table_and_each_handles_only_its_own() {
        let catalog = udders().unwrap();
        let table =
            |service| -> Vec<(&str, bool)> { catalog.routes_of(service).map(|(s, mine)| (s.route, mine)).collect() };
        assert_eq!(table(Service::ValidationUs), [("rules-1.2-us", true), ("rules-1.1", false)]);
        assert_eq!(table(Service::Validation), [("rules-1.2-us", false), ("rules-1.1", true)]);
        assert_eq!(table(Service::Credit).iter().filter(|(_, mine)| !mine).count(), 0, "no sibling, nothing passed by");
        let first = |subject: &str| {
            let subject: Subject = subject.parse().unwrap();
            catalog.routes_of(Service::Validation).find(|(s, _)| s.pattern.matches(&subject)).map(|(s, _)| s.service)
        };
        assert_eq!(first("order/init/1.2/icecream/udders/mango/us/web"), Some(Service::ValidationUs));
        assert_eq!(first("order/init/1.2/icecream/udders/mango/sg/web"), Some(Service::Validation));
        assert_eq!(
            first("order/init/1.1/icecream/udders/mango/us/web"),
            Some(Service::Validation),
            "1.1 path untouched"
        );
        assert_eq!(Service::ValidationUs.topic(), Service::Validation.topic(), "it publishes as validation");
        assert_ne!(Service::ValidationUs.dead_letter_topic(), Service::Validation.dead_letter_topic());
    }

    #[test]
    fn the_answerers_of_an_event_exclude_the_routes_that_only_record() {
        let catalog = udders().unwrap();
        let answerers = |domain, action| catalog.answerers_of(catalog.spec_named(domain, action, None).unwrap());
        assert_eq!(answerers("order", "valid"), [Service::Credit, Service::Inventory, Service::Payment]);
        assert_eq!(answerers("order", "shipped"), [Service::Credit]);
        let init_1_2 = catalog.spec_named("order", "init", Some("1.2")).unwrap();
        assert_eq!(catalog.answerers_of(init_1_2), [Service::Validation], "validation-us answers as validation");
        assert_eq!(answerers("order", "cancelled"), [Service::Credit, Service::Inventory, Service::Payment]);
    }

    #[test]
    fn the_udders_subscriptions_have_no_loop_and_say_what_causes_what() {
        let catalog = udders().unwrap();
        assert_eq!(catalog.find_loop(), None);
        let causes = catalog.causes();
        let of = |event: &str| causes[event].iter().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(of("payment/declined"), ["credit/released", "inventory/released"]);
        assert_eq!(of("credit/released"), Vec::<&str>::new(), "payment only notes a release");
        assert!(of("order/valid").contains(&"payment/captured"));
    }

    #[test]
    fn the_asyncapi_document_references_resolve() {
        let doc = udders().unwrap().to_asyncapi();
        assert_eq!(doc["asyncapi"], "3.0.0");
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.len() > 40);
        for r in refs {
            assert!(r.starts_with("#/"), "every $ref points inside the document: {r}");
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
        assert!(doc["components"]["schemas"]["OrderLine"].is_object(), "{:#}", doc["components"]["schemas"]);
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
