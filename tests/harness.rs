//! The end-to-end harness: the whole system of `udders up` in this process
//! (embedded broker on a free port, six SQLite databases in a temporary
//! directory, HTTP on a free port), and a client that speaks its API.
#![allow(clippy::missing_panics_doc)]

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use udders::system::{System, SystemConfig};

/// How long a saga may take in these tests before one is declared stuck.
pub const SAGA_TIMEOUT: Duration = Duration::from_secs(30);

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
}

/// A running system and a client for it.
#[derive(Debug)]
pub struct TestSystem {
    /// The system (taken by [`TestSystem::stop`]).
    pub system: System,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// Where its databases live.
    pub dir: tempfile::TempDir,
}

/// Starts the system with the defaults of `udders up`, changed by `tune`.
pub async fn start_with(tune: impl FnOnce(&mut SystemConfig)) -> TestSystem {
    start_in(tempfile::tempdir().expect("a temporary directory"), tune).await
}

/// Starts the system on the databases in `dir` (a restart when they exist),
/// with a new, empty broker.
pub async fn start_in(dir: tempfile::TempDir, tune: impl FnOnce(&mut SystemConfig)) -> TestSystem {
    init_logs();
    let mut config = SystemConfig::new(dir.path());
    config.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.broker_addr = free_addr();
    config.sweep_every = Duration::from_millis(100);
    // A debug build on two busy cores is slow: only the deadline test wants
    // orders to expire.
    config.deadline = Duration::from_secs(300);
    config.database_urls = postgres_databases(dir.path()).await;
    tune(&mut config);
    let system = System::start(config).await.expect("the system starts");
    system.wait_ready(Duration::from_secs(60)).await.expect("every consumer runs");
    let base = format!("http://{}", system.http_addr);
    TestSystem { system, base, client: reqwest::Client::new(), dir }
}

/// With `UDDERS_TEST_BACKEND=postgres`, every service's database is a
/// schema of the PostgreSQL test database (`UDDERS_TEST_POSTGRES_URL`),
/// named after `dir` so that a restart on `dir` finds it again; otherwise
/// none, and the services use SQLite files in `dir`.
pub async fn postgres_databases(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<udders_contracts::Service, String> {
    if std::env::var("UDDERS_TEST_BACKEND").as_deref() != Ok("postgres") {
        return Default::default();
    }
    let url = std::env::var("UDDERS_TEST_POSTGRES_URL")
        .expect("UDDERS_TEST_BACKEND=postgres needs UDDERS_TEST_POSTGRES_URL (a database of the test server)");
    // FNV-1a of the directory: the same directory, the same schemas.
    let tag = dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let admin =
        udders_eventstore::EventStore::connect(&url, &Default::default()).await.expect("the PostgreSQL test server");
    let pool = admin.postgres_pool().expect("a PostgreSQL store").clone();
    let mut urls = std::collections::BTreeMap::new();
    for service in udders_contracts::Service::ALL {
        let schema = format!("s_{tag:016x}_{}", service.name().replace('-', "_"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
            .execute(&pool)
            .await
            .expect("creating a schema");
        let separator = if url.contains('?') { '&' } else { '?' };
        urls.insert(service, format!("{url}{separator}options[search_path]={schema}"));
    }
    admin.close().await;
    urls
}

/// Starts the system with the defaults of `udders up`.
pub async fn start() -> TestSystem {
    start_with(|_| {}).await
}

/// A `POST /orders` body: one line, the given customer, card and postal code.
pub fn an_order(flavor: &str, quantity: u32, customer: &str, card: &str, postal_code: Option<&str>) -> Value {
    json!({
        "customer_id": customer,
        "channel": "web",
        "country": "sg",
        "items": [{ "flavor": flavor, "quantity": quantity }],
        "payment": { "card_token": card },
        "delivery": { "postal_code": postal_code },
    })
}

/// A happy order: two mango for `cust-1`, approved card, deliverable.
pub fn happy_order() -> Value {
    an_order("mango", 2, "cust-1", "tok_visa", Some("018956"))
}

impl TestSystem {
    /// `POST /orders`; returns the status code and the body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.client.post(format!("{}{path}", self.base)).json(body).send().await.expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Places an order (asserting 202) and returns its id.
    pub async fn place(&self, body: &Value) -> String {
        let (status, answer) = self.post("/orders", body).await;
        assert_eq!(status, 202, "POST /orders answered {status}: {answer}");
        answer["order_id"].as_str().expect("an order id").to_owned()
    }

    /// `GET path`: status and body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /orders/{id}`, which must exist.
    pub async fn order(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/orders/{id}")).await;
        assert_eq!(status, 200, "GET /orders/{id}: {body}");
        body
    }

    /// Waits until the order is terminal and returns it.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        self.wait_status(id, &["COMPLETED", "REJECTED", "CANCELLED"]).await
    }

    /// `GET path` as text: the status and the body.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET answered");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    }

    /// Waits until the order has one of `statuses` and returns it.
    pub async fn wait_status(&self, id: &str, statuses: &[&str]) -> Value {
        let deadline = Instant::now() + SAGA_TIMEOUT;
        loop {
            let order = self.order(id).await;
            if statuses.iter().any(|s| order["status"] == *s) {
                return order;
            }
            assert!(Instant::now() < deadline, "order {id} stuck: {order:#}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for every outbox to drain, then checks the invariants.
    pub async fn assert_invariants(&self) {
        let deadline = Instant::now() + SAGA_TIMEOUT;
        for store in self.system.stores.values() {
            while store.outbox_backlog().await.expect("backlog") > 0 {
                assert!(Instant::now() < deadline, "an outbox does not drain");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        // Late answers (settlements, compensations of finished orders) arrive.
        let at = udders::invariants::Endpoints::one(&self.base);
        let report = udders::invariants::check_settling(&self.client, &at, Duration::from_secs(5))
            .await
            .expect("the check runs");
        assert!(report.holds(), "invariants broken:\n{}", report.violations.join("\n"));
    }

    /// Stops the system.
    pub async fn stop(self) {
        self.system.stop().await.expect("a clean stop");
    }

    /// Stops the system and hands back its databases' directory.
    pub async fn stop_keeping_data(self) -> tempfile::TempDir {
        self.system.stop().await.expect("a clean stop");
        self.dir
    }
}
