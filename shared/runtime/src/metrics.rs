//! The saga's own metrics, kept for the whole process and counted only when
//! the transaction that did the work commits ([`Tx::on_commit`]).
//!
//! - `udders_saga_duration_seconds{outcome}`: from an order's acceptance to
//!   its terminal status, observed by the order service when it concludes.
//! - `udders_compensations_total{service,kind}`: compensating events
//!   (`credit/released`, `inventory/released`, `payment/refunded`) each
//!   service published.
//!
//! In `udders up` the six services share one process and one set; with
//! `udders service` each instance counts its own share, and Prometheus sums
//! them.
//!
//! [`Tx::on_commit`]: udders_eventstore::Tx::on_commit

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use udders_contracts::Service;
use udders_eventstore::Tx;
use udders_messaging::metrics::{Histogram, SAGA_BOUNDS};

/// The process's saga metrics.
#[derive(Debug, Default)]
pub struct SagaMetrics {
    durations: Mutex<BTreeMap<&'static str, Arc<Histogram>>>,
    compensations: Mutex<BTreeMap<(Service, &'static str), u64>>,
}

static SAGA: LazyLock<SagaMetrics> = LazyLock::new(SagaMetrics::default);

/// The one set of this process.
pub fn saga() -> &'static SagaMetrics {
    &SAGA
}

impl SagaMetrics {
    /// Observes, once `tx` commits, a saga that ended with `outcome`
    /// (`COMPLETED`, `REJECTED`, `CANCELLED`) after `took`.
    pub fn saga_concluded(&'static self, tx: &mut Tx, outcome: &'static str, took: Duration) {
        tx.on_commit(move || self.histogram(outcome).observe(took));
    }

    /// Counts, once `tx` commits, a compensating event `kind` published by `service`.
    pub fn compensated(&'static self, tx: &mut Tx, service: Service, kind: &'static str) {
        tx.on_commit(move || {
            if let Ok(mut counts) = self.compensations.lock() {
                *counts.entry((service, kind)).or_default() += 1;
            }
        });
    }

    fn histogram(&self, outcome: &'static str) -> Arc<Histogram> {
        let mut durations = self.durations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        durations.entry(outcome).or_insert_with(|| Arc::new(Histogram::new(SAGA_BOUNDS))).clone()
    }

    /// Sagas concluded with `outcome` so far.
    pub fn concluded(&self, outcome: &'static str) -> u64 {
        self.histogram(outcome).count()
    }

    /// Compensating events `kind` that `service` published so far.
    pub fn compensations(&self, service: Service, kind: &'static str) -> u64 {
        self.compensations.lock().map_or(0, |c| c.get(&(service, kind)).copied().unwrap_or(0))
    }

    /// Appends both metrics in Prometheus text. The duration histogram has
    /// no lines until a saga ends in this process; compensations are listed
    /// only for `services` (those this process runs), zero included.
    pub fn write_prometheus(&self, out: &mut String, services: impl IntoIterator<Item = Service>) {
        let _ = writeln!(
            out,
            "# HELP udders_saga_duration_seconds Time from an order's acceptance to its terminal status."
        );
        let _ = writeln!(out, "# TYPE udders_saga_duration_seconds histogram");
        let durations: Vec<_> =
            self.durations.lock().map(|d| d.iter().map(|(k, v)| (*k, v.clone())).collect()).unwrap_or_default();
        for (outcome, histogram) in durations {
            histogram.write_prometheus(out, "udders_saga_duration_seconds", &format!("outcome=\"{outcome}\""));
        }
        let _ = writeln!(out, "# HELP udders_compensations_total Compensating events published, by service and kind.");
        let _ = writeln!(out, "# TYPE udders_compensations_total counter");
        for service in services {
            for kind in compensation_kinds(service) {
                let n = self.compensations(service, kind);
                let _ = writeln!(out, "udders_compensations_total{{service=\"{service}\",kind=\"{kind}\"}} {n}");
            }
        }
    }
}

/// The compensating events a service publishes.
pub fn compensation_kinds(service: Service) -> &'static [&'static str] {
    match service {
        Service::Credit => &["credit/released"],
        Service::Inventory => &["inventory/released"],
        Service::Payment => &["payment/refunded"],
        Service::Order
        | Service::Validation
        | Service::ValidationUs
        | Service::Fulfillment
        | Service::Notification
        | Service::Insights => &[],
    }
}
