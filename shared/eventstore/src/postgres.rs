//! The PostgreSQL dialect: the statements the store sends to PostgreSQL
//! whose text differs from SQLite's (those with one text, or one but for a
//! column name or the statement this module gives, are in `sql.rs`), and
//! how its rows decode.
//!
//! Commit order: the append statement first takes a transaction-scoped
//! advisory lock (keyed by the current schema, so schemas sharing a database
//! do not contend), held until commit, and only then draws global positions
//! from a CACHE 1 identity. Positions are therefore handed out in commit order, and a reader
//! paging by `global_position > last` can never skip a transaction that
//! commits late. Outbox claims use `FOR UPDATE SKIP LOCKED` with a lease.

use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use udders_kernel::{CorrelationId, EventId, Timestamp};
use uuid::Uuid;

use crate::documents::Document;
use crate::error::{Context, StoreError, append_error, outbox_error};
use crate::model::{
    ClaimedMessage, ConsumerPosition, EventMetadata, ExpectedVersion, NewEvent, OutboxMessage, OutboxStatus, Pruned,
    RecordedEvent, SnapshotRecord, StreamId, StreamLoad,
};
use crate::model::{first_occurrences, fresh_flags};
use crate::tx::PendingEvent;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The first half of the advisory lock key that orders appends ("udd").
const APPEND_LOCK_CLASS: i32 = 0x0075_6464;

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn find_duplicate<'a>(e: &sqlx::Error, events: &'a [NewEvent]) -> Option<&'a NewEvent> {
    // PostgreSQL names the colliding key in the error's detail.
    let detail = e.as_database_error()?.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?.detail()?;
    events.iter().find(|ev| detail.contains(&ev.event_id.to_string()))
}

/// Inserts events in one statement; returns the global position of the
/// last. The statement first takes the append lock (transaction-scoped, so
/// held until the enclosing transaction, or the statement itself in
/// autocommit, commits), then draws positions. Each row is written only if
/// its stream is still where the writer found it (the version before its
/// first row here); a stream that moved writes nothing and the insert is a
/// conflict. The subquery sees the table as it was before the statement.
pub(crate) async fn insert_events(conn: &mut PgConnection, events: &[PendingEvent]) -> Result<i64, StoreError> {
    let guards: Vec<i64> = PendingEvent::guards(events).into_iter().map(|g| g as i64).collect();
    let streams: Vec<&str> = events.iter().map(|e| e.stream.as_str()).collect();
    let categories: Vec<&str> = events.iter().map(|e| e.stream.category()).collect();
    let versions: Vec<i64> = events.iter().map(|e| e.version as i64).collect();
    let ids: Vec<Uuid> = events.iter().map(|e| *e.event.event_id.as_uuid()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    let schemas: Vec<i32> = events.iter().map(|e| i32::from(e.event.schema_version)).collect();
    let payloads: Vec<&Value> = events.iter().map(|e| &e.event.payload).collect();
    let correlations: Vec<Option<Uuid>> =
        events.iter().map(|e| e.event.metadata.correlation_id.map(|c| *c.as_uuid())).collect();
    let causations: Vec<Option<Uuid>> =
        events.iter().map(|e| e.event.metadata.causation_id.map(|c| *c.as_uuid())).collect();
    let occurred: Vec<i64> = events.iter().map(|e| e.event.metadata.occurred_at.micros()).collect();
    let rows = sqlx::query(
        "WITH append_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($1, hashtext(current_schema())))
         INSERT INTO events (stream, category, version, event_id, event_type, schema_version, payload,
                             correlation_id, causation_id, occurred_at_us)
         SELECT e.stream, e.category, e.version, e.event_id, e.event_type, e.schema_version, e.payload,
                e.correlation_id, e.causation_id, e.occurred_at_us
         FROM append_lock, unnest($2::text[], $3::text[], $4::bigint[], $5::uuid[], $6::text[], $7::int[], $8::jsonb[],
                                  $9::uuid[], $10::uuid[], $11::bigint[], $12::bigint[])
              WITH ORDINALITY AS e(stream, category, version, event_id, event_type, schema_version, payload,
                                   correlation_id, causation_id, occurred_at_us, guard, ord)
         WHERE COALESCE((SELECT max(version) FROM events x WHERE x.stream = e.stream), 0) = e.guard
         ORDER BY e.ord
         RETURNING stream, global_position",
    )
    .bind(APPEND_LOCK_CLASS)
    .bind(&streams)
    .bind(&categories)
    .bind(&versions)
    .bind(&ids)
    .bind(&types)
    .bind(&schemas)
    .bind(&payloads)
    .bind(&correlations)
    .bind(&causations)
    .bind(&occurred)
    .bind(&guards)
    .fetch_all(&mut *conn)
    .await;
    match rows {
        Ok(rows) if rows.len() == events.len() => Ok(rows.iter().map(|r| r.get::<i64, _>(1)).max().unwrap_or(0)),
        Ok(rows) => {
            let inserted: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            Err(PendingEvent::conflict(events, &inserted))
        }
        Err(e) => {
            let all: Vec<NewEvent> = events.iter().map(|p| p.event.clone()).collect();
            let culprit = find_duplicate(&e, &all).unwrap_or(&all[0]);
            Err(append_error(e, &events[0].stream, ExpectedVersion::from_u64(guards[0] as u64), culprit))
        }
    }
}

pub(crate) async fn enqueue(conn: &mut PgConnection, messages: &[OutboxMessage]) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = messages.iter().map(|m| m.message_id).collect();
    let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
    let keys: Vec<&str> = messages.iter().map(|m| m.key.as_str()).collect();
    let headers = messages
        .iter()
        .map(|m| serde_json::to_value(&m.headers))
        .collect::<Result<Vec<Value>, _>>()
        .map_err(|e| StoreError::Encode { what: "outbox headers".into(), reason: e.to_string() })?;
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
    sqlx::query(
        "INSERT INTO outbox (message_id, topic, key, headers, payload)
         SELECT m.message_id, m.topic, m.key, m.headers, m.payload
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[])
              WITH ORDINALITY AS m(message_id, topic, key, headers, payload, ord)
         ORDER BY m.ord",
    )
    .bind(&ids)
    .bind(&topics)
    .bind(&keys)
    .bind(&headers)
    .bind(&payloads)
    .execute(&mut *conn)
    .await
    .map_err(|e| outbox_error(e, &messages[0]))?;
    Ok(())
}

/// The columns of an event, in the order `event_at` reads them (the reads
/// of `sql.rs` select them).
pub(crate) const EVENT_COLUMNS: &str = "global_position, stream, category, version, event_id, event_type,
     schema_version, payload, correlation_id, causation_id, occurred_at_us,
     (extract(epoch FROM recorded_at) * 1000000)::bigint";

pub(crate) fn event_from_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    event_at(row, 0)
}

/// The event in the columns of `row` from `at` on (in [`EVENT_COLUMNS`] order).
fn event_at(row: &PgRow, at: usize) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        position: row.get(at),
        stream: row.get(at + 1),
        category: row.get(at + 2),
        version: row.get::<i64, _>(at + 3) as u64,
        event_id: EventId::from_uuid(row.get::<Uuid, _>(at + 4)),
        event_type: row.get(at + 5),
        schema_version: row.get::<i32, _>(at + 6) as u16,
        payload: row.get(at + 7),
        metadata: EventMetadata {
            correlation_id: row.get::<Option<Uuid>, _>(at + 8).map(CorrelationId::from_uuid),
            causation_id: row.get::<Option<Uuid>, _>(at + 9).map(EventId::from_uuid),
            occurred_at: Timestamp::from_micros(row.get(at + 10)),
        },
        recorded_at: Timestamp::from_micros(row.get(at + 11)),
    })
}

/// A stream's snapshot, the events after it and its head version, in one
/// round trip (an aggregate load is on every handler's path).
pub(crate) async fn load_stream(conn: &mut PgConnection, stream: &StreamId) -> Result<StreamLoad, StoreError> {
    let sql = "WITH s AS (SELECT version, state_schema, state FROM snapshots WHERE stream = $1)
         SELECT s.version, s.state_schema, s.state, (SELECT max(version) FROM events WHERE stream = $1),
                e.global_position, e.stream, e.category, e.version, e.event_id, e.event_type, e.schema_version,
                e.payload, e.correlation_id, e.causation_id, e.occurred_at_us, (extract(epoch FROM e.recorded_at) * 1000000)::bigint
         FROM (SELECT 1) AS one
         LEFT JOIN s ON true
         LEFT JOIN events e ON e.stream = $1 AND e.version > COALESCE(s.version, 0)
         ORDER BY e.version";
    let rows = sqlx::query(sql).bind(stream.as_str()).fetch_all(&mut *conn).await.during("loading a stream")?;
    let Some(first) = rows.first() else {
        return Ok(StreamLoad { snapshot: None, events: Vec::new(), head: 0 });
    };
    let snapshot = match first.get::<Option<i64>, _>(0) {
        None => None,
        Some(version) => {
            let row = first;
            Some(SnapshotRecord {
                version: version as u64,
                state_schema: row.get::<i32, _>(1) as u32,
                state: row.get(2),
            })
        }
    };
    let head = first.get::<Option<i64>, _>(3).unwrap_or(0) as u64;
    let events = rows
        .iter()
        .filter(|row| row.get::<Option<i64>, _>(4).is_some())
        .map(|row| event_at(row, 4))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StreamLoad { snapshot, events, head })
}

/// Writes snapshots, each replacing an older one of its stream.
pub(crate) async fn save_snapshots(
    conn: &mut PgConnection,
    snapshots: &[(StreamId, SnapshotRecord)],
) -> Result<(), StoreError> {
    let streams: Vec<&str> = snapshots.iter().map(|(s, _)| s.as_str()).collect();
    let versions: Vec<i64> = snapshots.iter().map(|(_, s)| s.version as i64).collect();
    let schemas: Vec<i32> = snapshots.iter().map(|(_, s)| s.state_schema as i32).collect();
    let states: Vec<&Value> = snapshots.iter().map(|(_, s)| &s.state).collect();
    sqlx::query(
        "INSERT INTO snapshots (stream, version, state_schema, state)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::jsonb[])
         ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state_schema = excluded.state_schema,
             state = excluded.state, taken_at = now()
         WHERE snapshots.version <= excluded.version",
    )
    .bind(&streams)
    .bind(&versions)
    .bind(&schemas)
    .bind(&states)
    .execute(&mut *conn)
    .await
    .during("writing snapshots")?;
    Ok(())
}

/// Records a batch's event ids in the inbox in one statement; true for each
/// id seen here for the first time (a repeat within the batch is false).
pub(crate) async fn inbox_record_many(
    conn: &mut PgConnection,
    consumer: &str,
    event_ids: &[EventId],
) -> Result<Vec<bool>, StoreError> {
    let unique: Vec<&EventId> = first_occurrences(event_ids);
    if unique.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = unique.iter().map(|id| *id.as_uuid()).collect();
    let rows = sqlx::query(
        "INSERT INTO inbox (consumer, event_id) SELECT $1, id FROM UNNEST($2::uuid[]) AS t(id)
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(consumer)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .during("recording inbox entries")?;
    let fresh: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.get::<Uuid, _>(0)).collect();
    Ok(fresh_flags(event_ids, &fresh))
}

/// Saves several positions of one consumer in one statement (at most one per partition).
pub(crate) async fn save_positions(
    conn: &mut PgConnection,
    consumer: &str,
    positions: &[ConsumerPosition],
) -> Result<(), StoreError> {
    if positions.is_empty() {
        return Ok(());
    }
    let rows = (0..positions.len())
        .map(|i| format!("(${}, ${}, ${}, ${}, ${})", 5 * i + 1, 5 * i + 2, 5 * i + 3, 5 * i + 4, 5 * i + 5))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO consumer_positions (consumer, topic, partition, next_offset, last_record)
         VALUES {rows}
         ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset,
             last_record = excluded.last_record, updated_at = now()"
    );
    // Audited: only placeholders are formatted in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for position in positions {
        query = query
            .bind(consumer)
            .bind(&position.topic)
            .bind(position.partition)
            .bind(position.next_offset)
            .bind(&position.last_record);
    }
    query.execute(&mut *conn).await.during("saving consumer positions")?;
    Ok(())
}

pub(crate) async fn claim(
    conn: &mut PgConnection,
    relay: &str,
    limit: u32,
    lease: Duration,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    let rows = sqlx::query(
        "UPDATE outbox SET claimed_by = $1, claimed_until = clock_timestamp() + make_interval(secs => $2),
                           attempts = attempts + 1
         WHERE id IN (SELECT id FROM outbox
                      WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until <= clock_timestamp())
                      ORDER BY id LIMIT $3
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, attempts, message_id, topic, key, headers, payload",
    )
    .bind(relay)
    .bind(seconds(lease))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .during("claiming outbox rows")?;
    let mut claimed = rows.iter().map(outbox_row).collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// The outbox's publication and lease columns, for the outbox statements of
/// `sql.rs` (`timestamptz`, not integer microseconds as in SQLite).
pub(crate) const PUBLISHED_AT: &str = "published_at";
pub(crate) const CLAIMED_UNTIL: &str = "claimed_until";

/// An outbox row as `id, attempts, message_id, topic, key, headers, payload`
/// (as `claim` and `sql::unpublished_after` select it).
pub(crate) fn outbox_row(r: &PgRow) -> Result<ClaimedMessage, StoreError> {
    let id: i64 = r.get(0);
    let headers: Value = r.get(5);
    let headers = serde_json::from_value(headers)
        .map_err(|e| StoreError::Corrupt { what: format!("outbox row {id} headers"), reason: e.to_string() })?;
    Ok(ClaimedMessage {
        id,
        attempts: r.get::<i32, _>(1) as u32,
        message: OutboxMessage { message_id: r.get(2), topic: r.get(3), key: r.get(4), headers, payload: r.get(6) },
    })
}

pub(crate) async fn mark_published(conn: &mut PgConnection, ids: &[i64]) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET published_at = now(), claimed_until = NULL WHERE id = ANY($1) AND published_at IS NULL",
    )
    .bind(ids)
    .execute(&mut *conn)
    .await
    .during("marking outbox rows published")?;
    Ok(done.rows_affected())
}

pub(crate) async fn release(conn: &mut PgConnection, ids: &[i64]) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL WHERE id = ANY($1) AND published_at IS NULL",
    )
    .bind(ids)
    .execute(&mut *conn)
    .await
    .during("releasing outbox claims")?;
    Ok(())
}

pub(crate) async fn unpublish_recent(conn: &mut PgConnection, window: Duration) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET published_at = NULL, claimed_until = NULL, claimed_by = NULL
         WHERE published_at IS NOT NULL AND published_at >= now() - make_interval(secs => $1)",
    )
    .bind(seconds(window))
    .execute(&mut *conn)
    .await
    .during("re-queueing recently published outbox rows")?;
    Ok(done.rows_affected())
}

pub(crate) async fn outbox_status(conn: &mut PgConnection) -> Result<OutboxStatus, StoreError> {
    // The age on the database's clock, which wrote `created_at`.
    let (n, age_us): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), (extract(epoch FROM now() - min(created_at)) * 1000000)::bigint \
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(&mut *conn)
    .await
    .during("reading the outbox backlog")?;
    let oldest_age = age_us.map(|us| Duration::from_micros(us.max(0) as u64));
    Ok(OutboxStatus { backlog: n as u64, oldest_age })
}

pub(crate) async fn prune(
    conn: &mut PgConnection,
    published_before: Duration,
    received_before: Duration,
) -> Result<Pruned, StoreError> {
    let outbox = sqlx::query(
        "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at <= now() - make_interval(secs => $1)",
    )
    .bind(seconds(published_before))
    .execute(&mut *conn)
    .await
    .during("pruning the outbox")?;
    let inbox = sqlx::query("DELETE FROM inbox WHERE received_at <= now() - make_interval(secs => $1)")
        .bind(seconds(received_before))
        .execute(&mut *conn)
        .await
        .during("pruning the inbox")?;
    Ok(Pruned { outbox_rows: outbox.rows_affected(), inbox_rows: inbox.rows_affected() })
}

/// Writes (or replaces) documents.
pub(crate) async fn put_documents(conn: &mut PgConnection, documents: &[&Document]) -> Result<(), StoreError> {
    let views: Vec<&str> = documents.iter().map(|d| d.view.as_str()).collect();
    let keys: Vec<&str> = documents.iter().map(|d| d.key.as_str()).collect();
    let docs: Vec<&Value> = documents.iter().map(|d| &d.doc).collect();
    let tag = |i: usize| documents.iter().map(|d| d.tags[i].as_deref()).collect::<Vec<Option<&str>>>();
    let due: Vec<Option<i64>> = documents.iter().map(|d| d.due.map(Timestamp::micros)).collect();
    sqlx::query(
        "INSERT INTO read_models (view, key, doc, tag_a, tag_b, tag_c, due_at_us, updated_at_us)
         SELECT d.*, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
         FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::text[], $7::bigint[]) AS d
         ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc, tag_a = excluded.tag_a, tag_b = excluded.tag_b,
             tag_c = excluded.tag_c, due_at_us = excluded.due_at_us, updated_at_us = excluded.updated_at_us",
    )
    .bind(&views)
    .bind(&keys)
    .bind(&docs)
    .bind(tag(0))
    .bind(tag(1))
    .bind(tag(2))
    .bind(&due)
    .execute(&mut *conn)
    .await
    .during("writing read models")?;
    Ok(())
}

pub(crate) fn document_from_row(view: &str, row: &PgRow) -> Result<Document, StoreError> {
    let key: String = row.get(0);
    let doc: Value = row
        .try_get(1)
        .map_err(|e| StoreError::Corrupt { what: format!("read model {view}/{key}"), reason: e.to_string() })?;
    Ok(Document {
        view: view.to_owned(),
        key,
        doc,
        tags: [row.get(2), row.get(3), row.get(4)],
        due: row.get::<Option<i64>, _>(5).map(Timestamp::from_micros),
    })
}

/// For `sql::list_documents_sql`: a document's top-level field `path` (a
/// parameter holding its name) equals `value`.
pub(crate) fn json_field_equals(path: &str, value: &str) -> String {
    format!("doc->>({path}::text) = {value}")
}

/// A document's top-level field `name`, as `->>` takes it: the name itself.
pub(crate) fn json_field(name: &str) -> String {
    name.to_owned()
}
