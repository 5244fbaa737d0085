//! The outbox hand-over: rows a committed transaction wrote, given to the
//! relay of an exclusive store in memory, so that it need not read them back.
//!
//! On a store whose process is the database's only writer (SQLite), rows
//! get their ids in commit order, one after the other: an insert takes the
//! id after the largest, and a transaction rolled back gives its ids back.
//! A commit hands over what it wrote (with the ids `INSERT … RETURNING`
//! gave it); the relay takes rows only while they continue its place
//! without a gap. Anything else makes it read the outbox as before: the
//! hand-over is a shortcut that knows when it cannot be trusted, never the
//! only way a row reaches the broker.
//!
//! - A row missing before the next one the relay wants (a commit that has
//!   not handed over yet, rows written before the relay started): a gap,
//!   so read.
//! - More rows waiting than [`HAND_OVER_CAPACITY`] (the relay is slow or
//!   the broker away): the queue stops taking rows and says so once, so
//!   read. Memory stays bounded whatever the broker does.
//! - Nothing waiting: nothing was committed since, or a commit has not
//!   handed over yet; its signal wakes the relay again. The relay also
//!   reads from the start after each mark and after a failed send, which
//!   bounds how long any row the hand-over missed can wait.
//!
//! Ids follow commit order one after the other as long as the largest id
//! stays in the table. The pruner deletes only rows published longer ago
//! than the outbox retention (an hour by default), so the largest can go
//! only after a quiet spell that long. By then the relay has marked, has no
//! place, and reads. Each read empties the queue, so no row waits there
//! for an id to come round again.

use std::collections::BTreeMap;

use crate::model::ClaimedMessage;

/// The most rows that wait in the hand-over; past it the relay reads.
pub const HAND_OVER_CAPACITY: usize = 4096;

/// Rows committed and not yet taken by the relay, by id.
#[derive(Debug, Default)]
pub(crate) struct HandOver {
    rows: BTreeMap<i64, ClaimedMessage>,
    /// Rows were turned away since the relay last read: it must read.
    overflowed: bool,
}

impl HandOver {
    /// Queues rows a commit wrote (or notes that they did not fit).
    pub(crate) fn push(&mut self, rows: Vec<ClaimedMessage>) {
        if self.overflowed || self.rows.len() + rows.len() > HAND_OVER_CAPACITY {
            self.overflowed = true;
            self.rows.clear();
            return;
        }
        self.rows.extend(rows.into_iter().map(|row| (row.id, row)));
    }

    /// Up to `limit` rows that follow row `after` without a gap, oldest
    /// first (empty: none waits). `None`: the relay must read the outbox,
    /// because rows may be missing (a gap, an overflow, or `after` is 0:
    /// the relay has not read since its start, its last mark or a failed
    /// send). The queue is emptied then: every row in it was committed
    /// before it was queued, so the read finds them all, and a row kept
    /// would outlive its place (after a prune, SQLite may give its id to
    /// another row).
    pub(crate) fn take_after(&mut self, after: i64, limit: u32) -> Option<Vec<ClaimedMessage>> {
        // Rows the relay has already read or sent are done with.
        let newer = self.rows.split_off(&(after + 1));
        self.rows = newer;
        let gap = self.rows.first_key_value().is_some_and(|(&id, _)| id != after + 1);
        if self.overflowed || after == 0 || gap {
            self.overflowed = false;
            self.rows.clear();
            return None;
        }
        let mut taken = Vec::new();
        let mut next = after + 1;
        while taken.len() < limit as usize && self.rows.first_key_value().is_some_and(|(&id, _)| id == next) {
            taken.extend(self.rows.pop_first().map(|(_, row)| row));
            next += 1;
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OutboxMessage;

    fn row(id: i64) -> ClaimedMessage {
        ClaimedMessage {
            id,
            attempts: 0,
            message: OutboxMessage {
                message_id: uuid::Uuid::new_v4(),
                topic: "t".into(),
                key: "k".into(),
                headers: Vec::new(),
                payload: Vec::new(),
            },
        }
    }

    fn ids(rows: Option<Vec<ClaimedMessage>>) -> Option<Vec<i64>> {
        rows.map(|rows| rows.iter().map(|r| r.id).collect())
    }

    #[test]
    fn rows_that_continue_the_relays_place_are_taken_in_order() {
        let mut hand_over = HandOver::default();
        hand_over.push(vec![row(12), row(13)]);
        hand_over.push(vec![row(11)]);
        assert_eq!(ids(hand_over.take_after(10, 100)), Some(vec![11, 12, 13]));
        assert_eq!(ids(hand_over.take_after(13, 100)), Some(vec![]), "nothing waits");
    }

    #[test]
    fn a_gap_before_the_next_row_means_read() {
        let mut hand_over = HandOver::default();
        hand_over.push(vec![row(13)]);
        assert_eq!(ids(hand_over.take_after(11, 100)), None, "row 12 may be committed and not handed over");
        assert!(hand_over.rows.is_empty(), "the read finds row 13");
    }

    #[test]
    fn a_relay_that_reads_leaves_no_row_behind_for_an_id_given_again() {
        // Row 5000 was read from the outbox (the relay had no place), sent
        // and marked; after a long quiet spell the pruner deleted it, and
        // SQLite gives its id to a new row.
        let mut hand_over = HandOver::default();
        hand_over.push(vec![row(5000)]);
        assert_eq!(ids(hand_over.take_after(0, 100)), None);
        hand_over.push(vec![row(4999)]);
        assert_eq!(ids(hand_over.take_after(4998, 100)), Some(vec![4999]), "not the old row 5000");
    }

    #[test]
    fn a_gap_after_some_rows_ends_the_take_and_the_next_take_reads() {
        let mut hand_over = HandOver::default();
        hand_over.push(vec![row(11), row(12), row(14)]);
        assert_eq!(ids(hand_over.take_after(10, 100)), Some(vec![11, 12]));
        assert_eq!(ids(hand_over.take_after(12, 100)), None);
    }

    #[test]
    fn rows_the_relay_read_already_are_dropped() {
        let mut hand_over = HandOver::default();
        hand_over.push(vec![row(5), row(6), row(7)]);
        assert_eq!(ids(hand_over.take_after(6, 100)), Some(vec![7]));
    }

    #[test]
    fn the_limit_leaves_the_rest_for_the_next_take() {
        let mut hand_over = HandOver::default();
        hand_over.push((1..=5).map(row).collect());
        assert_eq!(ids(hand_over.take_after(0, 2)), None, "no place yet: read from the start");
        hand_over.push((6..=9).map(row).collect());
        assert_eq!(ids(hand_over.take_after(5, 2)), Some(vec![6, 7]));
        assert_eq!(ids(hand_over.take_after(7, 10)), Some(vec![8, 9]));
    }

    #[test]
    fn an_overflow_turns_rows_away_and_the_relay_reads_once() {
        let mut hand_over = HandOver::default();
        hand_over.push((1..=HAND_OVER_CAPACITY as i64).map(row).collect());
        hand_over.push(vec![row(HAND_OVER_CAPACITY as i64 + 1)]);
        assert_eq!(ids(hand_over.take_after(1, 10)), None, "rows were turned away");
        assert!(hand_over.rows.is_empty(), "memory is given back");
        hand_over.push(vec![row(100_000)]);
        assert_eq!(ids(hand_over.take_after(99_999, 10)), Some(vec![100_000]), "taking again after the read");
    }
}
