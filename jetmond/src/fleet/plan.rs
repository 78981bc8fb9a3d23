//! The pure part of bucket leasing: given who is alive and who holds what, what should this host renew,
//! claim and give up. Every host runs the same rule, so the fleet converges on equal shares without talking
//! to each other beyond the lease table.

use std::collections::BTreeSet;

/// One lease row as read (under lock) from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The bucket.
    pub bucket: u16,
    /// The host holding it, if any.
    pub owner: Option<String>,
    /// Whether the lease has not expired (by the database's clock).
    pub live: bool,
}

/// What one host should do with the leases this heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeasePlan {
    /// Buckets to keep (renew the lease).
    pub keep: BTreeSet<u16>,
    /// Free or expired buckets to take.
    pub claim: BTreeSet<u16>,
    /// Buckets held beyond the fair share: to be given up once no round of ours uses them any more.
    pub excess: BTreeSet<u16>,
}

/// This host's fair share of `total` buckets among `hosts` (sorted, containing `me`): equal shares, the
/// first `total % n` hosts by name taking one more.
pub fn fair_share(me: &str, hosts: &[String], total: usize) -> usize {
    let n = hosts.len().max(1);
    let index = hosts.iter().position(|h| h == me).unwrap_or(n - 1);
    total / n + usize::from(index < total % n)
}

/// Plans one heartbeat of host `me`. `hosts` are the live hosts (sorted, `me` included).
pub fn plan(me: &str, hosts: &[String], rows: &[LeaseRow]) -> LeasePlan {
    let target = fair_share(me, hosts, rows.len());
    // A lease of ours that expired but nobody took is still ours to renew: the buckets were not checked by
    // anyone else in between.
    let mine: Vec<u16> = rows
        .iter()
        .filter(|r| r.owner.as_deref() == Some(me))
        .map(|r| r.bucket)
        .collect();
    let mut plan = LeasePlan::default();
    if mine.len() > target {
        // Give up the highest numbers: deterministic, so shares stay stable across heartbeats.
        let (keep, excess) = mine.split_at(target);
        plan.keep.extend(keep.iter().copied());
        plan.excess.extend(excess.iter().copied());
        // Excess leases are still renewed until given up, so nobody takes them while a round uses them.
        plan.keep.extend(excess.iter().copied());
        return plan;
    }
    plan.keep.extend(mine.iter().copied());
    let wanted = target - mine.len();
    plan.claim.extend(
        rows.iter()
            .filter(|r| r.owner.is_none() || !r.live)
            .filter(|r| r.owner.as_deref() != Some(me))
            .map(|r| r.bucket)
            .take(wanted),
    );
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shares_are_equal_to_within_one() {
        let h = hosts(&["a", "b", "c"]);
        let shares: Vec<usize> = h.iter().map(|me| fair_share(me, &h, 512)).collect();
        assert_eq!(shares, vec![171, 171, 170]);
        assert_eq!(shares.iter().sum::<usize>(), 512);
    }

    #[test]
    fn a_lone_host_claims_everything_free() {
        let rows: Vec<LeaseRow> = (0..8)
            .map(|b| LeaseRow {
                bucket: b,
                owner: None,
                live: false,
            })
            .collect();
        let p = plan("a", &hosts(&["a"]), &rows);
        assert_eq!(p.claim.len(), 8);
        assert!(p.excess.is_empty());
    }

    #[test]
    fn live_leases_of_others_are_never_claimed() {
        let rows = vec![
            LeaseRow {
                bucket: 0,
                owner: Some("b".into()),
                live: true,
            },
            LeaseRow {
                bucket: 1,
                owner: Some("b".into()),
                live: false,
            },
            LeaseRow {
                bucket: 2,
                owner: None,
                live: false,
            },
        ];
        let p = plan("a", &hosts(&["a"]), &rows);
        assert_eq!(p.claim, BTreeSet::from([1, 2]));
    }

    #[test]
    fn a_host_over_its_share_marks_the_highest_as_excess_and_keeps_renewing_them() {
        let rows: Vec<LeaseRow> = (0..4)
            .map(|b| LeaseRow {
                bucket: b,
                owner: Some("a".into()),
                live: true,
            })
            .collect();
        let p = plan("a", &hosts(&["a", "b"]), &rows);
        assert_eq!(p.excess, BTreeSet::from([2, 3]));
        assert_eq!(p.keep, BTreeSet::from([0, 1, 2, 3]));
        assert!(p.claim.is_empty());
    }

    /// A fleet simulated over thousands of steps: hosts join, crash (their leases expire), leave cleanly
    /// (they give everything up), and each step one host heartbeats. Invariants: a bucket never has two
    /// live owners; after a quiet spell every bucket is owned and shares differ by at most one.
    #[test]
    fn simulated_fleet_never_double_owns_and_converges() {
        const BUCKETS: u16 = 64;
        const TTL: u64 = 5;
        // Deterministic pseudo-random steps (xorshift), so a failure is reproducible.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // bucket -> (owner, expires_at)
        let mut table: BTreeMap<u16, (Option<String>, u64)> = (0..BUCKETS).map(|b| (b, (None, 0))).collect();
        let mut heartbeat: HashMap<String, u64> = HashMap::new();
        let mut alive: BTreeSet<String> = BTreeSet::new();
        let names: Vec<String> = (0..6).map(|i| format!("host-{i}")).collect();
        for now in 1..6000u64 {
            let quiet = now % 1000 > 700; // the last 300 steps of each 1000 change nothing in the fleet
            if !quiet {
                match rand(20) {
                    0 => {
                        alive.insert(names[rand(names.len() as u64) as usize].clone());
                    }
                    1 if alive.len() > 1 => {
                        // Crash: stops heartbeating, leases expire by themselves.
                        let victim = alive.iter().nth(rand(alive.len() as u64) as usize).cloned().unwrap();
                        alive.remove(&victim);
                    }
                    2 if alive.len() > 1 => {
                        // Clean leave: gives everything up.
                        let leaver = alive.iter().nth(rand(alive.len() as u64) as usize).cloned().unwrap();
                        alive.remove(&leaver);
                        for (owner, _) in table.values_mut() {
                            if owner.as_deref() == Some(leaver.as_str()) {
                                *owner = None;
                            }
                        }
                        heartbeat.remove(&leaver);
                    }
                    _ => {}
                }
            }
            if alive.is_empty() {
                alive.insert(names[0].clone());
            }
            let me = alive.iter().nth(rand(alive.len() as u64) as usize).cloned().unwrap();
            heartbeat.insert(me.clone(), now);
            let live_hosts: Vec<String> = heartbeat
                .iter()
                .filter(|(_, at)| now.saturating_sub(**at) < TTL * 4)
                .map(|(h, _)| h.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let rows: Vec<LeaseRow> = table
                .iter()
                .map(|(b, (owner, exp))| LeaseRow {
                    bucket: *b,
                    owner: owner.clone(),
                    live: *exp > now,
                })
                .collect();
            let p = plan(&me, &live_hosts, &rows);
            for b in p.keep.iter().chain(&p.claim) {
                table.insert(*b, (Some(me.clone()), now + TTL * 4));
            }
            // Rounds drain at once in this model: excess is given up right away.
            for b in &p.excess {
                table.insert(*b, (None, 0));
            }
            // Invariant: a live lease has exactly one owner (the table holds one) and claims only took free
            // or expired rows.
            for b in &p.claim {
                let before = rows.iter().find(|r| r.bucket == *b).unwrap();
                assert!(
                    before.owner.is_none() || !before.live,
                    "step {now}: {me} claimed live bucket {b}"
                );
            }
            if now % 1000 == 999 {
                let live_owners: Vec<String> = table
                    .values()
                    .filter(|(o, exp)| o.is_some() && *exp > now)
                    .filter_map(|(o, _)| o.clone())
                    .collect();
                assert_eq!(
                    live_owners.len(),
                    BUCKETS as usize,
                    "step {now}: every bucket owned after a quiet spell"
                );
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for o in live_owners {
                    *counts.entry(o).or_default() += 1;
                }
                let (min, max) = (counts.values().min().unwrap(), counts.values().max().unwrap());
                assert!(max - min <= 1, "step {now}: shares {counts:?}");
            }
        }
    }
}
