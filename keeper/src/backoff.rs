//! One error tracker for the decision loop: a failure backs off what it locked, per lock
//! and per kind of failure, exponentially; a success clears the lock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::exec::FailKind;
use crate::runner::Lock;

/// The longest a lock is held back after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    until: Instant,
}

/// Failures by lock and kind.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<Lock, HashMap<FailKind, Entry>>,
}

/// The first delay after a failure of `kind`, doubled at each further failure of the same
/// kind on the same lock: a transport error clears quickly, a program error (the state
/// must change first) and a message that cannot be built less so.
pub fn base_delay(kind: &FailKind) -> Duration {
    match kind {
        FailKind::Rpc => Duration::from_millis(500),
        FailKind::Program(_) | FailKind::Transaction => Duration::from_secs(2),
        FailKind::Build => Duration::from_secs(10),
    }
}

impl Backoff {
    /// Records a failure of `kind` on each of `locks` at `now`; returns the delay.
    pub fn fail(&mut self, locks: &[Lock], kind: &FailKind, now: Instant) -> Duration {
        let mut delay = Duration::ZERO;
        for lock in locks {
            let e = self
                .entries
                .entry(*lock)
                .or_default()
                .entry(kind.clone())
                .or_insert(Entry {
                    failures: 0,
                    until: now,
                });
            e.failures = e.failures.saturating_add(1);
            let d = base_delay(kind)
                .saturating_mul(1u32 << (e.failures - 1).min(16))
                .min(MAX_BACKOFF);
            e.until = now + d;
            delay = delay.max(d);
        }
        delay
    }

    /// A success on `locks`: every kind of failure on them is forgotten.
    pub fn succeed(&mut self, locks: &[Lock]) {
        for lock in locks {
            self.entries.remove(lock);
        }
    }

    /// Whether `lock` is held back at `now` by any kind of failure.
    pub fn blocked(&self, lock: &Lock, now: Instant) -> bool {
        self.entries
            .get(lock)
            .is_some_and(|kinds| kinds.values().any(|e| e.until > now))
    }

    /// Consecutive failures of `kind` on `lock`.
    pub fn failures(&self, lock: &Lock, kind: &FailKind) -> u32 {
        self.entries
            .get(lock)
            .and_then(|k| k.get(kind))
            .map_or(0, |e| e.failures)
    }

    /// Drops locks whose every backoff ended more than `MAX_BACKOFF` before `now` (a lock
    /// that failed long ago starts afresh), so the tracker stays as small as what failed
    /// recently.
    pub fn prune(&mut self, now: Instant) {
        self.entries
            .retain(|_, kinds| kinds.values().any(|e| e.until + MAX_BACKOFF > now));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::prelude::Pubkey;

    #[test]
    fn backoff_is_per_lock_and_kind_and_a_success_clears_it() {
        let mut b = Backoff::default();
        let t = Instant::now();
        let a = Lock::Account(Pubkey::new_unique());
        let other = Lock::Account(Pubkey::new_unique());
        let margin = FailKind::Program("InsufficientMargin".into());
        // Exponential per kind, capped.
        assert_eq!(b.fail(&[a], &margin, t), Duration::from_secs(2));
        assert_eq!(b.fail(&[a], &margin, t), Duration::from_secs(4));
        assert_eq!(b.fail(&[a], &margin, t), Duration::from_secs(8));
        // Another kind on the same lock starts at its own base.
        assert_eq!(b.fail(&[a], &FailKind::Rpc, t), Duration::from_millis(500));
        assert_eq!(b.failures(&a, &margin), 3);
        assert_eq!(b.failures(&a, &FailKind::Rpc), 1);
        for _ in 0..40 {
            b.fail(&[a], &margin, t);
        }
        assert_eq!(b.fail(&[a], &margin, t), MAX_BACKOFF);
        // Blocked while any kind's delay runs; other locks are not.
        assert!(b.blocked(&a, t + Duration::from_secs(59)));
        assert!(!b.blocked(&a, t + Duration::from_secs(61)));
        assert!(!b.blocked(&other, t));
        // A success forgets every kind.
        b.succeed(&[a]);
        assert!(!b.blocked(&a, t));
        assert_eq!(b.failures(&a, &margin), 0);
        // Pruning keeps only recent failures.
        b.fail(&[a, other, Lock::Epoch], &FailKind::Build, t);
        assert_eq!(b.len(), 3);
        b.prune(t + Duration::from_secs(30));
        assert_eq!(b.len(), 3);
        b.prune(t + Duration::from_secs(71));
        assert!(b.is_empty());
    }
}
