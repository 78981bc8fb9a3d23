//! A hashed timer wheel for check deadlines: O(1) to arm, O(expired) to fire, no allocation once warm.
//!
//! Entries are never removed when a check finishes or moves its deadline: the wheel hands back (key,
//! generation) pairs and the reactor ignores the ones that no longer match. That keeps arming a deadline a
//! single `Vec::push` on the hot path.

use std::time::{Duration, Instant};

/// Resolution of deadlines. A check's timeout fires at most one tick late.
pub(crate) const TICK: Duration = Duration::from_millis(5);
/// Slots in the wheel: with a 5 ms tick, 8192 slots cover 41 s, longer than any default deadline, so most
/// entries fire on their first pass.
const SLOTS: usize = 8192;

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: usize,
    generation: u32,
    tick: u64,
}

/// The wheel. Ticks count from `origin`.
pub(crate) struct TimerWheel {
    slots: Vec<Vec<Entry>>,
    origin: Instant,
    /// The next tick not yet processed.
    current: u64,
    len: usize,
}

impl TimerWheel {
    pub(crate) fn new(origin: Instant) -> TimerWheel {
        TimerWheel {
            slots: vec![Vec::new(); SLOTS],
            origin,
            current: 0,
            len: 0,
        }
    }

    fn tick_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        // Round up: a deadline never fires before its instant.
        since.as_nanos().div_ceil(TICK.as_nanos()) as u64
    }

    fn tick_floor(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() / TICK.as_nanos()) as u64
    }

    /// Arms a deadline for `(key, generation)`.
    pub(crate) fn insert(&mut self, key: usize, generation: u32, deadline: Instant) {
        let tick = self.tick_of(deadline).max(self.current);
        self.slots[(tick % SLOTS as u64) as usize].push(Entry { key, generation, tick });
        self.len += 1;
    }

    /// Moves every entry due at `now` into `expired`.
    pub(crate) fn advance(&mut self, now: Instant, expired: &mut Vec<(usize, u32)>) {
        let target = self.tick_floor(now);
        if target < self.current {
            return;
        }
        // After a long stall every slot needs one visit, never more.
        let steps = (target - self.current + 1).min(SLOTS as u64);
        for step in 0..steps {
            let slot = &mut self.slots[((self.current + step) % SLOTS as u64) as usize];
            let before = slot.len();
            slot.retain(|e| {
                if e.tick <= target {
                    expired.push((e.key, e.generation));
                    false
                } else {
                    true
                }
            });
            self.len -= before - slot.len();
        }
        self.current = target + 1;
    }

    /// When the next entry may be due, for the poll timeout. Scans forward to the first occupied slot, at
    /// most one lap.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let first = (0..SLOTS as u64)
            .map(|step| self.current + step)
            .find(|tick| !self.slots[(tick % SLOTS as u64) as usize].is_empty())
            .unwrap_or(self.current);
        let nanos = u64::try_from(TICK.as_nanos()).unwrap_or(u64::MAX).saturating_mul(first);
        Some(self.origin + Duration::from_nanos(nanos))
    }

    /// Entries armed (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_no_earlier_than_deadline() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        wheel.insert(1, 0, t0 + Duration::from_millis(12));
        let mut out = Vec::new();
        wheel.advance(t0 + Duration::from_millis(11), &mut out);
        assert!(out.is_empty());
        wheel.advance(t0 + Duration::from_millis(15), &mut out);
        assert_eq!(out, vec![(1, 0)]);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn deadlines_beyond_one_lap_wait_for_their_lap() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        let lap = TICK * SLOTS as u32;
        wheel.insert(1, 0, t0 + lap + TICK * 3);
        let mut out = Vec::new();
        wheel.advance(t0 + TICK * 5, &mut out);
        assert!(out.is_empty(), "same slot, next lap");
        wheel.advance(t0 + lap + TICK * 3, &mut out);
        assert_eq!(out, vec![(1, 0)]);
    }

    #[test]
    fn long_stall_fires_everything_due_once() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        for i in 0..100 {
            wheel.insert(i, 7, t0 + Duration::from_millis(i as u64 * 300));
        }
        let mut out = Vec::new();
        wheel.advance(t0 + Duration::from_secs(120), &mut out);
        assert_eq!(out.len(), 100);
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn past_deadline_fires_on_next_advance() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        let mut out = Vec::new();
        wheel.advance(t0 + Duration::from_secs(1), &mut out);
        wheel.insert(3, 1, t0);
        assert!(wheel.next_deadline().unwrap() <= t0 + Duration::from_secs(1) + TICK);
        wheel.advance(t0 + Duration::from_secs(1) + TICK, &mut out);
        assert_eq!(out, vec![(3, 1)]);
    }

    #[test]
    fn next_deadline_points_at_first_occupied_tick() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        wheel.insert(1, 0, t0 + Duration::from_millis(50));
        assert_eq!(wheel.next_deadline(), Some(t0 + Duration::from_millis(50)));
    }
}
