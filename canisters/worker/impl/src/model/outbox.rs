//! Reports to the task manager that must arrive: a job's end
//! (`job_finished`) and a load's end (`worker_ready`).
//!
//! A report is kept here from the moment its job or load ends until the
//! task manager answers it: `Ok`, or a typed refusal, which is final too. A
//! call that fails (rejected, timed out, the task manager stopped or being
//! upgraded) is tried again after [`retry_delay`]: 10 s, doubling up to
//! 5 min; a report still unanswered [`REPORT_TTL_SECS`] after it was made
//! is dropped. The canister sends what [`Outbox::take_due`] hands out
//! (one bounded-wait call each) and gives each answer back with
//! [`Outbox::settle`]. Time is a parameter (nanoseconds), so the policy is
//! tested here with a fake clock.
//!
//! ```
//! use worker::model::outbox::{Delivery, Outbox, ReportKey};
//! let mut outbox = Outbox::default();
//! outbox.enqueue(ReportKey::Job(7), "job_finished", vec![1, 2], 0);
//! let due = outbox.take_due(0);
//! assert_eq!(due.sends.len(), 1);
//! outbox.settle(due.sends[0].id, Delivery::Failed("stopped".into()), 1);
//! assert!(outbox.take_due(1).sends.is_empty(), "not before the retry delay");
//! assert_eq!(outbox.take_due(10_000_000_001).sends.len(), 1);
//! ```

use std::collections::BTreeMap;

use candid::{CandidType, Deserialize};
use worker_api::protocol::{
    MAX_OUTBOX, REPORT_FIRST_RETRY_SECS, REPORT_MAX_RETRY_SECS, REPORT_TIMEOUT_SECS,
    REPORT_TTL_SECS,
};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// What a report is about: at most one pending report per key.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReportKey {
    /// The end of a job (`job_finished`).
    Job(u64),
    /// The end of the latest load (`worker_ready`): a newer one replaces
    /// an older one not yet delivered.
    Load,
}

/// One report: the method of the task manager and its candid argument.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub key: ReportKey,
    pub method: String,
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
    /// When the report was made.
    pub created_ns: u64,
    /// Calls made so far.
    pub attempts: u32,
    /// Not sent again before this time (a call in flight, or the wait
    /// after a failed one).
    pub next_ns: u64,
}

/// A call to make now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub id: u64,
    pub key: ReportKey,
    pub method: String,
    pub arg: Vec<u8>,
}

/// What [`Outbox::take_due`] gives: the calls to make, and the reports
/// dropped because they are too old (to log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Due {
    pub sends: Vec<Send>,
    pub expired: Vec<Pending>,
}

/// How the task manager answered one call of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `Ok`: the report arrived.
    Accepted,
    /// A typed refusal (or an answer that does not decode): final.
    Refused(String),
    /// No answer: rejected, timed out, or the call could not be made.
    Failed(String),
}

/// Reports not yet answered, by id (the order they were made in).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    entries: BTreeMap<u64, Pending>,
    next_id: u64,
}

/// The wait after the `attempts`-th failed call: 10 s, 20 s, 40 s, … up
/// to 5 min.
pub fn retry_delay(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (REPORT_FIRST_RETRY_SECS << doublings).min(REPORT_MAX_RETRY_SECS) * NANOS_PER_SEC
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a report with this key is pending.
    pub fn contains(&self, key: ReportKey) -> bool {
        self.entries.values().any(|p| p.key == key)
    }

    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.entries.values()
    }

    /// Keeps a report, due now. It replaces a pending one with the same
    /// key; when the outbox is full the oldest report is dropped and
    /// returned (to log). `run_job` refuses jobs before that can happen.
    pub fn enqueue(
        &mut self,
        key: ReportKey,
        method: &str,
        arg: Vec<u8>,
        now: u64,
    ) -> Option<Pending> {
        self.entries.retain(|_, p| p.key != key);
        let dropped = if self.entries.len() >= MAX_OUTBOX {
            self.entries.pop_first().map(|(_, p)| p)
        } else {
            None
        };
        self.entries.insert(
            self.next_id,
            Pending {
                key,
                method: method.to_string(),
                arg,
                created_ns: now,
                attempts: 0,
                next_ns: now,
            },
        );
        self.next_id += 1;
        dropped
    }

    /// The reports to send now (each marked in flight until its call's
    /// deadline has passed), and those dropped as too old.
    pub fn take_due(&mut self, now: u64) -> Due {
        let ttl = REPORT_TTL_SECS * NANOS_PER_SEC;
        let expired_ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.created_ns) >= ttl)
            .map(|(&id, _)| id)
            .collect();
        let expired = expired_ids
            .iter()
            .filter_map(|id| self.entries.remove(id))
            .collect();
        let in_flight = (u64::from(REPORT_TIMEOUT_SECS) + 1) * NANOS_PER_SEC;
        let sends = self
            .entries
            .iter_mut()
            .filter(|(_, p)| p.next_ns <= now)
            .map(|(&id, p)| {
                p.attempts += 1;
                p.next_ns = now + in_flight;
                Send {
                    id,
                    key: p.key,
                    method: p.method.clone(),
                    arg: p.arg.clone(),
                }
            })
            .collect();
        Due { sends, expired }
    }

    /// Records the answer to a call of report `id`: an answer ends the
    /// report (removed and returned), a failed call schedules the next
    /// try. A report replaced meanwhile is left alone.
    pub fn settle(&mut self, id: u64, delivery: Delivery, now: u64) -> Option<Pending> {
        match delivery {
            Delivery::Accepted | Delivery::Refused(_) => self.entries.remove(&id),
            Delivery::Failed(_) => {
                if let Some(p) = self.entries.get_mut(&id) {
                    p.next_ns = now + retry_delay(p.attempts);
                }
                None
            }
        }
    }

    /// When the next report is due, if any.
    pub fn next_due(&self) -> Option<u64> {
        let ttl = REPORT_TTL_SECS * NANOS_PER_SEC;
        self.entries
            .values()
            .map(|p| p.next_ns.min(p.created_ns.saturating_add(ttl)))
            .min()
    }

    /// Every report due now (after an upgrade: no call is in flight any
    /// more).
    pub fn all_due(&mut self, now: u64) {
        for p in self.entries.values_mut() {
            p.next_ns = p.next_ns.min(now);
        }
    }

    /// The stored form (kept in stable memory across an upgrade).
    pub fn to_stored(&self) -> StoredOutbox {
        StoredOutbox::V1 {
            entries: self.entries.values().cloned().collect(),
        }
    }

    pub fn from_stored(stored: StoredOutbox) -> Outbox {
        let StoredOutbox::V1 { entries } = stored;
        let next_id = entries.len() as u64;
        Outbox {
            entries: (0..).zip(entries).collect(),
            next_id,
        }
    }
}

/// The outbox as kept in stable memory between `pre_upgrade` and
/// `post_upgrade` (versioned; arguments as the candid bytes to send).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum StoredOutbox {
    V1 { entries: Vec<Pending> },
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SEC;

    fn job(outbox: &mut Outbox, job: u64, now: u64) {
        outbox.enqueue(ReportKey::Job(job), "job_finished", vec![job as u8], now);
    }

    #[test]
    fn a_failed_call_is_retried_with_backoff_until_answered() {
        let mut o = Outbox::default();
        job(&mut o, 1, 0);
        assert_eq!(o.next_due(), Some(0));
        let due = o.take_due(0);
        assert_eq!(due.sends.len(), 1);
        assert_eq!(due.sends[0].method, "job_finished");
        let id = due.sends[0].id;
        // In flight: not sent again before the call's deadline.
        assert!(o.take_due(30 * S).sends.is_empty());
        o.settle(id, Delivery::Failed("stopped".into()), 2 * S);
        // Tries at 2 + 10, then 20, 40 s later.
        let mut now = 2 * S;
        for wait in [10, 20, 40, 80, 160, 300, 300] {
            assert!(o.take_due(now + wait * S - 1).sends.is_empty(), "{wait}");
            assert_eq!(o.next_due(), Some(now + wait * S));
            now += wait * S;
            let due = o.take_due(now);
            assert_eq!(due.sends.len(), 1, "{wait}");
            o.settle(id, Delivery::Failed("timeout".into()), now);
        }
        assert_eq!(o.pending().next().unwrap().attempts, 8);
        let due = o.take_due(now + 300 * S);
        assert_eq!(due.sends.len(), 1);
        let done = o.settle(id, Delivery::Accepted, now + 300 * S).unwrap();
        assert_eq!(done.key, ReportKey::Job(1));
        assert!(o.is_empty());
        assert_eq!(o.next_due(), None);
    }

    #[test]
    fn a_refusal_is_final_and_old_reports_are_dropped() {
        let mut o = Outbox::default();
        job(&mut o, 1, 0);
        job(&mut o, 2, 0);
        let due = o.take_due(0);
        assert_eq!(due.sends.len(), 2);
        o.settle(due.sends[0].id, Delivery::Refused("UnknownJob".into()), S);
        o.settle(due.sends[1].id, Delivery::Failed("stopped".into()), S);
        assert_eq!(o.len(), 1);
        // Never answered: dropped an hour after it was made.
        while o.next_due().is_some_and(|t| t < REPORT_TTL_SECS * S) {
            let now = o.next_due().unwrap();
            for s in o.take_due(now).sends {
                o.settle(s.id, Delivery::Failed("stopped".into()), now);
            }
        }
        assert_eq!(o.next_due(), Some(REPORT_TTL_SECS * S));
        let due = o.take_due(REPORT_TTL_SECS * S);
        assert!(due.sends.is_empty());
        assert_eq!(due.expired.len(), 1);
        assert_eq!(due.expired[0].key, ReportKey::Job(2));
        assert!(o.is_empty());
    }

    #[test]
    fn a_newer_load_report_replaces_an_older_one_and_the_outbox_is_bounded() {
        let mut o = Outbox::default();
        o.enqueue(ReportKey::Load, "worker_ready", vec![1], 0);
        let old = o.take_due(0).sends[0].id;
        o.enqueue(ReportKey::Load, "worker_ready", vec![2], S);
        assert_eq!(o.len(), 1);
        // The old call's answer does not remove the new report.
        assert_eq!(o.settle(old, Delivery::Accepted, S), None);
        assert_eq!(o.take_due(S).sends[0].arg, vec![2]);
        assert!(o.contains(ReportKey::Load));

        let mut o = Outbox::default();
        for j in 0..MAX_OUTBOX as u64 {
            job(&mut o, j, j);
        }
        let dropped = o.enqueue(ReportKey::Job(999), "job_finished", vec![], S);
        assert_eq!(dropped.map(|p| p.key), Some(ReportKey::Job(0)));
        assert_eq!(o.len(), MAX_OUTBOX);
    }

    #[test]
    fn the_outbox_survives_an_upgrade_and_is_due_again() {
        let mut o = Outbox::default();
        job(&mut o, 1, 0);
        job(&mut o, 2, 0);
        let _ = o.take_due(0);
        let bytes = candid::encode_one(o.to_stored()).unwrap();
        let mut back = Outbox::from_stored(candid::decode_one(&bytes).unwrap());
        assert_eq!(back.len(), 2);
        assert!(back.take_due(S).sends.is_empty(), "still marked in flight");
        back.all_due(S);
        let due = back.take_due(S);
        assert_eq!(due.sends.len(), 2);
        assert_eq!(back.pending().map(|p| p.attempts).max(), Some(2));
        // New reports take new ids.
        job(&mut back, 3, S);
        assert_eq!(back.len(), 3);
    }
}
