//! The statements whose one text serves SQLite and PostgreSQL, written with
//! `$N` placeholders (sqlx's SQLite driver binds `$N` to the Nth argument,
//! as PostgreSQL does). `sqlite.rs` and `postgres.rs` keep only what
//! differs: appends and loading a stream with its snapshot, the outbox's
//! claims, marks and clock arithmetic, snapshots, the inbox, consumer
//! positions written, documents written, and what the statements here take
//! from their dialect (`on_conn!(conn, |c, dialect| …)`): the column list
//! and the row decoder where a column's type differs (an event's payload
//! and time, an outbox row, a document), the names of the outbox's time
//! columns, and the documents filter with its JSON field path.

use sqlx::Row;
use udders_kernel::{CorrelationId, Timestamp};

use crate::documents::{Document, DocumentCursor, DocumentFilter, DocumentPage};
use crate::error::{Context, StoreError};
use crate::model::{ClaimedMessage, ConsumerPosition, RecordedEvent, StreamId};
use crate::store::{Conn, on_conn};

pub(crate) async fn read_stream(
    conn: Conn<'_>,
    stream: &StreamId,
    after_version: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    on_conn!(conn, |c, dialect| {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM events WHERE stream = $1 AND version > $2 ORDER BY version",
            dialect::EVENT_COLUMNS
        ));
        let rows = sqlx::query(sql)
            .bind(stream.as_str())
            .bind(after_version as i64)
            .fetch_all(&mut *c)
            .await
            .during("reading a stream")?;
        rows.iter().map(dialect::event_from_row).collect()
    })
}

pub(crate) async fn read_all(
    conn: Conn<'_>,
    after_position: i64,
    limit: u32,
) -> Result<Vec<RecordedEvent>, StoreError> {
    on_conn!(conn, |c, dialect| {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2",
            dialect::EVENT_COLUMNS
        ));
        let rows = sqlx::query(sql)
            .bind(after_position)
            .bind(i64::from(limit))
            .fetch_all(&mut *c)
            .await
            .during("reading the global log")?;
        rows.iter().map(dialect::event_from_row).collect()
    })
}

pub(crate) async fn read_correlated(
    conn: Conn<'_>,
    correlation_id: CorrelationId,
) -> Result<Vec<RecordedEvent>, StoreError> {
    on_conn!(conn, |c, dialect| {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM events WHERE correlation_id = $1 ORDER BY global_position",
            dialect::EVENT_COLUMNS
        ));
        let rows =
            sqlx::query(sql).bind(correlation_id.as_uuid()).fetch_all(&mut *c).await.during("reading a correlation")?;
        rows.iter().map(dialect::event_from_row).collect()
    })
}

pub(crate) async fn stream_version(conn: Conn<'_>, stream: &StreamId) -> Result<u64, StoreError> {
    on_conn!(conn, |c| {
        let v: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM events WHERE stream = $1")
            .bind(stream.as_str())
            .fetch_one(&mut *c)
            .await
            .during("reading a stream version")?;
        Ok(v.unwrap_or(0) as u64)
    })
}

pub(crate) async fn head_position(conn: Conn<'_>) -> Result<i64, StoreError> {
    on_conn!(conn, |c| {
        let p: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
            .fetch_one(&mut *c)
            .await
            .during("reading the head position")?;
        Ok(p.unwrap_or(0))
    })
}

pub(crate) async fn positions(conn: Conn<'_>, consumer: &str) -> Result<Vec<ConsumerPosition>, StoreError> {
    let sql = "SELECT topic, partition, next_offset, last_record FROM consumer_positions WHERE consumer = $1
         ORDER BY topic, partition";
    on_conn!(conn, |c| {
        let rows = sqlx::query(sql).bind(consumer).fetch_all(&mut *c).await.during("reading consumer positions")?;
        Ok(rows
            .iter()
            .map(|r| ConsumerPosition {
                topic: r.get(0),
                partition: r.get(1),
                next_offset: r.get(2),
                last_record: r.get(3),
            })
            .collect())
    })
}

/// Up to `limit` unpublished rows after row `after`, oldest first, claiming
/// nothing: for the only relay of a database with one writer process.
/// (Relays on PostgreSQL claim: several instances share a database.)
pub(crate) async fn unpublished_after(
    conn: Conn<'_>,
    after: i64,
    limit: u32,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    on_conn!(conn, |c, dialect| {
        // Only a column name is formatted in: the values are bound.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, attempts, message_id, topic, key, headers, payload FROM outbox
             WHERE {} IS NULL AND id > $1 ORDER BY id LIMIT $2",
            dialect::PUBLISHED_AT
        ));
        let rows = sqlx::query(sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *c)
            .await
            .during("reading unpublished outbox rows")?;
        rows.iter().map(dialect::outbox_row).collect()
    })
}

pub(crate) async fn release_relay(conn: Conn<'_>, relay: &str) -> Result<u64, StoreError> {
    on_conn!(conn, |c, dialect| {
        // Only column names are formatted in: the relay is bound.
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET {claimed_until} = NULL, claimed_by = NULL \
             WHERE claimed_by = $1 AND {published_at} IS NULL",
            claimed_until = dialect::CLAIMED_UNTIL,
            published_at = dialect::PUBLISHED_AT,
        ));
        let done = sqlx::query(sql).bind(relay).execute(&mut *c).await.during("releasing a relay's outbox claims")?;
        Ok(done.rows_affected())
    })
}

pub(crate) async fn get_document(conn: Conn<'_>, view: &str, key: &str) -> Result<Option<Document>, StoreError> {
    let sql = "SELECT key, doc, tag_a, tag_b, tag_c, due_at_us FROM read_models WHERE view = $1 AND key = $2";
    on_conn!(conn, |c, dialect| {
        let row = sqlx::query(sql).bind(view).bind(key).fetch_optional(&mut *c).await.during("reading a read model")?;
        row.map(|row| dialect::document_from_row(view, &row)).transpose()
    })
}

/// The statement of a page of documents: `filter`'s conditions and only
/// those, each a plain equality or range the planner can match to an index
/// (written `($2 IS NULL OR tag_a = $2)`, a condition hides the status index
/// from it, and a page of a rare status walked every document of the view).
/// Parameters in order: the view, each tag set, the cursor (update time,
/// key), the JSON field (path, value), the limit. `json_equals` is the
/// dialect's test of a field, given the two parameters.
pub(crate) fn list_documents_sql(filter: &DocumentFilter, json_equals: fn(&str, &str) -> String) -> String {
    let mut sql =
        String::from("SELECT key, doc, tag_a, tag_b, tag_c, due_at_us, updated_at_us FROM read_models WHERE view = $1");
    let mut next = 2;
    let mut param = || {
        next += 1;
        format!("${}", next - 1)
    };
    for (column, tag) in ["tag_a", "tag_b", "tag_c"].iter().zip(&filter.tags) {
        if tag.is_some() {
            sql += &format!(" AND {column} = {}", param());
        }
    }
    if filter.after.is_some() {
        let (at, key) = (param(), param());
        // The first condition alone bounds the index range; the second
        // breaks the ties.
        sql += &format!(" AND updated_at_us <= {at} AND (updated_at_us < {at} OR key > {key})");
    }
    if filter.field.is_some() {
        let (path, value) = (param(), param());
        sql += &format!(" AND {}", json_equals(&path, &value));
    }
    sql += &format!(" ORDER BY updated_at_us DESC, key LIMIT {}", param());
    sql
}

/// A page of a view's documents matching `filter`, most recently updated
/// first, with the cursor of the next page when this one is full. The
/// path of the JSON field filtered on, and how it is read, are the dialect's.
pub(crate) async fn list_documents(
    conn: Conn<'_>,
    view: &str,
    filter: &DocumentFilter,
) -> Result<DocumentPage, StoreError> {
    on_conn!(conn, |c, dialect| {
        let sql = list_documents_sql(filter, dialect::json_field_equals);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(view);
        for tag in filter.tags.iter().flatten() {
            query = query.bind(tag.as_str());
        }
        if let Some(after) = &filter.after {
            query = query.bind(after.updated_at_us).bind(after.key.as_str());
        }
        if let Some((name, value)) = &filter.field {
            query = query.bind(dialect::json_field(name)).bind(value.as_str());
        }
        let rows = query.bind(i64::from(filter.limit)).fetch_all(&mut *c).await.during("listing a read model")?;
        let full = rows.len() as u64 >= u64::from(filter.limit) && filter.limit > 0;
        let next =
            rows.last().filter(|_| full).map(|row| DocumentCursor { updated_at_us: row.get(6), key: row.get(0) });
        let documents = rows.iter().map(|row| dialect::document_from_row(view, row)).collect::<Result<_, _>>()?;
        Ok(DocumentPage { documents, next })
    })
}

pub(crate) async fn count_documents(
    conn: Conn<'_>,
    view: &str,
    tag: usize,
) -> Result<Vec<(Option<String>, u64)>, StoreError> {
    let sql = match tag {
        0 => "SELECT tag_a, count(*) FROM read_models WHERE view = $1 GROUP BY tag_a ORDER BY tag_a",
        1 => "SELECT tag_b, count(*) FROM read_models WHERE view = $1 GROUP BY tag_b ORDER BY tag_b",
        _ => "SELECT tag_c, count(*) FROM read_models WHERE view = $1 GROUP BY tag_c ORDER BY tag_c",
    };
    on_conn!(conn, |c| {
        let rows = sqlx::query(sql).bind(view).fetch_all(&mut *c).await.during("counting a read model")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<i64, _>(1) as u64)).collect())
    })
}

pub(crate) async fn due_documents(
    conn: Conn<'_>,
    view: &str,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT key FROM read_models WHERE view = $1 AND due_at_us <= $2 ORDER BY due_at_us LIMIT $3";
    on_conn!(conn, |c| sqlx::query_scalar(sql)
        .bind(view)
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await
        .during("reading due read models"))
}

/// The documents of [`due_documents`], most overdue first, in one read.
pub(crate) async fn due_document_bodies(
    conn: Conn<'_>,
    view: &str,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<Document>, StoreError> {
    let sql = "SELECT key, doc, tag_a, tag_b, tag_c, due_at_us FROM read_models WHERE view = $1 AND due_at_us <= $2 \
               ORDER BY due_at_us LIMIT $3";
    on_conn!(conn, |c, dialect| {
        let rows = sqlx::query(sql)
            .bind(view)
            .bind(now.micros())
            .bind(i64::from(limit))
            .fetch_all(&mut *c)
            .await
            .during("reading due read models")?;
        rows.iter().map(|row| dialect::document_from_row(view, row)).collect()
    })
}

pub(crate) async fn clear_documents(conn: Conn<'_>) -> Result<u64, StoreError> {
    on_conn!(conn, |c| {
        let done = sqlx::query("DELETE FROM read_models").execute(&mut *c).await.during("clearing the read models")?;
        Ok(done.rows_affected())
    })
}
