//! Typed subscriptions: how a service declares the routes it listens on,
//! beside the code that reacts to them.
//!
//! Each domain crate names its routes in a `Route` enum (implementing
//! [`Route`]) and lists its rows, in priority order, as
//! `SUBSCRIPTIONS: &[Subscribe<Route>]`, right beside its `react`, which
//! matches on the route first. The `udders` binary turns every deployable's
//! rows into the catalog's untyped [`Subscription`]s ([`subscriptions`]) and
//! assembles them with the published events
//! ([`Catalog::assemble`](crate::Catalog::assemble)). The consumer names a
//! record's route by its name; the handler reads it back with
//! [`Route::from_name`], and a name it does not know is a dead letter.

use std::collections::BTreeSet;
use std::fmt::Debug;

use crate::catalog::{CatalogError, Service, Subscription};
use crate::pattern::{Pattern, PatternError};
use crate::subject::Subject;

/// A service's routes: each names one or more rows of its subscriptions and
/// tells its `react` what a record heard on them is for.
pub trait Route: Copy + Eq + Debug + 'static {
    /// Every route of the service.
    const ALL: &'static [Self];

    /// Its name, as the catalog, `docs/events.md`, the AsyncAPI document and
    /// the dead letters spell it (for example `rules-1.2-us`).
    fn name(self) -> &'static str;

    /// The route of this name, if the service has one.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|route| route.name() == name)
    }
}

/// One subscription row of a service: a pattern, the route it feeds, and the
/// events (`domain/action`, the service's own) the route may publish in
/// answer to what it hears (empty for a route that only records; the loop
/// check reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<R> {
    /// The route a matching record is handed to.
    pub route: R,
    /// What it listens to (a [`Pattern`], parsed when the catalog is assembled).
    pub pattern: &'static str,
    /// What the route may publish in answer.
    pub emits: &'static [&'static str],
}

impl<R> Subscribe<R> {
    /// A row, in a `const` table.
    pub const fn new(route: R, pattern: &'static str, emits: &'static [&'static str]) -> Self {
        Self { route, pattern, emits }
    }
}

impl<R: Route> Subscribe<R> {
    /// This row as a subscription of the deployable `service`: its pattern
    /// parsed ([`CatalogError::BadPattern`] when it does not parse).
    pub fn subscription(&self, service: Service) -> Result<Subscription, CatalogError> {
        let (route, emits) = (self.route.name(), self.emits);
        self.pattern
            .parse()
            .map(|pattern| Subscription { service, route, pattern, emits })
            .map_err(|e: PatternError| CatalogError::BadPattern { service, route, reason: e.to_string() })
    }
}

/// A deployable's rows as the catalog's subscriptions, in their order.
pub fn subscriptions<R: Route>(service: Service, rows: &[Subscribe<R>]) -> Result<Vec<Subscription>, CatalogError> {
    rows.iter().map(|row| row.subscription(service)).collect()
}

/// The route of the first of `rows` whose pattern matches `subject` (the
/// consumer's rule for one service's own table), if any. A pattern that does
/// not parse matches nothing (the catalog refuses it at start).
pub fn route_for<R: Route>(rows: &[Subscribe<R>], subject: &Subject) -> Option<R> {
    rows.iter().find(|row| row.pattern.parse::<Pattern>().is_ok_and(|p| p.matches(subject))).map(|row| row.route)
}

/// What is wrong with a service's route table, in words (empty when
/// nothing): a route of [`Route::ALL`] that no row names, a row whose route
/// [`Route::ALL`] leaves out, two routes of one name, a name that
/// [`Route::from_name`] does not read back, a pattern that does not parse.
/// Each domain crate's tests run it on its table.
pub fn route_table_problems<R: Route>(rows: &[Subscribe<R>]) -> Vec<String> {
    let mut problems = Vec::new();
    for route in R::ALL {
        if !rows.iter().any(|row| row.route == *route) {
            problems.push(format!("the route {route:?} ({}) has no subscription", route.name()));
        }
        if R::from_name(route.name()) != Some(*route) {
            problems.push(format!("the name {:?} does not read back as {route:?}", route.name()));
        }
    }
    let names: BTreeSet<&str> = R::ALL.iter().map(|route| route.name()).collect();
    if names.len() != R::ALL.len() {
        problems.push(format!("{} routes share {} names", R::ALL.len(), names.len()));
    }
    for row in rows {
        if !R::ALL.contains(&row.route) {
            problems.push(format!("the route {:?} of {:?} is missing from Route::ALL", row.route, row.pattern));
        }
        if let Err(e) = row.pattern.parse::<Pattern>() {
            problems.push(format!("the pattern {:?} of {:?}: {e}", row.pattern, row.route));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Test {
        Reserve,
        Release,
    }

    impl Route for Test {
        const ALL: &'static [Test] = &[Test::Reserve, Test::Release];

        fn name(self) -> &'static str {
            match self {
                Test::Reserve => "reserve",
                Test::Release => "release",
            }
        }
    }

    const ROWS: &[Subscribe<Test>] = &[
        Subscribe::new(Test::Reserve, "order/valid/>", &["credit/reserved"]),
        Subscribe::new(Test::Release, "order/cancelled/>", &[]),
        Subscribe::new(Test::Release, "order/*/*/*/*/*/*/store711", &[]),
    ];

    #[test]
    fn a_route_reads_back_from_its_name_and_an_unknown_name_is_none() {
        assert_eq!(Test::from_name("release"), Some(Test::Release));
        assert_eq!(Test::from_name("relaese"), None);
        assert!(route_table_problems(ROWS).is_empty(), "{:?}", route_table_problems(ROWS));
    }

    #[test]
    fn rows_become_subscriptions_in_their_order_and_the_first_match_names_the_route() {
        let subscriptions = subscriptions(Service::Credit, ROWS).unwrap();
        let rows: Vec<(Service, &str, &str)> =
            subscriptions.iter().map(|s| (s.service, s.route, s.pattern.as_str())).collect();
        assert_eq!(
            rows,
            [
                (Service::Credit, "reserve", "order/valid/>"),
                (Service::Credit, "release", "order/cancelled/>"),
                (Service::Credit, "release", "order/*/*/*/*/*/*/store711"),
            ]
        );
        assert_eq!(subscriptions[0].emits, ["credit/reserved"]);
        let subject = |s: &str| s.parse::<Subject>().unwrap();
        assert_eq!(route_for(ROWS, &subject("order/valid/1.0/icecream/udders/mango/sg/store711")), Some(Test::Reserve));
        assert_eq!(route_for(ROWS, &subject("order/init/1.1/icecream/udders/mango/sg/store711")), Some(Test::Release));
        assert_eq!(route_for(ROWS, &subject("order/init/1.1/icecream/udders/mango/sg/web")), None);
    }

    #[test]
    fn a_route_without_a_row_and_a_pattern_that_does_not_parse_are_problems() {
        let rows = [Subscribe::new(Test::Reserve, "order//valid", &[])];
        let problems = route_table_problems(&rows);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("Release"), "{problems:?}");
        assert!(matches!(
            subscriptions(Service::Credit, &rows),
            Err(CatalogError::BadPattern { service: Service::Credit, route: "reserve", .. })
        ));
    }
}
