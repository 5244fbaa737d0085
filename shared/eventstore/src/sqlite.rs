//! The SQLite dialect: the statements the store sends to SQLite whose text
//! differs from PostgreSQL's (those with one text, or one but for a column
//! name or the statement this module gives, are in `sql.rs`), and how its
//! rows decode.
//!
//! One writer connection per database serialises writes, so global positions
//! (rowids) are handed out in commit order and no write ever meets
//! `database is locked` from inside the process. Times are microseconds.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use udders_kernel::{CorrelationId, EventId, Timestamp};
use uuid::Uuid;

use crate::documents::Document;
use crate::error::{Context, StoreError, append_error, outbox_error, violated_constraint};
use crate::model::{
    ClaimedMessage, ConsumerPosition, EventMetadata, ExpectedVersion, NewEvent, OutboxMessage, OutboxStatus, Pruned,
    RecordedEvent, SnapshotRecord, StreamId, StreamLoad,
};
use crate::model::{first_occurrences, fresh_flags, pow2_chunks};
use crate::tx::PendingEvent;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `(?, ?, …), (?, ?, …)`: `rows` rows of `columns` parameters.
fn values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// The largest number of rows one multi-row statement takes.
const MAX_ROWS: usize = 64;

/// Inserts events, chunk by chunk; returns the global position of the last.
/// Each row is written only if its stream is still where the writer found
/// it (the version before its first row in the statement); a stream that
/// moved writes nothing and the insert is a conflict. SQLite evaluates the
/// whole SELECT before inserting (it reads the table it writes), so every
/// row of a statement is checked against the stream as it was before it.
pub(crate) async fn insert_events(conn: &mut SqliteConnection, events: &[PendingEvent]) -> Result<i64, StoreError> {
    let recorded_at = now_us();
    let mut last_position = 0;
    for chunk in pow2_chunks(events.len(), MAX_ROWS) {
        let rows = &events[chunk];
        let guards = PendingEvent::guards(rows);
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO events (stream, category, version, event_id, event_type, schema_version, payload,
                                 correlation_id, causation_id, occurred_at_us, recorded_at_us)
             SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9, column10, column11
             FROM (VALUES {}) AS v
             WHERE COALESCE((SELECT max(version) FROM events e WHERE e.stream = v.column1), 0) = v.column12
             RETURNING stream, global_position",
            values(rows.len(), 12)
        ));
        let mut query = sqlx::query(sql);
        for (row, guard) in rows.iter().zip(&guards) {
            let e = &row.event;
            query = query
                .bind(row.stream.as_str())
                .bind(row.stream.category())
                .bind(row.version as i64)
                .bind(e.event_id.as_uuid())
                .bind(&e.event_type)
                .bind(i32::from(e.schema_version))
                .bind(e.payload.to_string())
                .bind(e.metadata.correlation_id.map(|c| *c.as_uuid()))
                .bind(e.metadata.causation_id.map(|c| *c.as_uuid()))
                .bind(e.metadata.occurred_at.micros())
                .bind(recorded_at)
                .bind(*guard as i64);
        }
        match query.fetch_all(&mut *conn).await {
            Ok(inserted) if inserted.len() == rows.len() => {
                last_position = inserted.iter().map(|r| r.get::<i64, _>(1)).max().unwrap_or(last_position);
            }
            Ok(inserted) => {
                let streams: Vec<String> = inserted.iter().map(|r| r.get(0)).collect();
                return Err(PendingEvent::conflict(rows, &streams));
            }
            Err(e) => {
                let culprit = match violated_constraint(&e) {
                    Some("events_event_id_key") => stored_already(conn, rows).await,
                    _ => None,
                };
                let first = &rows[0];
                let culprit = culprit.unwrap_or(&first.event);
                return Err(append_error(e, &first.stream, ExpectedVersion::from_u64(guards[0]), culprit));
            }
        }
    }
    Ok(last_position)
}

/// The first of `rows` whose event id is stored already (SQLite names the
/// columns of a violated key, not the value).
async fn stored_already<'a>(conn: &mut SqliteConnection, rows: &'a [PendingEvent]) -> Option<&'a NewEvent> {
    for row in rows {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM events WHERE event_id = ?")
            .bind(row.event.event_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .ok()?;
        if found.is_some() {
            return Some(&row.event);
        }
    }
    None
}

/// Inserts outbox rows; returns their ids, in the order of `messages` (for
/// the relay's hand-over, see `handover.rs`).
pub(crate) async fn enqueue(conn: &mut SqliteConnection, messages: &[OutboxMessage]) -> Result<Vec<i64>, StoreError> {
    let created = now_us();
    let mut ids = Vec::with_capacity(messages.len());
    for chunk in pow2_chunks(messages.len(), MAX_ROWS) {
        let rows = &messages[chunk];
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO outbox (message_id, topic, key, headers, payload, created_at_us) VALUES {} RETURNING id, message_id",
            values(rows.len(), 6)
        ));
        let mut query = sqlx::query(sql);
        for message in rows {
            let headers = serde_json::to_string(&message.headers)
                .map_err(|e| StoreError::Encode { what: "outbox headers".into(), reason: e.to_string() })?;
            query = query
                .bind(message.message_id)
                .bind(&message.topic)
                .bind(&message.key)
                .bind(headers)
                .bind(&message.payload)
                .bind(created);
        }
        let inserted = query.fetch_all(&mut *conn).await.map_err(|e| outbox_error(e, &rows[0]))?;
        // RETURNING gives its rows in no promised order: match them by
        // message id, which the table keeps unique.
        let by_message: HashMap<Uuid, i64> = inserted.iter().map(|r| (r.get(1), r.get(0))).collect();
        for message in rows {
            let id = by_message.get(&message.message_id).copied().ok_or_else(|| StoreError::Corrupt {
                what: format!("outbox message {}", message.message_id),
                reason: "the insert returned no id for it".into(),
            })?;
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The columns of an event, in the order `event_at` reads them (the reads
/// of `sql.rs` select them).
pub(crate) const EVENT_COLUMNS: &str = "global_position, stream, category, version, event_id, event_type,
     schema_version, payload, correlation_id, causation_id, occurred_at_us, recorded_at_us";

pub(crate) fn event_from_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    event_at(row, 0)
}

/// The event in the columns of `row` from `at` on (in [`EVENT_COLUMNS`] order).
fn event_at(row: &SqliteRow, at: usize) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.get(at);
    let payload: String = row.get(at + 7);
    let payload = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Corrupt { what: format!("event at position {position}"), reason: e.to_string() })?;
    Ok(RecordedEvent {
        position,
        stream: row.get(at + 1),
        category: row.get(at + 2),
        version: row.get::<i64, _>(at + 3) as u64,
        event_id: EventId::from_uuid(row.get::<Uuid, _>(at + 4)),
        event_type: row.get(at + 5),
        schema_version: row.get::<i32, _>(at + 6) as u16,
        payload,
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
pub(crate) async fn load_stream(conn: &mut SqliteConnection, stream: &StreamId) -> Result<StreamLoad, StoreError> {
    let sql = "WITH s AS (SELECT version, state_schema, state FROM snapshots WHERE stream = ?1)
         SELECT s.version, s.state_schema, s.state, (SELECT max(version) FROM events WHERE stream = ?1),
                e.global_position, e.stream, e.category, e.version, e.event_id, e.event_type, e.schema_version,
                e.payload, e.correlation_id, e.causation_id, e.occurred_at_us, recorded_at_us
         FROM (SELECT 1) AS one
         LEFT JOIN s ON 1 = 1
         LEFT JOIN events e ON e.stream = ?1 AND e.version > COALESCE(s.version, 0)
         ORDER BY e.version";
    let rows = sqlx::query(sql).bind(stream.as_str()).fetch_all(&mut *conn).await.during("loading a stream")?;
    let Some(first) = rows.first() else {
        return Ok(StreamLoad { snapshot: None, events: Vec::new(), head: 0 });
    };
    let snapshot = match first.get::<Option<i64>, _>(0) {
        None => None,
        Some(version) => {
            let row = first;
            let state: String = row.get(2);
            let state = serde_json::from_str(&state)
                .map_err(|e| StoreError::Corrupt { what: format!("snapshot of {stream}"), reason: e.to_string() })?;
            Some(SnapshotRecord { version: version as u64, state_schema: row.get::<i64, _>(1) as u32, state })
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
    conn: &mut SqliteConnection,
    snapshots: &[(StreamId, SnapshotRecord)],
) -> Result<(), StoreError> {
    let taken_at = now_us();
    for chunk in pow2_chunks(snapshots.len(), MAX_ROWS) {
        let rows = &snapshots[chunk];
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO snapshots (stream, version, state_schema, state, taken_at_us) VALUES {}
             ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state_schema = excluded.state_schema,
                 state = excluded.state, taken_at_us = excluded.taken_at_us
             WHERE snapshots.version <= excluded.version",
            values(rows.len(), 5)
        ));
        let mut query = sqlx::query(sql);
        for (stream, snapshot) in rows {
            query = query
                .bind(stream.as_str())
                .bind(snapshot.version as i64)
                .bind(i64::from(snapshot.state_schema))
                .bind(snapshot.state.to_string())
                .bind(taken_at);
        }
        query.execute(&mut *conn).await.during("writing snapshots")?;
    }
    Ok(())
}

/// Records a batch's event ids in the inbox in one statement; true for each
/// id seen here for the first time (a repeat within the batch is false).
pub(crate) async fn inbox_record_many(
    conn: &mut SqliteConnection,
    consumer: &str,
    event_ids: &[EventId],
) -> Result<Vec<bool>, StoreError> {
    let unique: Vec<&EventId> = first_occurrences(event_ids);
    let now = now_us();
    let mut fresh = std::collections::HashSet::new();
    for chunk in pow2_chunks(unique.len(), MAX_ROWS) {
        let ids = &unique[chunk];
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO inbox (consumer, event_id, received_at_us) VALUES {} ON CONFLICT DO NOTHING RETURNING event_id",
            values(ids.len(), 3)
        ));
        let mut query = sqlx::query(sql);
        for id in ids {
            query = query.bind(consumer).bind(id.as_uuid()).bind(now);
        }
        let rows = query.fetch_all(&mut *conn).await.during("recording inbox entries")?;
        fresh.extend(rows.iter().map(|r| r.get::<Uuid, _>(0)));
    }
    Ok(fresh_flags(event_ids, &fresh))
}

/// Saves several positions of one consumer in one statement (at most one per partition).
pub(crate) async fn save_positions(
    conn: &mut SqliteConnection,
    consumer: &str,
    positions: &[ConsumerPosition],
) -> Result<(), StoreError> {
    if positions.is_empty() {
        return Ok(());
    }
    let rows = vec!["(?, ?, ?, ?, ?, ?)"; positions.len()].join(", ");
    let sql = format!(
        "INSERT INTO consumer_positions (consumer, topic, partition, next_offset, last_record, updated_at_us)
         VALUES {rows}
         ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset,
             last_record = excluded.last_record, updated_at_us = excluded.updated_at_us"
    );
    let now = now_us();
    // Audited: only placeholders are formatted in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for position in positions {
        query = query
            .bind(consumer)
            .bind(&position.topic)
            .bind(position.partition)
            .bind(position.next_offset)
            .bind(&position.last_record)
            .bind(now);
    }
    query.execute(&mut *conn).await.during("saving consumer positions")?;
    Ok(())
}

pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    relay: &str,
    limit: u32,
    lease: Duration,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    let now = now_us();
    let rows = sqlx::query(
        "UPDATE outbox SET claimed_by = ?1, claimed_until_us = ?2 + ?3, attempts = attempts + 1
         WHERE id IN (SELECT id FROM outbox
                      WHERE published_at_us IS NULL AND (claimed_until_us IS NULL OR claimed_until_us <= ?2)
                      ORDER BY id LIMIT ?4)
         RETURNING id, attempts, message_id, topic, key, headers, payload",
    )
    .bind(relay)
    .bind(now)
    .bind(micros(lease))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .during("claiming outbox rows")?;
    let mut claimed = rows.iter().map(outbox_row).collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// The outbox's publication and lease columns, for the outbox statements of
/// `sql.rs` (integer microseconds, not `timestamptz` as in PostgreSQL).
pub(crate) const PUBLISHED_AT: &str = "published_at_us";
pub(crate) const CLAIMED_UNTIL: &str = "claimed_until_us";

/// An outbox row as `id, attempts, message_id, topic, key, headers, payload`
/// (as `claim` and `sql::unpublished_after` select it).
pub(crate) fn outbox_row(r: &SqliteRow) -> Result<ClaimedMessage, StoreError> {
    let id: i64 = r.get(0);
    let headers: String = r.get(5);
    let headers = serde_json::from_str(&headers)
        .map_err(|e| StoreError::Corrupt { what: format!("outbox row {id} headers"), reason: e.to_string() })?;
    Ok(ClaimedMessage {
        id,
        attempts: r.get::<i64, _>(1) as u32,
        message: OutboxMessage { message_id: r.get(2), topic: r.get(3), key: r.get(4), headers, payload: r.get(6) },
    })
}

/// `ids` as a JSON array, for `json_each`: one statement for any number of rows.
fn id_list(ids: &[i64]) -> String {
    serde_json::Value::from(ids).to_string()
}

pub(crate) async fn mark_published(conn: &mut SqliteConnection, ids: &[i64]) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET published_at_us = ?1, claimed_until_us = NULL
         WHERE id IN (SELECT value FROM json_each(?2)) AND published_at_us IS NULL",
    )
    .bind(now_us())
    .bind(id_list(ids))
    .execute(&mut *conn)
    .await
    .during("marking outbox rows published")?;
    Ok(done.rows_affected())
}

pub(crate) async fn release(conn: &mut SqliteConnection, ids: &[i64]) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET claimed_until_us = NULL, claimed_by = NULL
         WHERE id IN (SELECT value FROM json_each(?1)) AND published_at_us IS NULL",
    )
    .bind(id_list(ids))
    .execute(&mut *conn)
    .await
    .during("releasing outbox claims")?;
    Ok(())
}

pub(crate) async fn unpublish_recent(conn: &mut SqliteConnection, window: Duration) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET published_at_us = NULL, claimed_until_us = NULL, claimed_by = NULL
         WHERE published_at_us IS NOT NULL AND published_at_us >= ?",
    )
    .bind(now_us() - micros(window))
    .execute(&mut *conn)
    .await
    .during("re-queueing recently published outbox rows")?;
    Ok(done.rows_affected())
}

pub(crate) async fn outbox_status(conn: &mut SqliteConnection) -> Result<OutboxStatus, StoreError> {
    let (n, oldest): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), min(created_at_us) FROM outbox WHERE published_at_us IS NULL")
            .fetch_one(&mut *conn)
            .await
            .during("reading the outbox backlog")?;
    let oldest_age = oldest.map(|at| Duration::from_micros(now_us().saturating_sub(at).max(0) as u64));
    Ok(OutboxStatus { backlog: n as u64, oldest_age })
}

pub(crate) async fn prune(
    conn: &mut SqliteConnection,
    published_before: Duration,
    received_before: Duration,
) -> Result<Pruned, StoreError> {
    let now = now_us();
    let outbox = sqlx::query("DELETE FROM outbox WHERE published_at_us IS NOT NULL AND published_at_us <= ?")
        .bind(now - micros(published_before))
        .execute(&mut *conn)
        .await
        .during("pruning the outbox")?;
    let inbox = sqlx::query("DELETE FROM inbox WHERE received_at_us <= ?")
        .bind(now - micros(received_before))
        .execute(&mut *conn)
        .await
        .during("pruning the inbox")?;
    Ok(Pruned { outbox_rows: outbox.rows_affected(), inbox_rows: inbox.rows_affected() })
}

/// Writes (or replaces) documents.
pub(crate) async fn put_documents(conn: &mut SqliteConnection, documents: &[&Document]) -> Result<(), StoreError> {
    let updated = now_us();
    for chunk in pow2_chunks(documents.len(), MAX_ROWS) {
        let rows = &documents[chunk];
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO read_models (view, key, doc, tag_a, tag_b, tag_c, due_at_us, updated_at_us) VALUES {}
             ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc, tag_a = excluded.tag_a, tag_b = excluded.tag_b,
                 tag_c = excluded.tag_c, due_at_us = excluded.due_at_us, updated_at_us = excluded.updated_at_us",
            values(rows.len(), 8)
        ));
        let mut query = sqlx::query(sql);
        for d in rows {
            query = query
                .bind(&d.view)
                .bind(&d.key)
                .bind(d.doc.to_string())
                .bind(&d.tags[0])
                .bind(&d.tags[1])
                .bind(&d.tags[2])
                .bind(d.due.map(Timestamp::micros))
                .bind(updated);
        }
        query.execute(&mut *conn).await.during("writing read models")?;
    }
    Ok(())
}

pub(crate) fn document_from_row(view: &str, row: &SqliteRow) -> Result<Document, StoreError> {
    let key: String = row.get(0);
    let doc: String = row.get(1);
    let doc = serde_json::from_str(&doc)
        .map_err(|e| StoreError::Corrupt { what: format!("read model {view}/{key}"), reason: e.to_string() })?;
    Ok(Document {
        view: view.to_owned(),
        key,
        doc,
        tags: [row.get(2), row.get(3), row.get(4)],
        due: row.get::<Option<i64>, _>(5).map(Timestamp::from_micros),
    })
}

/// For `sql::list_documents_sql`: a document's field at the JSON path
/// `path` equals `value` (both parameters).
pub(crate) fn json_field_equals(path: &str, value: &str) -> String {
    format!("json_extract(doc, {path}) = {value}")
}

/// The path of a document's top-level field `name`, as `json_extract` takes it.
pub(crate) fn json_field(name: &str) -> String {
    format!("$.{name}")
}
