//! The production topology against the real thing: Apache Kafka (KRaft) and
//! PostgreSQL 15 in containers started by testcontainers, and the six
//! services as [`Node`]s (what `udders service NAME` runs), two instances
//! each sharing their database and consumer group.
//!
//! They need a Docker engine, so they are ignored unless asked for:
//!
//! ```sh
//! cargo nextest run -p udders-e2e --features testcontainers --run-ignored only
//! ```
//!
//! Without an engine they fail at once, saying so. The machine this project
//! is built on has none: CI compiles these tests (clippy with
//! `--all-features`) but does not run them; `scripts/multiprocess` runs the
//! same topology on `udders broker` and a local PostgreSQL instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testcontainers_modules::kafka::apache;
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};
use udders::invariants::{Endpoints, check};
use udders::node::{Node, NodeConfig};
use udders_contracts::Service;
use udders_e2e::{SAGA_TIMEOUT, an_order, init_logs};

const NO_DOCKER: &str = "these tests start containers: is a Docker engine reachable (DOCKER_HOST)?";

/// Kafka and PostgreSQL, running.
struct Infrastructure {
    kafka: ContainerAsync<apache::Kafka>,
    postgres: ContainerAsync<Postgres>,
}

impl Infrastructure {
    async fn start() -> Self {
        let kafka = apache::Kafka::default().with_jvm_image().start().await.expect(NO_DOCKER);
        let postgres = Postgres::default().with_tag("15").start().await.expect(NO_DOCKER);
        Self { kafka, postgres }
    }

    async fn bootstrap(&self) -> String {
        let port = self.kafka.get_host_port_ipv4(apache::KAFKA_PORT).await.expect("Kafka's port");
        format!("127.0.0.1:{port}")
    }

    /// A new database for `service`, as a URL.
    async fn database(&self, service: Service) -> String {
        let port = self.postgres.get_host_port_ipv4(5432).await.expect("PostgreSQL's port");
        let server = format!("postgres://postgres:postgres@127.0.0.1:{port}");
        let admin = udders_eventstore::EventStore::connect(&format!("{server}/postgres"), &Default::default())
            .await
            .expect("PostgreSQL answers");
        let pool = admin.postgres_pool().expect("a PostgreSQL store");
        let name = format!("udders_{}", service.name().replace('-', "_"));
        let statement = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
        sqlx::query(statement).execute(pool).await.expect("creating a database");
        admin.close().await;
        format!("{server}/{name}")
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts `instances` nodes of every service on Kafka and one database each.
async fn start_services(infra: &Infrastructure, instances: usize) -> BTreeMap<(Service, usize), Node> {
    let bootstrap = infra.bootstrap().await;
    let mut nodes = BTreeMap::new();
    for service in Service::ALL {
        let database_url = infra.database(service).await;
        for instance in 1..=instances {
            let config = NodeConfig {
                service,
                database_url: database_url.clone(),
                bootstrap: bootstrap.clone(),
                http_addr: any_port(),
                instance: instance.to_string(),
                partitions: 6,
                // The container is one broker: one replica, said explicitly.
                replication_factor: Some(1),
                min_insync_replicas: None,
                fetch_wait_ms: 50,
                deadline: Duration::from_secs(120),
                admission_wait: None,
                sweep_every: Duration::from_millis(500),
                retention: udders_messaging::pruning::Retention::DEFAULT,
                republish_window: udders_messaging::RelayConfig::DEFAULT_REPUBLISH_WINDOW,
                order_url: None,
                access: udders_runtime::access::Access::new(None, Vec::new()),
            };
            nodes.insert((service, instance), Node::start(config).await.expect("the service starts"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !nodes.values().all(Node::is_ready) {
        assert!(Instant::now() < deadline, "the consumer groups did not settle within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    nodes
}

fn endpoints(nodes: &BTreeMap<(Service, usize), Node>) -> Endpoints {
    let at = |service| format!("http://{}", nodes[&(service, 1)].http_addr);
    Endpoints {
        order: at(Service::Order),
        credit: at(Service::Credit),
        inventory: at(Service::Inventory),
        payment: at(Service::Payment),
        fulfillment: at(Service::Fulfillment),
        notification: at(Service::Notification),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a Docker engine: cargo nextest run -p udders-e2e --features testcontainers --run-ignored only"]
async fn the_saga_runs_on_apache_kafka_and_postgresql_with_two_instances_per_service() {
    init_logs();
    let infra = Infrastructure::start().await;
    let nodes = start_services(&infra, 2).await;
    let at = endpoints(&nodes);
    let client = reqwest::Client::new();

    let bodies = [
        (an_order("mango", 2, "cust-1", "tok_visa", None), "COMPLETED"),
        (an_order("bubblegum", 1, "cust-2", "tok_visa", None), "REJECTED"),
        (an_order("chocolate", 1, "cust-broke", "tok_visa", None), "REJECTED"),
        (an_order("durian", 1, "cust-3", "tok_visa", None), "REJECTED"),
        (an_order("vanilla", 1, "cust-4", "tok_declined", None), "REJECTED"),
        (an_order("vanilla", 1, "cust-5", "tok_visa", Some("00000")), "REJECTED"),
    ];
    let mut placed = Vec::new();
    for round in 0..20 {
        for (body, ends) in &bodies {
            let response = client.post(format!("{}/orders", at.order)).json(body).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 202, "round {round}");
            let accepted: Value = response.json().await.unwrap();
            placed.push((accepted["order_id"].as_str().unwrap().to_owned(), *ends));
        }
    }
    let deadline = Instant::now() + SAGA_TIMEOUT * 4;
    for (id, ends) in &placed {
        loop {
            let order: Value =
                client.get(format!("{}/orders/{id}", at.order)).send().await.unwrap().json().await.unwrap();
            if ["COMPLETED", "REJECTED", "CANCELLED"].contains(&order["status"].as_str().unwrap_or_default()) {
                assert_eq!(order["status"], json!(ends), "{order:#}");
                break;
            }
            assert!(Instant::now() < deadline, "order {id} is stuck: {order:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let report = check(&client, &at).await.unwrap();
    assert!(report.holds(), "{:#?}", report.violations);
    assert_eq!(report.by_status.values().sum::<usize>(), placed.len());

    for (_, node) in nodes {
        node.stop().await.expect("a clean stop");
    }
}
