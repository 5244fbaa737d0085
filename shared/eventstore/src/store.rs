//! The store: one API over two backends, and the transaction handlers run in.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::Notify;
use udders_kernel::CorrelationId;

use crate::cache::{Cache, Key};
use crate::documents::{Document, DocumentFilter, DocumentPage};
use crate::error::{Context, StoreError};
use crate::handover::HandOver;
use crate::model::{
    Appended, ClaimedMessage, ConsumerPosition, ExpectedVersion, NewEvent, OutboxMessage, OutboxStatus, Pruned,
    RecordedEvent, StreamId,
};
use crate::tx::{PendingEvent, Tx, TxInner};
use crate::{postgres, sql, sqlite};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file per service, WAL mode, one writer connection.
    Sqlite,
    /// One PostgreSQL database (or schema) per service.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Tuning for [`EventStore::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL: pool size. SQLite: number of read-only connections (the
    /// writer is always exactly one).
    pub max_connections: u32,
    /// SQLite: `synchronous=FULL` instead of `NORMAL`. In WAL mode `NORMAL`
    /// survives a process crash; `FULL` also survives a power cut.
    pub sqlite_fsync_every_commit: bool,
    /// How long a connection waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// Aggregates and documents kept in memory between transactions (0:
    /// none). Only correct when this process is the database's only writer
    /// (ADR 0008). `None` takes the backend's default:
    /// [`StoreOptions::SQLITE_CACHE_CAPACITY`] on SQLite, whose file one
    /// process owns, and none on PostgreSQL, whose database several
    /// instances share.
    pub cache_capacity: Option<usize>,
    /// SQLite: the writer connection's page cache, KiB; each reader
    /// connection gets an eighth ([`StoreOptions::reader_page_cache_kib`]).
    pub sqlite_page_cache_kib: u32,
}

impl StoreOptions {
    /// The default cache capacity on SQLite: two generations of 512, the
    /// aggregate and document of every order still in flight near capacity
    /// (an order is two entries in the order store). With 256, near capacity
    /// the orders in flight outgrew the cache, each record read its order
    /// back from the database (the order handler's mean went from 0.1 to
    /// 0.3 ms a record), the order writer fell further behind and more
    /// orders were in flight: 1,024 completed 1.4 times as many orders at
    /// 400/s offered, with the peak resident memory under 200 MB even at
    /// three times capacity (docs/benchmarks.md, eighteenth measurement).
    pub const SQLITE_CACHE_CAPACITY: usize = 1024;
    /// The default [`StoreOptions::sqlite_page_cache_kib`] (4,096 until the
    /// sixth measurement of docs/benchmarks.md).
    pub const SQLITE_PAGE_CACHE_KIB: u32 = 1024;

    /// SQLite: each reader connection's page cache, KiB: an eighth of the
    /// writer's (128 KiB by default), and at least 64. In WAL mode a reader
    /// drops its whole page cache whenever it starts a read after some
    /// commit, so while the writer commits every few milliseconds a reader
    /// keeps little more than one query's pages; but when writes stop (a
    /// client reading every order back) each of the four readers of each
    /// store fills its cache to the bound and keeps it. At half the writer's
    /// that was 22 MiB over eleven stores, filled by one read-back
    /// (docs/benchmarks.md, eighth measurement).
    pub fn reader_page_cache_kib(&self) -> u32 {
        (self.sqlite_page_cache_kib / 8).max(64)
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            sqlite_fsync_every_commit: false,
            busy_timeout: Duration::from_secs(5),
            cache_capacity: None,
            sqlite_page_cache_kib: Self::SQLITE_PAGE_CACHE_KIB,
        }
    }
}

#[derive(Debug)]
enum Pools {
    Sqlite { writer: SqlitePool, readers: SqlitePool },
    Postgres(PgPool),
}

#[derive(Debug)]
struct Shared {
    pools: Pools,
    outbox_signal: Notify,
    /// Rows committed for the relay to take without reading them back;
    /// `Some` once the relay of an exclusive store asked for them.
    hand_over: Mutex<Option<HandOver>>,
    cache: Option<Cache>,
    /// Streams a transaction opened as new ([`Tx::open`]) that turned out to
    /// exist: the next open of each reads it. Cleared when it holds
    /// [`EXISTING_REMEMBERED`]; a stream forgotten that way costs one more retry.
    opened_existing: Mutex<HashSet<String>>,
    /// How many commits failed because a stream opened as new existed.
    wrong_opens: AtomicU64,
    /// SQLite: the lock that makes this process the file's only user,
    /// released by [`EventStore::close`] (or when the store is dropped).
    file_lock: Mutex<Option<std::fs::File>>,
}

/// The most streams [`Shared::opened_existing`] remembers.
const EXISTING_REMEMBERED: usize = 4096;

/// A service's event store, snapshots, outbox, inbox and consumer positions.
///
/// Cheap to clone: clones share the pools.
#[derive(Debug, Clone)]
pub struct EventStore {
    shared: Arc<Shared>,
}

/// A borrowed connection of either backend; every statement goes through it.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// The same connection, borrowed again: for a caller that hands it to a
    /// function taking a [`Conn`] and still needs it afterwards.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs one dialect function on whichever backend a [`Conn`] holds.
macro_rules! dispatch {
    ($conn:expr, $function:ident($($arg:expr),* $(,)?)) => {
        match $conn {
            Conn::Sqlite(c) => sqlite::$function(c, $($arg),*).await,
            Conn::Postgres(c) => postgres::$function(c, $($arg),*).await,
        }
    };
}
pub(crate) use dispatch;

/// Runs one body on whichever connection a [`Conn`] holds: for statements
/// whose one text serves both dialects (`$N` placeholders: sqlx's SQLite
/// driver binds `$N` to the Nth argument, as PostgreSQL does). Named twice,
/// `|c, dialect|`, it also brings that backend's module (`sqlite` or
/// `postgres`) into the body under the second name, for what a shared
/// statement takes from its dialect: a column list, a row decoder.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
    ($conn:expr, |$c:ident, $dialect:ident| $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => {
                use $crate::sqlite as $dialect;
                $body
            }
            Conn::Postgres($c) => {
                use $crate::postgres as $dialect;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

pub(crate) enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

impl EventStore {
    /// Opens a store by URL: `sqlite:PATH` (created if missing) or
    /// `postgres://…`. Applies the migrations of that dialect.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or(path);
            Self::open_sqlite(Path::new(path), options).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url).during("parsing the PostgreSQL URL")?;
            Self::connect_postgres(connect, options).await
        } else {
            let shown = url.split('@').next_back().unwrap_or(url);
            Err(StoreError::UnsupportedUrl { url: shown.to_owned() })
        }
    }

    /// Opens (creating if needed) a SQLite database file in WAL mode, and
    /// locks it for this process (`<file>.lock`): a second process that
    /// opens it gets [`StoreError::InUse`] (ADR 0008).
    pub async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let lock_path = format!("{}.lock", path.display());
        let in_use = || StoreError::InUse { path: path.display().to_string() };
        let file_lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|_| in_use())?;
        file_lock.try_lock().map_err(|_| in_use())?;
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sqlite_fsync_every_commit {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        // Page caches of a few MiB, and no memory map: the aggregates and
        // documents a handler reads again are in the store's own cache, and a
        // memory map counts every page a query ever touched as resident
        // (docs/benchmarks.md, memory).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(
                base.clone()
                    .pragma("cache_size", format!("-{}", options.sqlite_page_cache_kib))
                    .create_if_missing(true),
            )
            .await
            .during("opening the SQLite writer")?;
        sqlite::MIGRATOR.run(&writer).await.map_err(|source| StoreError::Migrate { backend: "sqlite", source })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(base.pragma("cache_size", format!("-{}", options.reader_page_cache_kib())).read_only(true))
            .await
            .during("opening the SQLite readers")?;
        let cache = options.cache_capacity.unwrap_or(StoreOptions::SQLITE_CACHE_CAPACITY);
        let store = Self::from_pools(Pools::Sqlite { writer, readers }, cache);
        *store.shared.file_lock.lock().unwrap_or_else(PoisonError::into_inner) = Some(file_lock);
        Ok(store)
    }

    /// Connects to PostgreSQL with prepared options (for example with a
    /// `search_path` to put a service in its own schema).
    pub async fn connect_postgres(connect: PgConnectOptions, options: &StoreOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .connect_with(connect)
            .await
            .during("connecting to PostgreSQL")?;
        postgres::MIGRATOR.run(&pool).await.map_err(|source| StoreError::Migrate { backend: "postgres", source })?;
        Ok(Self::from_pools(Pools::Postgres(pool), options.cache_capacity.unwrap_or(0)))
    }

    fn from_pools(pools: Pools, cache_capacity: usize) -> Self {
        let shared = Shared {
            pools,
            outbox_signal: Notify::new(),
            hand_over: Mutex::new(None),
            cache: Cache::new(cache_capacity),
            opened_existing: Mutex::default(),
            wrong_opens: AtomicU64::new(0),
            file_lock: Mutex::new(None),
        };
        Self { shared: Arc::new(shared) }
    }

    pub(crate) fn cache(&self) -> Option<&Cache> {
        self.shared.cache.as_ref()
    }

    /// True (once) when a transaction opened `stream` as new and found it
    /// existing: this open must read it.
    pub(crate) fn take_opened_existing(&self, stream: &StreamId) -> bool {
        self.shared.opened_existing.lock().unwrap_or_else(PoisonError::into_inner).remove(stream.as_str())
    }

    /// Notes the streams a transaction opened as new when its commit met a
    /// conflict, and counts a wrong open if the conflict was on one of them.
    pub(crate) fn note_opened_existing<'s>(&self, streams: impl IntoIterator<Item = &'s StreamId>, wrong: bool) {
        if wrong {
            self.shared.wrong_opens.fetch_add(1, Ordering::Relaxed);
        }
        let mut existing = self.shared.opened_existing.lock().unwrap_or_else(PoisonError::into_inner);
        if existing.len() >= EXISTING_REMEMBERED {
            existing.clear();
        }
        existing.extend(streams.into_iter().map(|s| s.to_string()));
    }

    /// How many commits failed because a stream opened as new
    /// ([`Tx::open`]) existed: each cost its records a retry.
    pub fn wrong_opens(&self) -> u64 {
        self.shared.wrong_opens.load(Ordering::Relaxed)
    }

    /// True when this process is the database's only writer: a SQLite file
    /// is locked by the process that opens it. Its outbox then needs no
    /// claims, and its aggregates may be cached.
    pub fn is_exclusive(&self) -> bool {
        self.backend() == Backend::Sqlite
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.shared.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite writer pool (one connection), for a service's own tables.
    pub fn sqlite_writer(&self) -> Option<&SqlitePool> {
        match &self.shared.pools {
            Pools::Sqlite { writer, .. } => Some(writer),
            Pools::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for a service's own tables.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.shared.pools {
            Pools::Postgres(pool) => Some(pool),
            Pools::Sqlite { .. } => None,
        }
    }

    /// Woken after every commit that wrote outbox rows; the relay waits on it.
    pub fn outbox_signal(&self) -> &Notify {
        &self.shared.outbox_signal
    }

    /// From now on, commits hand the outbox rows they wrote to the relay in
    /// memory ([`EventStore::handed_over_after`]); only on an exclusive
    /// store, where ids follow commit order (see `handover.rs`).
    pub fn start_outbox_hand_over(&self) {
        if self.is_exclusive() {
            self.shared.hand_over.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(HandOver::default);
        }
    }

    /// Up to `limit` unpublished rows after row `after` that commits handed
    /// over, oldest first, when they are known to be all there are (empty:
    /// none was committed since). `None`: read them
    /// ([`EventStore::unpublished_after`]).
    pub fn handed_over_after(&self, after: i64, limit: u32) -> Option<Vec<ClaimedMessage>> {
        self.shared.hand_over.lock().unwrap_or_else(PoisonError::into_inner).as_mut()?.take_after(after, limit)
    }

    /// Called by a commit with the outbox rows it wrote.
    pub(crate) fn hand_over(&self, rows: Vec<ClaimedMessage>) {
        if let Some(hand_over) = self.shared.hand_over.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            hand_over.push(rows);
        }
    }

    /// Begins the one transaction a handler does all its work in: inbox,
    /// events, snapshots, outbox and consumer position commit together.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.shared.pools {
            Pools::Sqlite { writer, .. } => {
                TxInner::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await.during("beginning a transaction")?)
            }
            Pools::Postgres(pool) => TxInner::Postgres(pool.begin().await.during("beginning a transaction")?),
        };
        Ok(Tx::new(inner, self.clone()))
    }

    pub(crate) async fn reader(&self) -> Result<Pooled, StoreError> {
        Ok(match &self.shared.pools {
            Pools::Sqlite { readers, .. } => Pooled::Sqlite(readers.acquire().await.during("acquiring a reader")?),
            Pools::Postgres(pool) => Pooled::Postgres(pool.acquire().await.during("acquiring a connection")?),
        })
    }

    pub(crate) async fn writer(&self) -> Result<Pooled, StoreError> {
        Ok(match &self.shared.pools {
            Pools::Sqlite { writer, .. } => Pooled::Sqlite(writer.acquire().await.during("acquiring the writer")?),
            Pools::Postgres(pool) => Pooled::Postgres(pool.acquire().await.during("acquiring a connection")?),
        })
    }

    /// Appends events to a stream and writes outbox rows, in one transaction.
    ///
    /// A stale (or future) `expected` version is [`StoreError::Conflict`] and
    /// writes nothing; so does any failure before commit.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        outbox: &[OutboxMessage],
    ) -> Result<Appended, StoreError> {
        // One statement is atomic on its own: skip BEGIN/COMMIT round trips.
        // SQLite writes one statement per event; PostgreSQL one per append.
        let one_statement = match self.backend() {
            Backend::Sqlite => events.len() == 1,
            Backend::Postgres => !events.is_empty(),
        };
        if outbox.is_empty() && one_statement {
            let mut c = self.writer().await?;
            if let Some(cache) = self.cache() {
                // Stamped while this append holds the writer, like a transaction.
                cache.touch(&Key::Stream(stream.to_string()), cache.stamp());
            }
            return PendingEvent::append(c.conn(), stream, expected, events).await;
        }
        let mut tx = self.begin().await?;
        let appended = tx.append(stream, expected, events).await?;
        tx.enqueue(outbox).await?;
        tx.commit().await?;
        Ok(appended)
    }

    /// The events of a stream with a version above `after_version`, oldest first.
    pub async fn read_stream(&self, stream: &StreamId, after_version: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut c = self.reader().await?;
        sql::read_stream(c.conn(), stream, after_version).await
    }

    /// Up to `limit` events after global position `after`, in commit order.
    /// Start at 0; continue from the last position returned. Never skips an
    /// event that commits later, never returns one twice.
    pub async fn read_all(&self, after: i64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut c = self.reader().await?;
        sql::read_all(c.conn(), after, limit).await
    }

    /// Every event carrying this correlation id, in commit order.
    pub async fn read_correlated(&self, correlation_id: CorrelationId) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut c = self.reader().await?;
        sql::read_correlated(c.conn(), correlation_id).await
    }

    /// The version of a stream's last event (0 when it has none).
    pub async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let mut c = self.reader().await?;
        sql::stream_version(c.conn(), stream).await
    }

    /// One read-model document.
    pub async fn document(&self, view: &str, key: &str) -> Result<Option<Document>, StoreError> {
        let mut c = self.reader().await?;
        sql::get_document(c.conn(), view, key).await
    }

    /// Documents of a view matching a filter, most recently updated first.
    pub async fn documents(&self, view: &str, filter: &DocumentFilter) -> Result<Vec<Document>, StoreError> {
        Ok(self.document_page(view, filter).await?.documents)
    }

    /// A page of [`EventStore::documents`], with the cursor of the next.
    pub async fn document_page(&self, view: &str, filter: &DocumentFilter) -> Result<DocumentPage, StoreError> {
        let mut c = self.reader().await?;
        sql::list_documents(c.conn(), view, filter).await
    }

    /// The keys of a view's documents due at `now` or earlier, most overdue first.
    pub async fn due_documents(
        &self,
        view: &str,
        now: udders_kernel::Timestamp,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.reader().await?;
        sql::due_documents(c.conn(), view, now, limit).await
    }

    /// [`EventStore::due_documents`], each with its document, in one read
    /// (not one read per key).
    pub async fn due_documents_read(
        &self,
        view: &str,
        now: udders_kernel::Timestamp,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError> {
        let mut c = self.reader().await?;
        sql::due_document_bodies(c.conn(), view, now, limit).await
    }

    /// How many documents of a view have one of `values` as their first tag
    /// (for orders: a status), counting only those written at `since` or
    /// later when it is given. A range read of the index on (view, first
    /// tag, time written): it costs the documents counted, not the documents
    /// ever written.
    pub async fn count_documents_tagged(
        &self,
        view: &str,
        values: &[&str],
        since: Option<udders_kernel::Timestamp>,
    ) -> Result<u64, StoreError> {
        self.count_tagged(view, values, since, None).await
    }

    /// How many documents of a view have one of `values` as their first tag
    /// and were last written before `before`: the ones that have not moved
    /// since. A range read of the same index.
    pub async fn count_documents_tagged_before(
        &self,
        view: &str,
        values: &[&str],
        before: udders_kernel::Timestamp,
    ) -> Result<u64, StoreError> {
        self.count_tagged(view, values, None, Some(before)).await
    }

    /// How many documents of a view are due after `after` and at `until` or
    /// earlier (for orders: open orders whose deadline falls in that span).
    /// One statement on the due index.
    pub async fn count_due(
        &self,
        view: &str,
        after: udders_kernel::Timestamp,
        until: udders_kernel::Timestamp,
    ) -> Result<u64, StoreError> {
        let sql = "SELECT count(*) FROM read_models WHERE view = $1 AND due_at_us > $2 AND due_at_us <= $3";
        let mut c = self.reader().await?;
        let n: i64 = on_conn!(c.conn(), |c| {
            sqlx::query_scalar(sql)
                .bind(view)
                .bind(after.micros())
                .bind(until.micros())
                .fetch_one(&mut *c)
                .await
                .during("counting due documents")?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn count_tagged(
        &self,
        view: &str,
        values: &[&str],
        since: Option<udders_kernel::Timestamp>,
        before: Option<udders_kernel::Timestamp>,
    ) -> Result<u64, StoreError> {
        if values.is_empty() {
            return Ok(0);
        }
        // Only placeholders are formatted in: the values are bound.
        let sql = sqlx::AssertSqlSafe(count_tagged_sql(values.len()));
        let (since, before) =
            (since.map(udders_kernel::Timestamp::micros), before.map(udders_kernel::Timestamp::micros));
        let mut c = self.reader().await?;
        let n: i64 = on_conn!(c.conn(), |c| {
            let mut query = sqlx::query_scalar(sql).bind(view).bind(since).bind(before);
            for value in values {
                query = query.bind(*value);
            }
            query.fetch_one(&mut *c).await.during("counting tagged documents")?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many documents of a view carry each value of tag `tag` (0, 1 or 2).
    pub async fn count_documents(&self, view: &str, tag: usize) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        let mut c = self.reader().await?;
        sql::count_documents(c.conn(), view, tag).await
    }

    /// The global position of the newest event (0 when the store is empty).
    pub async fn head_position(&self) -> Result<i64, StoreError> {
        let mut c = self.reader().await?;
        sql::head_position(c.conn()).await
    }

    /// A consumer's stored resume points.
    pub async fn positions(&self, consumer: &str) -> Result<Vec<ConsumerPosition>, StoreError> {
        let mut c = self.reader().await?;
        sql::positions(c.conn(), consumer).await
    }

    /// Hands up to `limit` unpublished outbox rows to `relay`, oldest first,
    /// for `lease`. Rows claimed by another live relay are skipped; rows whose
    /// lease ran out (their relay died) are claimed again.
    pub async fn claim_outbox(
        &self,
        relay: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let mut c = self.writer().await?;
        dispatch!(c.conn(), claim(relay, limit, lease))
    }

    /// Up to `limit` unpublished rows after row `after`, oldest first,
    /// without claiming them: for the only relay of a store whose process is
    /// its database's only writer ([`EventStore::is_exclusive`]).
    pub async fn unpublished_after(&self, after: i64, limit: u32) -> Result<Vec<ClaimedMessage>, StoreError> {
        let mut c = self.reader().await?;
        sql::unpublished_after(c.conn(), after, limit).await
    }

    /// Marks claimed rows published (after the broker acknowledged them).
    /// Returns how many rows were newly marked.
    pub async fn mark_published(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let mut c = self.writer().await?;
        dispatch!(c.conn(), mark_published(ids))
    }

    /// Gives claimed rows back at once (publishing failed), so any relay can
    /// try them again without waiting for the lease.
    pub async fn release_claims(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut c = self.writer().await?;
        dispatch!(c.conn(), release(ids))
    }

    /// Gives back every unpublished row that relay `relay` holds, lease or
    /// not: what a relay does when it starts, since a relay of its name that
    /// claimed them is gone (its process was restarted). Returns how many
    /// rows were given back.
    pub async fn release_claims_of(&self, relay: &str) -> Result<u64, StoreError> {
        let mut c = self.writer().await?;
        sql::release_relay(c.conn(), relay).await
    }

    /// Puts rows published within `window` back in the queue, to be sent
    /// again: what a relay does when its broker came back empty. Consumers
    /// drop the duplicates through their inboxes.
    pub async fn unpublish_recent(&self, window: Duration) -> Result<u64, StoreError> {
        let mut c = self.writer().await?;
        dispatch!(c.conn(), unpublish_recent(window))
    }

    /// How many outbox rows wait to be published.
    pub async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        Ok(self.outbox_status().await?.backlog)
    }

    /// Outbox rows not yet published, and the age of the oldest.
    pub async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let mut c = self.reader().await?;
        dispatch!(c.conn(), outbox_status())
    }

    /// Deletes outbox rows published longer than `published_before` ago and
    /// inbox rows received longer than `received_before` ago. Unpublished rows
    /// are never deleted. Keep the inbox window longer than any re-delivery
    /// window (broker retention, relay re-publish window).
    pub async fn prune(&self, published_before: Duration, received_before: Duration) -> Result<Pruned, StoreError> {
        let mut c = self.writer().await?;
        dispatch!(c.conn(), prune(published_before, received_before))
    }

    /// Closes the pools (and, on SQLite, lets another process open the file).
    pub async fn close(&self) {
        match &self.shared.pools {
            Pools::Sqlite { writer, readers } => {
                readers.close().await;
                writer.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
        self.shared.file_lock.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// The count of [`EventStore::count_documents_tagged`] and
/// [`EventStore::count_documents_tagged_before`], for `values` first-tag
/// values: `$1` view, `$2` written at or after (or NULL), `$3` written
/// before (or NULL), then the values. The bounds are plain ranges on
/// `updated_at_us`, so the count is a range read of the index
/// `(view, tag_a, updated_at_us)` alone (`($2 IS NULL OR ...)` would hide
/// the range from the planner, which then reads every document of a tag).
fn count_tagged_sql(values: usize) -> String {
    let marks: Vec<String> = (0..values).map(|i| format!("${}", i + 4)).collect();
    format!(
        "SELECT count(*) FROM read_models WHERE view = $1 AND updated_at_us >= COALESCE($2, 0) \
         AND updated_at_us < COALESCE($3, 9223372036854775807) AND tag_a IN ({})",
        marks.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan of `sql` on a new store, one step a line (parameters
    /// unbound: the plan is made before any value is).
    async fn sqlite_plan(sql: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open_sqlite(&dir.path().join("plan.db"), &StoreOptions::default()).await.unwrap();
        let mut reader = store.reader().await.unwrap();
        let Conn::Sqlite(c) = reader.conn() else { unreachable!("a SQLite store") };
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).fetch_all(&mut *c).await.unwrap();
        plan.into_iter().map(|(.., step)| step).collect()
    }

    /// The door counts recently ended orders five times a second: the
    /// count must stay a range read of the covering index, whatever the
    /// number of documents ever written (SQLite's own plan says so).
    #[tokio::test]
    async fn a_tagged_count_reads_only_the_index_range() {
        let steps = sqlite_plan(&count_tagged_sql(3)).await;
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(
            steps[0].contains("COVERING INDEX read_models_by_tag_a_updated")
                && steps[0].contains("updated_at_us>?")
                && steps[0].contains("updated_at_us<?"),
            "{steps:?}"
        );
    }

    /// A page of one status, past a cursor, walks that status's stretch of
    /// the status index from the cursor down, newest first, and stops at the
    /// limit: no sort of every match, and no walk through other statuses.
    #[tokio::test]
    async fn a_page_of_one_status_reads_the_status_index_in_order() {
        let filter = crate::DocumentFilter {
            tags: [Some("PLACED".into()), None, None],
            limit: 25,
            after: Some(crate::DocumentCursor { updated_at_us: 5, key: "k".into() }),
            field: None,
        };
        let steps = sqlite_plan(&crate::sql::list_documents_sql(&filter, crate::sqlite::json_field_equals)).await;
        assert!(
            steps[0].contains("USING INDEX read_models_by_tag_a_updated (view=? AND tag_a=? AND updated_at_us<?)"),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|step| step == "USE TEMP B-TREE FOR ORDER BY"), "{steps:?}");
    }
}
