//! A partition's gate, pure: whether the log a stored position was taken in
//! is the one the broker serves now. A gate judges each record of its
//! partition until the record before the resume point confirms the log, and
//! decides how the partition restarts when it does not (see the consumer's
//! module documentation). No clock is read here: callers pass `now`.

use std::time::{Duration, Instant};

/// How long a probe waits for its first record before the partition is
/// scanned instead.
const PROBE_PATIENCE: Duration = Duration::from_secs(1);

/// How long a scan may stop short of the resume point before the partition
/// is replayed, when the broker has not said that its log reaches the resume
/// point.
const SCAN_PATIENCE: Duration = Duration::from_secs(3);

/// How long a scan may stop short of the resume point when the broker says
/// its log reaches it (the scan is slow, not the log short: a hand-over on a
/// loaded machine) before the partition is scanned again, from a fresh start.
const SLOW_SCAN_PATIENCE: Duration = Duration::from_secs(30);

/// A partition whose resume point `next` is being confirmed: the record at
/// `next - 1` must carry the id `last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Gate {
    /// Assigned at `next - 1`; waiting for its first record.
    Probing { next: i64, last: String, since: Instant },
    /// Assigned at the start; skipping up to `next - 1`. `since`: the last
    /// progress (assignment or a skipped record). A scan that stops short of
    /// `next - 1` found a shorter log (a broker that came back empty and
    /// has not got that far again): what it skipped was never handled.
    Scanning { next: i64, last: String, since: Instant },
}

/// How a partition starts at the next assignment, after a gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Restart {
    /// From the start, skipping up to the resume point.
    Scan,
    /// From the start, handling everything (the log is not the one we left).
    Replay,
}

/// What a gate says about one record of its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Scanning, before the resume point: handled already (if the log is the
    /// same); skip it. The scan made progress.
    Before,
    /// The record at `next - 1` with the stored id: the log is the one we
    /// left; skip it and resume at `next`. The gate is done.
    Confirmed { next: i64 },
    /// The partition must be assigned again, starting this way.
    Restart(Restart),
    /// Probing, and the broker reset us to an earlier start: the log is
    /// shorter. The gate is done; the partition is replayed from here.
    Shorter,
}

impl Gate {
    /// Judges the record at `offset` carrying the id `id`.
    pub(super) fn judge(&mut self, offset: i64, id: Option<&str>, now: Instant) -> Verdict {
        let (next, probing, confirms) = match &*self {
            Gate::Probing { next, last, .. } => (*next, true, id == Some(last.as_str())),
            Gate::Scanning { next, last, .. } => (*next, false, id == Some(last.as_str())),
        };
        if offset < next - 1 && !probing {
            if let Gate::Scanning { since, .. } = self {
                *since = now;
            }
            return Verdict::Before; // before the resume point: handled already (if the log is the same)
        }
        if offset == next - 1 && confirms {
            return Verdict::Confirmed { next }; // the log is the one we left: resume after it
        }
        if offset > next - 1 && probing {
            return Verdict::Restart(Restart::Scan);
        }
        if offset < next - 1 {
            // Probing, and the broker reset us to an earlier start: the log is shorter.
            Verdict::Shorter
        } else {
            Verdict::Restart(Restart::Replay)
        }
    }

    /// A gate that stopped moving, and how its partition must restart;
    /// `end` is the partition's end (the offset its next record will get) as
    /// the broker last reported it, if it did. A probe unanswered for a
    /// second means the resume point lies inside the last batch of a Tansu
    /// log (or past the end of an empty one): scan that partition instead.
    /// A scan idle for three seconds short of the resume point means the log
    /// is shorter than the one the position was taken in: replay the
    /// partition (the inbox drops what was handled before). Unless the
    /// broker says its log reaches the resume point: then the scan is only
    /// slow, and it waits thirty seconds before it starts over, still
    /// skipping what was handled.
    pub(super) fn stalled(&self, now: Instant, end: Option<i64>) -> Option<Restart> {
        match self {
            Gate::Probing { since, .. } if now.saturating_duration_since(*since) > PROBE_PATIENCE => {
                Some(Restart::Scan)
            }
            Gate::Scanning { next, since, .. } => {
                let idle = now.saturating_duration_since(*since);
                if end.is_some_and(|end| end >= *next) {
                    (idle > SLOW_SCAN_PATIENCE).then_some(Restart::Scan)
                } else {
                    (idle > SCAN_PATIENCE).then_some(Restart::Replay)
                }
            }
            Gate::Probing { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBING: bool = true;
    const SCANNING: bool = false;

    fn gate(probing: bool, next: i64, since: Instant) -> Gate {
        let last = "id-9".to_owned();
        if probing { Gate::Probing { next, last, since } } else { Gate::Scanning { next, last, since } }
    }

    #[test]
    fn a_gate_judges_each_record_against_the_resume_point() {
        use Verdict::{Before, Confirmed, Shorter};
        let (scan, replay) = (Verdict::Restart(Restart::Scan), Verdict::Restart(Restart::Replay));
        let t0 = Instant::now();
        // Every gate resumes at 10: the record at 9 must carry "id-9".
        // (reason, probing?, offset, record id, verdict)
        let rows: &[(&str, bool, i64, Option<&str>, Verdict)] = &[
            ("a probe answered by the record it asked for", PROBING, 9, Some("id-9"), Confirmed { next: 10 }),
            ("a probe answered by a later batch: scan instead", PROBING, 12, Some("id-12"), scan),
            ("a probe answered with another id at 9: another log", PROBING, 9, Some("x"), replay),
            ("a probe answered with no id at 9: another log", PROBING, 9, None, replay),
            ("a probe reset below the position: a shorter log", PROBING, 3, Some("id-3"), Shorter),
            ("a scan below the resume point: handled already", SCANNING, 3, Some("id-3"), Before),
            ("a scan reaches the record with its id", SCANNING, 9, Some("id-9"), Confirmed { next: 10 }),
            ("a scan reaches another record at 9: another log", SCANNING, 9, Some("x"), replay),
            ("a scan passes the resume point unconfirmed", SCANNING, 11, Some("id-11"), replay),
        ];
        for (reason, probing, offset, id, verdict) in rows {
            let mut g = gate(*probing, 10, t0);
            assert_eq!(g.judge(*offset, *id, t0), *verdict, "{reason}");
        }
    }

    #[test]
    fn a_scan_that_skips_a_record_made_progress_and_a_probe_does_not_move() {
        let (t0, later) = (Instant::now(), Instant::now() + Duration::from_secs(2));
        let mut scan = gate(SCANNING, 10, t0);
        assert_eq!(scan.judge(4, Some("id-4"), later), Verdict::Before);
        assert_eq!(scan, gate(SCANNING, 10, later), "the skipped record is progress");
        let mut probe = gate(PROBING, 10, t0);
        assert_eq!(probe.judge(4, Some("id-4"), later), Verdict::Shorter);
        assert_eq!(probe, gate(PROBING, 10, t0));
    }

    #[test]
    fn a_gate_that_stopped_moving_restarts_its_partition() {
        use super::Restart::{Replay, Scan};
        let t0 = Instant::now();
        let after = |ms: u64| t0 + Duration::from_millis(ms);
        // Every gate resumes at 10. (reason, probing?, time since its last
        // progress, the partition's end as the broker reported it, restart)
        type Row = (&'static str, bool, Instant, Option<i64>, Option<Restart>);
        let rows: &[Row] = &[
            ("a fresh probe waits", PROBING, after(0), None, None),
            ("a probe waits a second", PROBING, after(1000), None, None),
            ("a probe unanswered for over a second: scan", PROBING, after(1001), None, Some(Scan)),
            ("a probe's patience does not depend on the end", PROBING, after(1001), Some(50), Some(Scan)),
            ("a fresh scan waits", SCANNING, after(0), None, None),
            ("a scan waits three seconds", SCANNING, after(3000), None, None),
            ("a scan idle for over three seconds, no end reported: replay", SCANNING, after(3001), None, Some(Replay)),
            ("... the log ends before the resume point: replay", SCANNING, after(3001), Some(9), Some(Replay)),
            ("... the log holds the record at 9: a slow scan waits", SCANNING, after(3001), Some(10), None),
            ("a slow scan waits thirty seconds", SCANNING, after(30_000), Some(10), None),
            ("a slow scan idle for over thirty seconds: scan again", SCANNING, after(30_001), Some(10), Some(Scan)),
        ];
        for (reason, probing, now, end, restart) in rows {
            assert_eq!(gate(*probing, 10, t0).stalled(*now, *end), *restart, "{reason}");
        }
    }
}
