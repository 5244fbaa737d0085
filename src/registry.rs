//! Every deployable, described once: the [`ServiceModule`] of each, in
//! [`Service::ALL`] order. Both topologies read it: `udders up`
//! ([`crate::system`]) and `udders service NAME` ([`crate::node`]) start,
//! seed, route, document and replay a service through its module, never by
//! its name. A new deployable is one line here (its module, from its own
//! crate) once `udders_contracts::Service` names it.

use udders_contracts::Service;
use udders_runtime::module::ServiceModule;

/// Each deployable's module, in [`Service::ALL`] order (one per service: the
/// length is checked when compiling, the order by a test).
pub static MODULES: [&dyn ServiceModule; Service::ALL.len()] = [
    &udders_order::MODULE,
    &udders_validation::MODULE,
    &udders_validation::US_MODULE,
    &udders_credit::MODULE,
    &udders_inventory::MODULE,
    &udders_payment::MODULE,
    &udders_fulfillment::MODULE,
    &udders_notification::MODULE,
    &udders_insights::MODULE,
];

/// The module of `service`.
pub fn module(service: Service) -> &'static dyn ServiceModule {
    // `MODULES` is as long as `Service::ALL`, so the index is in bounds.
    let at = Service::ALL.iter().position(|s| *s == service).unwrap_or_default();
    MODULES[at]
}

#[cfg(test)]
mod tests {
    use udders_contracts::Service;

    use super::{MODULES, module};

    #[test]
    fn every_deployable_has_one_module_in_the_order_of_service_all() {
        let listed: Vec<Service> = MODULES.iter().map(|m| m.service()).collect();
        assert_eq!(listed, Service::ALL);
        for service in Service::ALL {
            assert_eq!(module(service).service(), service);
        }
    }
}
