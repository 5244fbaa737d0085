//! What can go wrong in the store, said with what failed and where.

use crate::model::{ExpectedVersion, NewEvent, OutboxMessage, StreamId};

/// An error of the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer got there first: reload the stream and decide again.
    #[error("conflict on stream {stream}: expected {expected}, but the stream has moved on")]
    Conflict {
        /// The stream.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
    },
    /// An event with this id is already stored.
    #[error("event id {event_id} is already stored (appending to stream {stream})")]
    DuplicateEventId {
        /// The stream appended to.
        stream: String,
        /// The id.
        event_id: String,
    },
    /// An outbox message with this id is already waiting or published.
    #[error("outbox message id {message_id} is already stored")]
    DuplicateMessageId {
        /// The id.
        message_id: String,
    },
    /// A stored event cannot be decoded into the aggregate's event type.
    #[error(
        "stream {stream}, version {version}: cannot decode event type {event_type:?} schema version {schema_version}: {reason}"
    )]
    UnknownEvent {
        /// The stream.
        stream: String,
        /// The event's version in the stream.
        version: u64,
        /// Its stored type name.
        event_type: String,
        /// Its stored schema version.
        schema_version: u16,
        /// Why it did not decode.
        reason: String,
    },
    /// An event or state could not be encoded as JSON in the stored shape.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A stored row is not what this code can read.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which row.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Another process has this SQLite database open.
    #[error("the database {path} is in use by another process (one process owns a SQLite store)")]
    InUse {
        /// The database file.
        path: String,
    },
    /// The URL names no backend this store speaks.
    #[error("unsupported database URL {url:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL, without its password.
        url: String,
    },
    /// Applying the migrations failed.
    #[error("migrating the {backend} database failed")]
    Migrate {
        /// Which backend.
        backend: &'static str,
        /// The cause.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The database failed while doing `op`.
    #[error("database error while {op}")]
    Database {
        /// What the store was doing.
        op: &'static str,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
}

impl StoreError {
    /// True for [`StoreError::Conflict`]: the caller should reload and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// True when the database, not the data, failed, so the same work can
    /// succeed later: the connection or pool is gone or timed out, SQLite is
    /// busy or locked, PostgreSQL lost the connection, is shutting down, is
    /// out of resources, or chose this transaction as a deadlock or
    /// serialization victim. A consumer waits these out and never blames the
    /// record it was handling. A [`StoreError::Conflict`] raised inside a
    /// handler is not one of them: it is retried and counted like any
    /// handler failure, so one that never clears ends as a dead letter
    /// instead of holding its partition for ever.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
                _ => false,
            },
            _ => false,
        }
    }
}

/// A database error code that names a passing condition: PostgreSQL's
/// five-character SQLSTATEs (class 08 connection, 53 resources, 57P
/// shutdown, 40001 serialization, 40P01 deadlock), SQLite's numeric codes
/// (primary code, the low byte: 5 busy, 6 locked).
fn transient_code(code: &str) -> bool {
    match code.parse::<u32>() {
        // SQLite: numeric; an extended code keeps its primary code in the low byte.
        Ok(n) if code.len() < 5 => matches!(n & 0xff, 5 | 6),
        // PostgreSQL: a five-character SQLSTATE.
        _ => {
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
        }
    }
}

/// Attaches "while doing what" to a sqlx error.
pub(crate) trait Context<T> {
    fn during(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn during(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { op, source })
    }
}

/// Which unique key a failed insert violated, if any.
pub(crate) fn violated_constraint(error: &sqlx::Error) -> Option<&'static str> {
    let db = error.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    const KEYS: [(&str, &str, &str); 3] = [
        ("events_stream_version_key", "events.stream", "events_stream_version_key"),
        ("events_event_id_key", "events.event_id", "events_event_id_key"),
        ("outbox_message_id_key", "outbox.message_id", "outbox_message_id_key"),
    ];
    // PostgreSQL names the constraint; SQLite names the columns in its message.
    let named = db.constraint();
    let message = db.message();
    KEYS.iter()
        .find(|(constraint, columns, _)| named == Some(*constraint) || message.contains(columns))
        .map(|(_, _, key)| *key)
}

/// Maps an insert error of an append to what it means.
pub(crate) fn append_error(
    e: sqlx::Error,
    stream: &StreamId,
    expected: ExpectedVersion,
    event: &NewEvent,
) -> StoreError {
    match violated_constraint(&e) {
        Some("events_stream_version_key") => StoreError::Conflict { stream: stream.to_string(), expected },
        Some("events_event_id_key") => {
            StoreError::DuplicateEventId { stream: stream.to_string(), event_id: event.event_id.to_string() }
        }
        _ => StoreError::Database { op: "appending events", source: e },
    }
}

pub(crate) fn outbox_error(e: sqlx::Error, message: &OutboxMessage) -> StoreError {
    match violated_constraint(&e) {
        Some("outbox_message_id_key") => StoreError::DuplicateMessageId { message_id: message.message_id.to_string() },
        _ => StoreError::Database { op: "writing outbox rows", source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_locked_and_lost_connections_are_transient_and_broken_data_is_not() {
        for code in ["5", "517", "6", "262", "08006", "57P01", "53300", "40001", "40P01"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["19", "2067", "1555", "23505", "22P02", "42P01"] {
            assert!(!transient_code(code), "{code}");
        }
        let io = StoreError::Database { op: "x", source: sqlx::Error::Io(std::io::Error::other("gone")) };
        assert!(io.is_transient());
        assert!(StoreError::Database { op: "x", source: sqlx::Error::PoolTimedOut }.is_transient());
        assert!(!StoreError::Corrupt { what: "a row".into(), reason: "bad".into() }.is_transient());
        let row = StoreError::Database { op: "x", source: sqlx::Error::RowNotFound };
        assert!(!row.is_transient());
    }
}
