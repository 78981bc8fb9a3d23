//! Caps concurrent connections per destination IP. Shared hosting puts thousands of monitored sites on one
//! address; without a cap a round would open thousands of connections to it at once and look like an attack.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// A check waiting for a connection slot: its slab key and generation.
pub(crate) type Waiter = (usize, u32);

#[derive(Default)]
struct Destination {
    active: usize,
    waiting: VecDeque<Waiter>,
}

/// Per-thread counts of open connections by destination.
pub(crate) struct IpGate {
    limit: usize,
    destinations: HashMap<IpAddr, Destination>,
}

impl IpGate {
    /// `limit` 0 disables the gate.
    pub(crate) fn new(limit: usize) -> IpGate {
        IpGate {
            limit,
            destinations: HashMap::new(),
        }
    }

    /// Takes a slot for `ip`, or queues `waiter` and returns false.
    pub(crate) fn acquire(&mut self, ip: IpAddr, waiter: Waiter) -> bool {
        if self.limit == 0 {
            return true;
        }
        let dest = self.destinations.entry(ip).or_default();
        if dest.active < self.limit {
            dest.active += 1;
            true
        } else {
            dest.waiting.push_back(waiter);
            false
        }
    }

    /// Gives back a slot for `ip`; returns the next waiter, which now holds the slot. The waiter may be stale
    /// (its check timed out meanwhile): the caller then releases again.
    pub(crate) fn release(&mut self, ip: IpAddr) -> Option<Waiter> {
        if self.limit == 0 {
            return None;
        }
        let dest = self.destinations.get_mut(&ip)?;
        if let Some(next) = dest.waiting.pop_front() {
            return Some(next);
        }
        dest.active = dest.active.saturating_sub(1);
        if dest.active == 0 {
            self.destinations.remove(&ip);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_queues_then_hands_over_in_order() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut gate = IpGate::new(1);
        assert!(gate.acquire(ip, (1, 0)));
        assert!(!gate.acquire(ip, (2, 0)));
        assert!(!gate.acquire(ip, (3, 0)));
        assert_eq!(gate.release(ip), Some((2, 0)));
        assert_eq!(gate.release(ip), Some((3, 0)));
        assert_eq!(gate.release(ip), None);
        assert!(gate.destinations.is_empty(), "idle destinations are forgotten");
        assert!(gate.acquire(ip, (4, 0)));
    }

    #[test]
    fn zero_limit_never_queues() {
        let ip: IpAddr = "::1".parse().unwrap();
        let mut gate = IpGate::new(0);
        for i in 0..1000 {
            assert!(gate.acquire(ip, (i, 0)));
        }
        assert_eq!(gate.release(ip), None);
    }
}
