//! Cancels of jobs the driver does not know yet.
//!
//! The task manager may cancel a job whose `run_job` has not arrived: it
//! was cancelled while its seed was drawn, or the `run_job` call timed out
//! and may still be delivered. The driver remembers such a cancel for
//! [`CANCEL_MEMORY_SECS`] (at most [`MAX_CANCEL_MEMORY`] of them, the
//! oldest forgotten first), so that a `run_job` of that id ends at once,
//! cancelled, instead of running a job nobody wants.

use std::collections::BTreeMap;

use worker_api::protocol::{CANCEL_MEMORY_SECS, MAX_CANCEL_MEMORY};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Remembered cancels: job id → when it is forgotten.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EarlyCancels {
    until: BTreeMap<u64, u64>,
}

impl EarlyCancels {
    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// Remembers a cancel of `job` at `now`.
    pub fn remember(&mut self, job: u64, now: u64) {
        self.forget_expired(now);
        if !self.until.contains_key(&job) && self.until.len() >= MAX_CANCEL_MEMORY {
            let oldest = self.until.iter().min_by_key(|(_, &t)| t).map(|(&j, _)| j);
            if let Some(oldest) = oldest {
                self.until.remove(&oldest);
            }
        }
        self.until
            .insert(job, now.saturating_add(CANCEL_MEMORY_SECS * NANOS_PER_SEC));
    }

    /// Whether `job` was cancelled before it arrived (and forgets it).
    pub fn take(&mut self, job: u64, now: u64) -> bool {
        self.forget_expired(now);
        self.until.remove(&job).is_some()
    }

    fn forget_expired(&mut self, now: u64) {
        self.until.retain(|_, &mut t| t > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SEC;

    #[test]
    fn a_cancel_is_remembered_for_a_while_then_forgotten() {
        let mut c = EarlyCancels::default();
        c.remember(5, 0);
        assert!(!c.take(6, S));
        assert!(c.take(5, S), "remembered");
        assert!(!c.take(5, 2 * S), "taken once");
        c.remember(7, 0);
        assert!(
            !c.take(7, CANCEL_MEMORY_SECS * S),
            "forgotten after the memory time"
        );
        assert!(c.is_empty());
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_oldest_first() {
        let mut c = EarlyCancels::default();
        for job in 0..MAX_CANCEL_MEMORY as u64 + 10 {
            c.remember(job, job);
        }
        assert_eq!(c.len(), MAX_CANCEL_MEMORY);
        assert!(!c.take(0, 2_000), "the oldest went first");
        assert!(c.take(MAX_CANCEL_MEMORY as u64 + 9, 2_000));
        // Expired ones go before any live one is forgotten.
        let mut c = EarlyCancels::default();
        c.remember(1, 0);
        c.remember(2, CANCEL_MEMORY_SECS * S + 1);
        assert_eq!(c.len(), 1);
    }
}
