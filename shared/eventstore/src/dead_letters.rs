//! Dead letters: the records a consumer gave up on, parked in the service's
//! own database with the position that passes them (one transaction), so a
//! restart or a broker that lost everything keeps them. An operator lists
//! them, replays one (through the normal handler and inbox) or discards it
//! with a note. The SQL is one text for both dialects: `$N` placeholders,
//! each used once and in order, which SQLite reads as well as PostgreSQL.

use sqlx::Row;
use udders_kernel::Timestamp;

use crate::error::Context as _;
use crate::model::ConsumerPosition;
use crate::store::{Conn, EventStore, on_conn};

/// Where a dead letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterStatus {
    /// Waiting for an operator.
    Parked,
    /// Replayed: its handler ran (or found it handled already).
    Replayed,
    /// Set aside by an operator, with a note.
    Discarded,
}

impl DeadLetterStatus {
    /// `parked`, `replayed` or `discarded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parked => "parked",
            Self::Replayed => "replayed",
            Self::Discarded => "discarded",
        }
    }

    /// The status named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Parked, Self::Replayed, Self::Discarded].into_iter().find(|s| s.as_str() == text)
    }
}

/// A record as it came off the broker, and why it was given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    /// The consumer that gave up (the service's name).
    pub consumer: String,
    /// Where it was read.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its `ce_subject` header, when it had one.
    pub subject: Option<String>,
    /// Its key (the order id), when it had one.
    pub key: Option<String>,
    /// Why it was given up on.
    pub reason: String,
    /// Handler attempts (0: malformed, never handled).
    pub attempts: u32,
    /// When the first attempt failed.
    pub first_failed_at: Timestamp,
    /// When the last one did.
    pub last_failed_at: Timestamp,
    /// Its headers, values as text (lossy for values that are not UTF-8).
    pub headers: Vec<(String, Option<String>)>,
    /// Its value.
    pub payload: Option<Vec<u8>>,
}

/// A parked (or resolved) dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its number in this database.
    pub id: i64,
    /// The record and its failure.
    pub record: NewDeadLetter,
    /// Where it stands.
    pub status: DeadLetterStatus,
    /// The operator's note, for a discarded one.
    pub note: Option<String>,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only those of this status.
    pub status: Option<DeadLetterStatus>,
    /// Only those whose reason contains this text.
    pub reason: Option<String>,
    /// Only those of this record key (order id).
    pub key: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// The columns `decode!` reads, in its order.
macro_rules! columns {
    () => {
        "id, consumer, topic, partition_no, record_offset, subject, record_key, reason, attempts, \
         first_failed_at_us, last_failed_at_us, status, note, headers, payload"
    };
}

macro_rules! bind_new {
    ($query:expr, $d:expr, $headers:expr) => {
        $query
            .bind(&$d.consumer)
            .bind(&$d.topic)
            .bind($d.partition)
            .bind($d.offset)
            .bind(&$d.subject)
            .bind(&$d.key)
            .bind(&$d.reason)
            .bind(i64::from($d.attempts))
            .bind($d.first_failed_at.micros())
            .bind($d.last_failed_at.micros())
            .bind($headers)
            .bind(&$d.payload)
    };
}

/// Reads a row of `columns!()` of either backend.
macro_rules! decode {
    ($row:expr) => {{
        let row = $row;
        let bad =
            |e: sqlx::Error| crate::StoreError::Encode { what: "a dead letter row".into(), reason: e.to_string() };
        let headers: String = row.try_get(13).map_err(bad)?;
        let headers: Vec<(String, Option<String>)> = serde_json::from_str(&headers)
            .map_err(|e| crate::StoreError::Encode { what: "dead letter headers".into(), reason: e.to_string() })?;
        let status: String = row.try_get(11).map_err(bad)?;
        Ok::<DeadLetter, crate::StoreError>(DeadLetter {
            id: row.try_get(0).map_err(bad)?,
            record: NewDeadLetter {
                consumer: row.try_get(1).map_err(bad)?,
                topic: row.try_get(2).map_err(bad)?,
                partition: row.try_get(3).map_err(bad)?,
                offset: row.try_get(4).map_err(bad)?,
                subject: row.try_get(5).map_err(bad)?,
                key: row.try_get(6).map_err(bad)?,
                reason: row.try_get(7).map_err(bad)?,
                attempts: u32::try_from(row.try_get::<i64, _>(8).map_err(bad)?).unwrap_or(u32::MAX),
                first_failed_at: Timestamp::from_micros(row.try_get(9).map_err(bad)?),
                last_failed_at: Timestamp::from_micros(row.try_get(10).map_err(bad)?),
                headers,
                payload: row.try_get(14).map_err(bad)?,
            },
            status: DeadLetterStatus::parse(&status).unwrap_or(DeadLetterStatus::Parked),
            note: row.try_get(12).map_err(bad)?,
        })
    }};
}

impl EventStore {
    /// Parks a record the consumer gives up on and stores the position past
    /// it, in one transaction: it is either parked and passed, or neither.
    pub async fn park_dead_letter(
        &self,
        letter: &NewDeadLetter,
        position: &ConsumerPosition,
    ) -> Result<i64, crate::StoreError> {
        let headers = serde_json::to_string(&letter.headers)
            .map_err(|e| crate::StoreError::Encode { what: "dead letter headers".into(), reason: e.to_string() })?;
        let sql = "INSERT INTO dead_letters (consumer, topic, partition_no, record_offset, subject, record_key, reason, \
             attempts, first_failed_at_us, last_failed_at_us, headers, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id";
        let mut tx = self.begin().await?;
        let id: i64 = on_conn!(tx.conn(), |c| bind_new!(sqlx::query_scalar(sql), letter, &headers)
            .fetch_one(&mut *c)
            .await
            .during("parking a dead letter")?);
        tx.save_position(&letter.consumer, position).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Dead letters matching `filter`, newest first.
    pub async fn dead_letters(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, crate::StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM dead_letters WHERE ($1 IS NULL OR status = $2) AND ($3 IS NULL OR reason LIKE '%' || $4 || '%') \
             AND ($5 IS NULL OR record_key = $6) ORDER BY id DESC LIMIT $7"
        );
        let status = filter.status.map(DeadLetterStatus::as_str);
        let limit = i64::from(filter.limit.clamp(1, 10_000));
        let mut c = self.reader().await?;
        on_conn!(c.conn(), |c| {
            let rows = sqlx::query(sql)
                .bind(status)
                .bind(status)
                .bind(&filter.reason)
                .bind(&filter.reason)
                .bind(&filter.key)
                .bind(&filter.key)
                .bind(limit)
                .fetch_all(&mut *c)
                .await
                .during("listing dead letters")?;
            rows.iter().map(|row| decode!(row)).collect()
        })
    }

    /// One dead letter.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, crate::StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM dead_letters WHERE id = $1");
        let mut c = self.reader().await?;
        on_conn!(c.conn(), |c| {
            let row = sqlx::query(sql).bind(id).fetch_optional(&mut *c).await.during("reading a dead letter")?;
            row.as_ref().map(|row| decode!(row)).transpose()
        })
    }

    /// Moves a parked dead letter to `status` (with `note`); false when it
    /// was not parked (resolved already, or no such id).
    pub async fn resolve_dead_letter(
        &self,
        id: i64,
        status: DeadLetterStatus,
        note: Option<&str>,
    ) -> Result<bool, crate::StoreError> {
        let sql = "UPDATE dead_letters SET status = $1, note = $2 WHERE id = $3 AND status = 'parked'";
        let mut c = self.writer().await?;
        let done = on_conn!(c.conn(), |c| sqlx::query(sql)
            .bind(status.as_str())
            .bind(note)
            .bind(id)
            .execute(&mut *c)
            .await
            .during("resolving a dead letter")?
            .rows_affected());
        Ok(done == 1)
    }

    /// Notes another failed attempt of a parked dead letter (a replay that
    /// failed again): one more attempt, the new reason, the time.
    pub async fn dead_letter_failed_again(
        &self,
        id: i64,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), crate::StoreError> {
        let sql = "UPDATE dead_letters SET attempts = attempts + 1, reason = $1, last_failed_at_us = $2 WHERE id = $3";
        let mut c = self.writer().await?;
        on_conn!(c.conn(), |c| {
            sqlx::query(sql)
                .bind(reason)
                .bind(at.micros())
                .bind(id)
                .execute(&mut *c)
                .await
                .during("noting a failed replay")?;
        });
        Ok(())
    }

    /// How many dead letters are parked.
    pub async fn parked_dead_letters(&self) -> Result<u64, crate::StoreError> {
        let sql = "SELECT count(*) FROM dead_letters WHERE status = 'parked'";
        let mut c = self.reader().await?;
        let n: i64 =
            on_conn!(c.conn(), |c| sqlx::query_scalar(sql).fetch_one(&mut *c).await.during("counting dead letters")?);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
