//! The lease tables in MySQL: heartbeats, the locked read of every lease, and the writes of one plan, all in
//! one transaction so concurrent hosts are serialised by the row locks. Every time is the database's.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Pool, TxOpts};

use super::plan::{plan, LeasePlan, LeaseRow};
use crate::store::StoreError;

/// What one heartbeat decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Buckets held after it.
    pub owned: BTreeSet<u16>,
    /// Buckets held beyond the fair share.
    pub excess: BTreeSet<u16>,
    /// Live hosts in the fleet (including this one).
    pub hosts: usize,
}

/// One row of `jetmond fleet status`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStatus {
    /// The host.
    pub host: String,
    /// Seconds since its last heartbeat (database clock).
    pub heartbeat_age_sec: f64,
    /// The buckets it holds live leases on.
    pub buckets: Vec<u16>,
}

/// Access to the lease tables for one host.
pub struct LeaseStore {
    pool: Pool,
    server: String,
    host: String,
    range: RangeInclusive<u16>,
    ttl: Duration,
}

impl LeaseStore {
    /// A lease store for `host` over the buckets `range` (rows are created on demand).
    pub fn new(pool: Pool, server: String, host: String, range: RangeInclusive<u16>, ttl: Duration) -> LeaseStore {
        LeaseStore {
            pool,
            server,
            host,
            range,
            ttl,
        }
    }

    fn error(&self, what: &str, e: mysql::Error) -> StoreError {
        StoreError::Database(format!("{what} on {}: {e}", self.server))
    }

    fn ttl_micros(&self) -> u64 {
        u64::try_from(self.ttl.as_micros()).unwrap_or(u64::MAX)
    }

    /// Makes sure a lease row exists for every bucket of the range.
    pub fn ensure_rows(&mut self) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .get_conn()
            .map_err(|e| self.error("connecting for leases", e))?;
        let values: Vec<String> = self.range.clone().map(|b| format!("({b})")).collect();
        conn.query_drop(format!(
            "INSERT IGNORE INTO jetmon_bucket_lease (bucket_no) VALUES {}",
            values.join(",")
        ))
        .map_err(|e| self.error("creating lease rows", e))
    }

    /// Heartbeats, reads every lease under lock, and applies this host's plan. `releasable` are excess
    /// buckets no round of ours uses any more: their leases are given up in the same transaction.
    pub fn heartbeat(&mut self, releasable: &BTreeSet<u16>) -> Result<Heartbeat, StoreError> {
        let ttl = self.ttl_micros();
        let (first, last) = (*self.range.start(), *self.range.end());
        let mut conn = self
            .pool
            .get_conn()
            .map_err(|e| self.error("connecting for leases", e))?;
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .map_err(|e| self.error("starting the lease transaction", e))?;
        tx.exec_drop(
            "INSERT INTO jetmon_fleet_host (host, heartbeat_at, started_at) VALUES (?, NOW(3), NOW(3)) \
             ON DUPLICATE KEY UPDATE heartbeat_at = NOW(3)",
            (&self.host,),
        )
        .map_err(|e| self.error("heartbeating", e))?;
        let hosts: Vec<String> = tx
            .exec(
                "SELECT host FROM jetmon_fleet_host WHERE heartbeat_at > NOW(3) - INTERVAL ? MICROSECOND ORDER BY host",
                (ttl,),
            )
            .map_err(|e| self.error("reading live hosts", e))?;
        let rows: Vec<(u16, Option<String>, Option<i64>)> = tx
            .exec(
                "SELECT bucket_no, owner, expires_at > NOW(3) FROM jetmon_bucket_lease \
                 WHERE bucket_no BETWEEN ? AND ? ORDER BY bucket_no FOR UPDATE",
                (first, last),
            )
            .map_err(|e| self.error("reading leases", e))?;
        let rows: Vec<LeaseRow> = rows
            .into_iter()
            .map(|(bucket, owner, live)| LeaseRow {
                bucket,
                owner,
                live: live.unwrap_or(0) != 0,
            })
            .collect();
        let LeasePlan { keep, claim, excess } = plan(&self.host, &hosts, &rows);
        let release: BTreeSet<u16> = excess.intersection(releasable).copied().collect();
        let hold: Vec<u16> = keep
            .iter()
            .chain(&claim)
            .filter(|b| !release.contains(b))
            .copied()
            .collect();
        if !hold.is_empty() {
            tx.exec_drop(
                format!(
                    "UPDATE jetmon_bucket_lease SET epoch = epoch + (owner IS NULL OR owner <> ?), owner = ?, \
                     expires_at = NOW(3) + INTERVAL ? MICROSECOND WHERE bucket_no IN ({})",
                    join(&hold)
                ),
                (&self.host, &self.host, ttl),
            )
            .map_err(|e| self.error("writing leases", e))?;
        }
        if !release.is_empty() {
            tx.exec_drop(
                format!(
                    "UPDATE jetmon_bucket_lease SET owner = NULL, expires_at = NULL WHERE owner = ? AND bucket_no IN ({})",
                    join(&release.iter().copied().collect::<Vec<_>>())
                ),
                (&self.host,),
            )
            .map_err(|e| self.error("releasing leases", e))?;
        }
        tx.commit().map_err(|e| self.error("committing leases", e))?;
        Ok(Heartbeat {
            owned: hold.into_iter().collect(),
            excess: excess.difference(&release).copied().collect(),
            hosts: hosts.len(),
        })
    }

    /// Clean shutdown: gives every lease up and leaves the fleet, so the others take over at once.
    pub fn leave(&mut self) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .get_conn()
            .map_err(|e| self.error("connecting for leases", e))?;
        conn.exec_drop(
            "UPDATE jetmon_bucket_lease SET owner = NULL, expires_at = NULL WHERE owner = ?",
            (&self.host,),
        )
        .map_err(|e| self.error("releasing leases", e))?;
        conn.exec_drop("DELETE FROM jetmon_fleet_host WHERE host = ?", (&self.host,))
            .map_err(|e| self.error("leaving the fleet", e))
    }

    /// Every host with its live buckets, for `jetmond fleet status`.
    pub fn status(&mut self) -> Result<Vec<HostStatus>, StoreError> {
        let mut conn = self
            .pool
            .get_conn()
            .map_err(|e| self.error("connecting for leases", e))?;
        let hosts: Vec<(String, f64)> = conn
            .query("SELECT host, TIMESTAMPDIFF(MICROSECOND, heartbeat_at, NOW(3)) / 1e6 FROM jetmon_fleet_host ORDER BY host")
            .map_err(|e| self.error("reading hosts", e))?;
        let leases: Vec<(u16, String)> = conn
            .query("SELECT bucket_no, owner FROM jetmon_bucket_lease WHERE owner IS NOT NULL AND expires_at > NOW(3) ORDER BY bucket_no")
            .map_err(|e| self.error("reading leases", e))?;
        Ok(hosts
            .into_iter()
            .map(|(host, age)| HostStatus {
                buckets: leases.iter().filter(|(_, o)| *o == host).map(|(b, _)| *b).collect(),
                host,
                heartbeat_age_sec: age,
            })
            .collect())
    }
}

fn join(buckets: &[u16]) -> String {
    buckets.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

/// `0-9,12,20-29`: buckets as ranges, for logs and `fleet status`.
pub fn ranges(buckets: &[u16]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = buckets.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end.wrapping_add(1))) {
            end = iter.next().unwrap_or(end);
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress_runs() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges(&[]), "");
    }
}
