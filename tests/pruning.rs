//! Pruning end to end, on the SQLite files of `udders up`: with retentions
//! of zero (and no re-send window to cover) and a pruner every 200 ms, the
//! outbox rows and inbox ids of finished orders leave every service
//! database, and orders placed after still go through.

use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use udders_contracts::Service;
use udders_e2e::{happy_order, start_with};
use udders_messaging::pruning::Retention;

/// (outbox rows, inbox rows) of each service database.
async fn rows(dir: &std::path::Path) -> Vec<(Service, i64, i64)> {
    let mut found = Vec::new();
    for service in Service::ALL {
        let options = SqliteConnectOptions::new().filename(dir.join(format!("{service}.db"))).read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("the service database opens");
        let count = |table: &str| {
            let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
            let pool = pool.clone();
            async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.expect("a count") }
        };
        found.push((service, count("outbox").await, count("inbox").await));
        pool.close().await;
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finished_orders_leave_no_outbox_rows_or_inbox_ids_behind() {
    let t = start_with(|c| {
        c.republish_window = Duration::ZERO;
        c.retention = Retention { outbox: Duration::ZERO, inbox: Duration::ZERO };
        c.prune_every = Duration::from_millis(200);
    })
    .await;
    assert!(t.system.is_ready());
    for _ in 0..3 {
        let id = t.place(&happy_order()).await;
        assert_eq!(t.wait_terminal(&id).await["status"], "COMPLETED");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = rows(t.dir.path()).await;
        if left.iter().all(|(_, outbox, inbox)| *outbox == 0 && *inbox == 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not pruned: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let id = t.place(&happy_order()).await;
    assert_eq!(t.wait_terminal(&id).await["status"], "COMPLETED", "pruning takes nothing a saga needs");
    t.assert_invariants().await;
    t.stop().await;
}
