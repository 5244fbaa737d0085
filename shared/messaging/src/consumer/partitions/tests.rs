//! Table-driven tests of [`Partitions`]: each row a state and an event, what
//! must come of it, and why.

use std::time::Duration;

use super::*;

fn key(partition: i32) -> PartitionKey {
    ("udders.order".to_owned(), partition)
}

fn at(next: i64, last: &str) -> Position {
    Position { next, last: Some(last.to_owned()) }
}

fn probing(next: i64, since: Instant) -> Option<Gate> {
    Some(Gate::Probing { next, last: format!("id-{}", next - 1), since })
}

fn scanning(next: i64, since: Instant) -> Option<Gate> {
    Some(Gate::Scanning { next, last: format!("id-{}", next - 1), since })
}

/// Partitions knowing `parts` (by partition number).
fn given(parts: Vec<(i32, Partition)>, assigned_before: bool) -> Partitions {
    Partitions { each: parts.into_iter().map(|(p, part)| (key(p), part)).collect(), assigned_before }
}

/// The state of partition `p` (one never heard of is all empty).
fn state(parts: &Partitions, p: i32) -> Partition {
    parts.each.get(&key(p)).cloned().unwrap_or_default()
}

#[test]
fn an_assignment_resumes_each_partition_from_the_best_position_it_knows() {
    let t0 = Instant::now();
    let bare = Some(Position { next: 10, last: None });
    let zero = Some(Position { next: 0, last: Some("id".into()) });
    let (scan, replay) = (Some(Restart::Scan), Some(Restart::Replay));
    // (reason, read here, stored, restart, assigned before, start, gate, replaying)
    type Row = (&'static str, Option<Position>, Option<Position>, Option<Restart>, bool, Start, Option<Gate>, bool);
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("a fresh assignment probes the stored position at N-1",
            None, Some(at(10, "id-9")), None, false, Start::At(9), probing(10, t0), false),
        ("the position read here wins over the stored one",
            Some(at(20, "id-19")), Some(at(10, "id-9")), None, false, Start::At(19), probing(20, t0), false),
        ("no position: from the start, ungated", None, None, None, false, Start::FromTheStart, None, false),
        ("a position at 0: from the start, ungated", None, zero, None, false, Start::FromTheStart, None, false),
        ("a position without its record's id: from the start, ungated",
            None, bare, None, true, Start::FromTheStart, None, false),
        ("a later assignment scans rather than probing",
            None, Some(at(10, "id-9")), None, true, Start::FromTheStart, scanning(10, t0), false),
        ("a scan a gate asked for",
            Some(at(10, "id-9")), None, scan, true, Start::FromTheStart, scanning(10, t0), false),
        ("a scan asked for, at an assignment that probes (a group's): probed",
            None, Some(at(10, "id-9")), scan, false, Start::At(9), probing(10, t0), false),
        ("a replay a gate asked for: from the start, ungated, what was read forgotten",
            Some(at(20, "id-19")), Some(at(10, "id-9")), replay, false, Start::FromTheStart, None, true),
    ];
    for (reason, read, stored, restart, assigned_before, start, gate, replaying) in rows {
        let mut parts =
            given(vec![(0, Partition { read: read.clone(), restart, ..Partition::default() })], assigned_before);
        let stored: HashMap<PartitionKey, Position> = stored.into_iter().map(|p| (key(0), p)).collect();
        let resumed = parts.resume(&[key(0)], &stored, t0);
        assert_eq!(resumed, [Resume { key: key(0), start, replaying }], "{reason}");
        let read_after = if replaying { None } else { read };
        assert_eq!(state(&parts, 0), Partition { read: read_after, gate, ..Partition::default() }, "{reason}");
        assert!(parts.assigned_before, "{reason}: the next assignment scans");
    }
}

#[test]
fn a_gate_holds_back_its_own_partition_while_the_others_flow() {
    let t0 = Instant::now();
    let start = || {
        let scan = Partition { gate: scanning(10, t0), held: true, ..Partition::default() };
        let probe = Partition { read: Some(at(10, "id-9")), gate: probing(10, t0), held: true, ..Partition::default() };
        given(vec![(0, scan), (1, Partition { held: true, ..Partition::default() }), (2, probe)], false)
    };
    let id = |s: &str| Some(s.to_owned());
    // (reason, partition, offset, record id, passage, gated after, read after, restart after)
    type Row = (&'static str, i32, i64, Option<String>, Passage, bool, Option<Position>, Option<Restart>);
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("no gate: handle", 1, 5, id("a"), Passage::Handle, false, None, None),
        ("a partition never heard of: handle", 7, 5, id("a"), Passage::Handle, false, None, None),
        ("a scan below the resume point: skip", 0, 3, id("id-3"), Passage::Skip, true, None, None),
        ("the confirming record: skip it, resume after it",
            0, 9, id("id-9"), Passage::Skip, false, Some(at(10, "id-9")), None),
        ("another log: assign again, replaying", 0, 9, id("x"), Passage::Reassign, true, None, Some(Restart::Replay)),
        ("a probe answered by a later batch: assign again, scanning",
            2, 12, id("id-12"), Passage::Reassign, true, Some(at(10, "id-9")), Some(Restart::Scan)),
        ("a probe reset below its position: handle, replaying from here, position forgotten",
            2, 0, id("id-0"), Passage::Replay, false, None, None),
    ];
    for (reason, p, offset, record_id, passage, gated, read, restart) in rows {
        let mut parts = start();
        assert_eq!(parts.gate(&key(p), offset, record_id, t0), passage, "{reason}");
        let after = state(&parts, p);
        assert_eq!((parts.is_gated(&key(p)), after.read, after.restart), (gated, read, restart), "{reason}");
        assert_eq!(parts.gate(&key(1), 6, id("b"), t0), Passage::Handle, "{reason}: the others flow");
    }
}

#[derive(Debug)]
enum Read {
    Skipped(Position),
    Committed(Position),
    DeadLettered(Position),
    Parked,
}

#[test]
fn positions_move_with_what_is_read_skipped_committed_and_parked() {
    // (reason, read, unsaved, event, read after, unsaved after)
    type Row = (&'static str, Option<Position>, Option<Position>, Read, Option<Position>, Option<Position>);
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("a skipped record: read, its position pending", None, None,
            Read::Skipped(at(5, "a")), Some(at(5, "a")), Some(at(5, "a"))),
        ("a commit past the pending skip stores it", Some(at(5, "a")), Some(at(5, "a")),
            Read::Committed(at(7, "c")), Some(at(7, "c")), None),
        ("a commit at the pending skip stores it", Some(at(7, "s")), Some(at(7, "s")),
            Read::Committed(at(7, "c")), Some(at(7, "c")), None),
        ("a commit behind a later skip (of one batch) leaves it pending", Some(at(9, "s")), Some(at(9, "s")),
            Read::Committed(at(7, "c")), Some(at(9, "s")), Some(at(9, "s"))),
        ("a commit of a partition revoked meanwhile: read again", None, None,
            Read::Committed(at(7, "c")), Some(at(7, "c")), None),
        ("a dead letter: read past it, the pending skip kept until parked", Some(at(5, "a")), Some(at(5, "a")),
            Read::DeadLettered(at(6, "d")), Some(at(6, "d")), Some(at(5, "a"))),
        ("a parked dead letter stored its position", Some(at(6, "d")), Some(at(5, "a")),
            Read::Parked, Some(at(6, "d")), None),
    ];
    for (reason, read, unsaved, event, read_after, unsaved_after) in rows {
        let mut parts = given(vec![(0, Partition { read, unsaved, ..Partition::default() })], true);
        match event {
            Read::Skipped(past) => parts.skipped(key(0), past),
            Read::Committed(past) => parts.committed(key(0), past),
            Read::DeadLettered(past) => parts.read_past(key(0), past),
            Read::Parked => parts.parked(&key(0)),
        }
        let after = state(&parts, 0);
        assert_eq!((after.read, after.unsaved), (read_after, unsaved_after), "{reason}");
    }
}

#[test]
fn pending_positions_are_taken_once() {
    let mut parts = Partitions::default();
    parts.skipped(key(0), at(5, "a"));
    parts.skipped(key(0), at(6, "b"));
    parts.skipped(key(1), at(2, "c"));
    let mut taken = parts.take_unsaved();
    taken.sort_by_key(|(k, _)| k.1);
    assert_eq!(taken, [(key(0), at(6, "b")), (key(1), at(2, "c"))], "the latest of each partition");
    assert!(parts.take_unsaved().is_empty(), "nothing is pending twice");
    assert_eq!(state(&parts, 0).read, Some(at(6, "b")), "what was read stays");
}

#[test]
fn a_revocation_forgets_what_was_taken_away_and_a_rebalance_mid_retry_resumes_from_the_database() {
    let t0 = Instant::now();
    let mut parts = Partitions::default();
    parts.hold(&[key(0), key(1)]);
    // A record of partition 0 is being retried when the group revokes;
    // the loop applies the revocation after the batch, once it committed.
    parts.committed(key(0), at(8, "id-7"));
    parts.committed(key(1), at(3, "id-2"));
    parts.revoke(&[key(0)]);
    assert!(!parts.holds(&key(0)) && parts.holds(&key(1)), "only the partition taken away goes");
    assert_eq!(state(&parts, 0), Partition::default(), "its read position and gate are forgotten");
    assert_eq!(state(&parts, 1).read, Some(at(3, "id-2")), "the others keep theirs");
    // It comes back: from the database (the retried record's commit moved
    // it; another instance might have), probed like a first start.
    parts.probe_next();
    let stored = HashMap::from([(key(0), at(8, "id-7"))]);
    let resumed = parts.resume(&[key(0)], &stored, t0);
    assert_eq!(resumed, [Resume { key: key(0), start: Start::At(7), replaying: false }]);
    parts.hold(&[key(0)]);
    assert!(parts.holds(&key(0)) && !parts.holds(&key(1)), "an assignment replaces what was held");
}

#[test]
fn a_restart_noted_for_a_partition_taken_away_is_dropped_at_the_next_seek() {
    let mut parts = Partitions::default();
    parts.hold(&[key(0)]);
    parts.each.entry(key(0)).or_default().restart = Some(Restart::Scan);
    parts.revoke(&[key(0)]);
    assert_eq!(state(&parts, 0).restart, Some(Restart::Scan), "kept while nothing else is decided");
    assert_eq!(parts.reposition(), Reposition::default(), "a seek does not move what is not held");
    assert_eq!(state(&parts, 0).restart, None);
}

#[test]
fn gates_that_stopped_moving_restart_their_partitions() {
    let t0 = Instant::now();
    let gated = |gate| Partition { gate, held: true, ..Partition::default() };
    let mut parts = given(
        vec![(0, gated(probing(10, t0))), (1, gated(scanning(10, t0))), (2, gated(None)), (3, gated(scanning(10, t0)))],
        false,
    );
    // The broker reported partition 3's log reaching the resume point
    // (its end past 9), and no end for the others.
    let end = |key: &PartitionKey| (key.1 == 3).then_some(40);
    // (reason, seconds since t0, stuck partitions and their restarts)
    type Row = (&'static str, f64, Vec<(i32, Restart)>);
    let rows: Vec<Row> = vec![
        ("nothing waited long", 0.5, vec![]),
        ("a probe unanswered for a second: scan", 1.5, vec![(0, Restart::Scan)]),
        (
            "a scan idle for three seconds as well: replay, but not the one whose log reaches the resume point",
            3.5,
            vec![(0, Restart::Scan), (1, Restart::Replay)],
        ),
        (
            "that one too after thirty seconds: scanned again",
            30.5,
            vec![(0, Restart::Scan), (1, Restart::Replay), (3, Restart::Scan)],
        ),
    ];
    for (reason, seconds, expected) in rows {
        let mut stuck = parts.stalled(t0 + Duration::from_secs_f64(seconds), end);
        stuck.sort_by_key(|(k, _)| k.1);
        let expected: Vec<(PartitionKey, Restart)> = expected.iter().map(|(p, r)| (key(*p), *r)).collect();
        assert_eq!(stuck, expected, "{reason}");
        for (k, restart) in &expected {
            assert_eq!(state(&parts, k.1).restart, Some(*restart), "{reason}: noted for the next assignment");
        }
    }
}

#[test]
fn a_seek_restarts_what_the_gates_asked_for_and_rewinds_what_was_dropped() {
    let t0 = Instant::now();
    let held = |gate, restart| Partition { gate, restart, held: true, ..Partition::default() };
    let mut parts = given(
        vec![
            (0, Partition { read: Some(at(10, "id-9")), ..held(scanning(10, t0), Some(Restart::Replay)) }),
            (1, held(None, None)),
            (2, held(None, None)),
            (3, Partition { restart: Some(Restart::Scan), ..Partition::default() }),
        ],
        false,
    );
    // The batch after the record that decided is dropped: the fresh client
    // or the seek must read it again.
    for (p, offset) in [(0, 11), (1, 7), (1, 5), (3, 2)] {
        parts.dropped(key(p), offset);
    }
    let plan = parts.reposition();
    assert_eq!(plan.wanted, [(key(0), Restart::Replay)], "only what is held");
    assert_eq!(plan.rewinds, [(key(1), 5)], "held, not restarted anyway, back to the first dropped");
    assert!(!parts.is_gated(&key(0)) && parts.assigned_before, "its gate goes; the next resume scans");
    assert!(parts.each.values().all(|part| part.rewind.is_none()), "every rewind is taken");
    // The seek fails: what it was for happens at the next assignment.
    parts.reposition_failed(plan.wanted);
    assert_eq!(state(&parts, 0).restart, Some(Restart::Replay));
    let resumed = parts.resume(&[key(0)], &HashMap::new(), t0);
    assert_eq!(resumed, [Resume { key: key(0), start: Start::FromTheStart, replaying: true }]);
    assert_eq!(state(&parts, 0).read, None, "a replay forgets what was read");
}

#[test]
fn a_fresh_client_holds_nothing_and_opens_no_gate_but_remembers_what_was_read() {
    let t0 = Instant::now();
    let part = Partition {
        read: Some(at(10, "id-9")),
        gate: probing(10, t0),
        held: true,
        rewind: Some(4),
        ..Partition::default()
    };
    let mut parts = given(vec![(0, part)], true);
    parts.drop_rewinds();
    parts.fresh_client();
    assert_eq!(state(&parts, 0), Partition { read: Some(at(10, "id-9")), ..Partition::default() });
    let resumed = parts.resume(&[key(0)], &HashMap::new(), t0);
    assert_eq!(resumed, [Resume { key: key(0), start: Start::FromTheStart, replaying: false }], "scanned");
    assert_eq!(state(&parts, 0).gate, scanning(10, t0));
}
