//! What the consumer knows about each partition, as a pure state machine:
//! how far it has read, the positions of skipped records not yet stored,
//! its gate, whether this instance holds it, how it restarts at the next
//! assignment and where a seek must rewind it. The loop feeds it events
//! (assigned, revoked, a record fetched, skipped, committed or parked, a
//! tick) and does what it answers ([`Start`], [`Passage`], [`Reposition`]).
//! No I/O, no rdkafka types, no clock: callers pass `now`.

use std::collections::HashMap;
use std::time::Instant;

use super::gate::{Gate, Restart, Verdict};

/// A partition: its topic and number.
pub(super) type PartitionKey = (String, i32);

/// A position in a partition: the next offset, and the id of the record
/// before it (the one a gate confirms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) next: i64,
    pub(super) last: Option<String>,
}

/// Where an assignment starts a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// At its first offset.
    FromTheStart,
    /// At this offset (a probe's `next - 1`).
    At(i64),
}

/// How one partition of an assignment starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resume {
    pub(super) key: PartitionKey,
    pub(super) start: Start,
    /// True: a gate decided the log is not the one the position was taken
    /// in, so the partition is replayed and its position forgotten.
    pub(super) replaying: bool,
}

/// What a partition's gate says about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Passage {
    /// Handle it.
    Handle,
    /// Already handled (or the confirming record itself): skip it.
    Skip,
    /// The log is shorter than the position (the broker lost it?): the
    /// partition is replayed from here; handle it.
    Replay,
    /// The partition must be assigned again (see its `restart`).
    Reassign,
}

/// What a seek on the client in use must do (in a group).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Reposition {
    /// Partitions a gate decided on, to start again (see [`Partitions::resume`]).
    pub(super) wanted: Vec<(PartitionKey, Restart)>,
    /// Other held partitions whose fetched records were dropped: back to the
    /// first dropped offset.
    pub(super) rewinds: Vec<(PartitionKey, i64)>,
}

/// One partition's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Partition {
    /// Next offset and last record id, as far as read.
    read: Option<Position>,
    /// Position of skipped records not yet stored.
    unsaved: Option<Position>,
    /// Set while its resume point is not yet confirmed.
    gate: Option<Gate>,
    /// How the next assignment starts it.
    restart: Option<Restart>,
    /// Held by this instance now (alone: every partition of the client).
    held: bool,
    /// Records fetched but dropped at a reassignment: the first dropped offset.
    rewind: Option<i64>,
}

/// Every partition the consumer has heard of.
#[derive(Debug, Default)]
pub(super) struct Partitions {
    each: HashMap<PartitionKey, Partition>,
    /// True after the first assignment (later ones scan instead of probing).
    assigned_before: bool,
}

impl Partitions {
    /// A fresh client: it holds nothing yet, and no partition is gated.
    pub(super) fn fresh_client(&mut self) {
        for part in self.each.values_mut() {
            (part.gate, part.held) = (None, false);
        }
    }

    /// The client in use is gone, and with it what it fetched: nothing to rewind.
    pub(super) fn drop_rewinds(&mut self) {
        self.each.values_mut().for_each(|part| part.rewind = None);
    }

    /// The group assigned partitions: their positions come from the
    /// database, which other instances move too, so the next resume probes
    /// them like a first start.
    pub(super) fn probe_next(&mut self) {
        self.assigned_before = false;
    }

    /// Where each of `keys` starts, with its gate: the position read here,
    /// else the one `stored` in the database.
    pub(super) fn resume(
        &mut self,
        keys: &[PartitionKey],
        stored: &HashMap<PartitionKey, Position>,
        now: Instant,
    ) -> Vec<Resume> {
        let scan = self.assigned_before;
        let mut resumes = Vec::with_capacity(keys.len());
        for key in keys {
            let part = self.each.entry(key.clone()).or_default();
            let known = part.read.clone().or_else(|| stored.get(key).cloned());
            let restart = part.restart.take();
            let mut replaying = false;
            let start = match (known, restart) {
                (_, Some(Restart::Replay))
                | (None, _)
                | (Some(Position { next: 0, .. }), _)
                | (Some(Position { last: None, .. }), _) => {
                    if restart == Some(Restart::Replay) {
                        replaying = true;
                        part.read = None;
                    }
                    Start::FromTheStart
                }
                // A probe is only worth it once: after that, scanning cannot
                // get stuck, so one partition's fallback never re-probes another.
                (Some(Position { next, last: Some(last) }), Some(Restart::Scan) | None) if scan => {
                    part.gate = Some(Gate::Scanning { next, last, since: now });
                    Start::FromTheStart
                }
                (Some(Position { next, last: Some(last) }), _) => {
                    part.gate = Some(Gate::Probing { next, last, since: now });
                    Start::At(next - 1)
                }
            };
            resumes.push(Resume { key: key.clone(), start, replaying });
        }
        self.assigned_before = true;
        resumes
    }

    /// These partitions, and no others, are held now.
    pub(super) fn hold(&mut self, keys: &[PartitionKey]) {
        self.each.values_mut().for_each(|part| part.held = false);
        for key in keys {
            self.each.entry(key.clone()).or_default().held = true;
        }
    }

    /// True when this instance holds the partition.
    pub(super) fn holds(&self, key: &PartitionKey) -> bool {
        self.each.get(key).is_some_and(|part| part.held)
    }

    /// These partitions are taken away (their skipped positions were stored
    /// first): what was read and their gates are forgotten. A restart a gate
    /// asked for stays until the next seek drops it or they come back.
    pub(super) fn revoke(&mut self, keys: &[PartitionKey]) {
        for key in keys {
            if let Some(part) = self.each.get_mut(key) {
                (part.read, part.gate, part.held) = (None, None, false);
            }
        }
    }

    /// True while the partition's resume point is not confirmed.
    pub(super) fn is_gated(&self, key: &PartitionKey) -> bool {
        self.each.get(key).is_some_and(|part| part.gate.is_some())
    }

    /// Applies the partition's gate, if it has one, to the record at
    /// `offset` carrying the id `record_id`.
    pub(super) fn gate(&mut self, key: &PartitionKey, offset: i64, record_id: Option<String>, now: Instant) -> Passage {
        let Some(part) = self.each.get_mut(key) else { return Passage::Handle };
        let Some(gate) = part.gate.as_mut() else { return Passage::Handle };
        match gate.judge(offset, record_id.as_deref(), now) {
            Verdict::Before => Passage::Skip,
            Verdict::Confirmed { next } => {
                part.gate = None;
                part.read = Some(Position { next, last: record_id });
                Passage::Skip
            }
            Verdict::Restart(restart) => {
                part.restart = Some(restart);
                Passage::Reassign
            }
            Verdict::Shorter => {
                (part.gate, part.read) = (None, None);
                Passage::Replay
            }
        }
    }

    /// A record at `offset` was fetched but dropped (the client must read
    /// it again): a seek rewinds the partition to the first such offset.
    pub(super) fn dropped(&mut self, key: PartitionKey, offset: i64) {
        let rewind = &mut self.each.entry(key).or_default().rewind;
        *rewind = Some(rewind.map_or(offset, |at| at.min(offset)));
    }

    /// A record no route wants was read: its position is stored later.
    pub(super) fn skipped(&mut self, key: PartitionKey, past: Position) {
        let part = self.each.entry(key).or_default();
        (part.unsaved, part.read) = (Some(past.clone()), Some(past));
    }

    /// A record was read and dealt with (dead-lettered).
    pub(super) fn read_past(&mut self, key: PartitionKey, past: Position) {
        self.each.entry(key).or_default().read = Some(past);
    }

    /// A dead letter was parked with the position past it.
    pub(super) fn parked(&mut self, key: &PartitionKey) {
        if let Some(part) = self.each.get_mut(key) {
            part.unsaved = None;
        }
    }

    /// A record's effects and the position past it are committed.
    pub(super) fn committed(&mut self, key: PartitionKey, past: Position) {
        let part = self.each.entry(key).or_default();
        if part.unsaved.as_ref().is_some_and(|unsaved| unsaved.next <= past.next) {
            part.unsaved = None;
        }
        if part.read.as_ref().is_none_or(|read| read.next <= past.next) {
            part.read = Some(past);
        }
    }

    /// The positions of skipped records to store now (no longer pending).
    pub(super) fn take_unsaved(&mut self) -> Vec<(PartitionKey, Position)> {
        self.each.iter_mut().filter_map(|(key, part)| part.unsaved.take().map(|at| (key.clone(), at))).collect()
    }

    /// Gates that stopped moving (see [`Gate::stalled`]; `end` gives a
    /// partition's end as the broker last reported it): their partitions
    /// are noted to restart, and returned.
    pub(super) fn stalled(
        &mut self,
        now: Instant,
        end: impl Fn(&PartitionKey) -> Option<i64>,
    ) -> Vec<(PartitionKey, Restart)> {
        let mut stuck = Vec::new();
        for (key, part) in &mut self.each {
            if let Some(restart) = part.gate.as_ref().and_then(|gate| gate.stalled(now, end(key))) {
                part.restart = Some(restart);
                stuck.push((key.clone(), restart));
            }
        }
        stuck
    }

    /// A seek instead of a fresh client (in a group): restarts of partitions
    /// no longer held are dropped; the wanted ones lose their gates (their
    /// resume sets new ones, scanning); the held others are rewound to
    /// what was dropped.
    pub(super) fn reposition(&mut self) -> Reposition {
        let mut plan = Reposition::default();
        for (key, part) in &mut self.each {
            if !part.held {
                part.restart = None;
            }
            if let Some(restart) = part.restart {
                part.gate = None;
                plan.wanted.push((key.clone(), restart));
            }
            if let Some(offset) = part.rewind.take()
                && part.held
                && part.restart.is_none()
            {
                plan.rewinds.push((key.clone(), offset));
            }
        }
        self.assigned_before = true; // scan, not probe
        plan
    }

    /// The seek failed: what it was for must happen at the next assignment.
    pub(super) fn reposition_failed(&mut self, wanted: Vec<(PartitionKey, Restart)>) {
        for (key, restart) in wanted {
            self.each.entry(key).or_default().restart = Some(restart);
        }
    }
}

#[cfg(test)]
mod tests;
