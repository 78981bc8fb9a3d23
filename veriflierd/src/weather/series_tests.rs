//! The detector over recorded failure-rate series: each series lists, per 5-second bucket, how many checks
//! ended and how many of them failed (and how), as a monitor with ~24,000 checks a minute sees them.

use std::time::{Duration, Instant};

use super::*;

const BUCKET: Duration = Duration::from_secs(5);
/// Checks per 5 s bucket: ~24,000 a minute.
const CHECKS_PER_BUCKET: u64 = 2_000;
const QUIET_RATIO: f64 = 0.03;

/// One bucket of a series.
#[derive(Debug, Clone, Copy)]
struct Step {
    checks: u64,
    failed: u64,
    class: FailureClass,
}

fn steps(count: usize, failure_ratio: f64, class: FailureClass) -> Vec<Step> {
    let failed = (CHECKS_PER_BUCKET as f64 * failure_ratio).round() as u64;
    vec![
        Step {
            checks: CHECKS_PER_BUCKET,
            failed,
            class,
        };
        count
    ]
}

fn quiet(count: usize) -> Vec<Step> {
    steps(count, QUIET_RATIO, FailureClass::Timeout)
}

/// Plays a series from bucket `first` on, spreading each bucket's checks (failures interleaved evenly) over
/// its 5 s and evaluating every 20 checks. Returns the changes with the bucket number they happened in.
struct Player {
    detector: Detector,
    start: Instant,
    bucket: u64,
    changes: Vec<(u64, WeatherChange)>,
}

impl Player {
    fn new(settings: WeatherSettings) -> Player {
        let start = Instant::now();
        Player {
            detector: Detector::new(settings, start),
            start,
            bucket: 0,
            changes: Vec::new(),
        }
    }

    fn now(&self, offset: Duration) -> Instant {
        self.start + BUCKET * (self.bucket as u32) + offset
    }

    fn play(&mut self, series: &[Step]) -> &mut Player {
        for step in series {
            let mut failed_so_far = 0;
            for i in 0..step.checks {
                let at = self.now(BUCKET.mul_f64(i as f64 / step.checks.max(1) as f64));
                // Bresenham: failures spread evenly through the bucket.
                let due = (i + 1) * step.failed / step.checks.max(1);
                let observation = if due > failed_so_far {
                    failed_so_far += 1;
                    Observation::Failed(step.class)
                } else {
                    Observation::Reached
                };
                self.detector.observe(at, observation);
                if i % 20 == 19 {
                    self.evaluate(at);
                }
            }
            let end = self.now(BUCKET - Duration::from_millis(1));
            self.evaluate(end);
            self.bucket += 1;
        }
        self
    }

    fn canary_round(&mut self, canaries: usize, ok: bool) -> &mut Player {
        let at = self.now(Duration::ZERO);
        for canary in 0..canaries {
            self.detector.observe_canary(at, canary, ok);
        }
        self.evaluate(at);
        self.bucket += 1;
        self
    }

    fn evaluate(&mut self, at: Instant) {
        if let Some(change) = self.detector.evaluate(at) {
            self.changes.push((self.bucket, change));
        }
    }

    fn entered(&self) -> Vec<(u64, &DegradedReason)> {
        self.changes
            .iter()
            .filter_map(|(bucket, change)| match change {
                WeatherChange::Entered(reason) => Some((*bucket, reason)),
                WeatherChange::Left { .. } => None,
            })
            .collect()
    }

    fn left(&self) -> Vec<u64> {
        self.changes
            .iter()
            .filter(|(_, change)| matches!(change, WeatherChange::Left { .. }))
            .map(|(bucket, _)| *bucket)
            .collect()
    }
}

/// An hour of quiet traffic.
fn warmed_up() -> Player {
    let mut player = Player::new(WeatherSettings::default());
    player.play(&quiet(720));
    player
}

#[test]
fn quiet_hour_learns_its_baseline_and_stays_clear() {
    let player = warmed_up();
    assert!(player.changes.is_empty(), "{:?}", player.changes);
    let baseline = player.detector.baseline();
    assert!((baseline - QUIET_RATIO).abs() < 0.005, "baseline {baseline}");
    assert!(
        (player.detector.threshold() - 0.5).abs() < 1e-9,
        "max(0.5, 3 × 0.03 + 0.1)"
    );
}

#[test]
fn real_outage_of_a_few_sites_does_not_trip() {
    let mut player = warmed_up();
    // A hosting provider with 12 % of the sites goes dark for ten minutes: refused and timeouts, and their
    // re-checks double their share of the traffic.
    player.play(&steps(120, 0.03 + 0.24, FailureClass::Refused));
    player.play(&steps(60, 0.27, FailureClass::Timeout));
    assert!(player.changes.is_empty(), "{:?}", player.changes);
    assert!(!player.detector.is_degraded());
}

#[test]
fn link_loss_trips_within_a_bucket_and_recovery_leaves_after_the_hold() {
    let mut player = warmed_up();
    let lost_at = player.bucket;
    player.play(&steps(24, 1.0, FailureClass::Connect));
    let entered = player.entered();
    assert_eq!(entered.len(), 1, "{:?}", player.changes);
    let (bucket, reason) = entered[0];
    assert_eq!(bucket, lost_at, "the first bucket of the loss trips it");
    assert!(
        matches!(
            reason,
            DegradedReason::FailureSpike {
                dominant: Some(FailureClass::Connect),
                ..
            }
        ),
        "{reason}"
    );
    let back_at = player.bucket;
    player.play(&quiet(40));
    let left = player.left();
    assert_eq!(left.len(), 1, "{:?}", player.changes);
    // The hold is 60 s (12 buckets) from the first healthy evaluation.
    let buckets_after = left[0] - back_at;
    assert!(
        (12..=14).contains(&buckets_after),
        "left {buckets_after} buckets after the link came back"
    );
    // The outage was not learned as normal.
    assert!(
        player.detector.baseline() < 0.05,
        "baseline {}",
        player.detector.baseline()
    );
}

#[test]
fn short_dip_during_recovery_restarts_the_hold() {
    let mut player = warmed_up();
    player.play(&steps(4, 1.0, FailureClass::Timeout));
    player.play(&quiet(6));
    player.play(&steps(1, 1.0, FailureClass::Timeout));
    let back_at = player.bucket;
    player.play(&quiet(30));
    let left = player.left();
    assert_eq!(left.len(), 1, "{:?}", player.changes);
    assert!(left[0] - back_at >= 12, "the hold counts from after the dip");
    assert_eq!(player.entered().len(), 1, "one episode, not two");
}

#[test]
fn hovering_at_the_threshold_does_not_flap() {
    let mut player = warmed_up();
    let mut series = Vec::new();
    for _ in 0..60 {
        series.extend(steps(1, 0.45, FailureClass::Timeout));
        series.extend(steps(1, 0.55, FailureClass::Timeout));
    }
    player.play(&series);
    assert_eq!(player.entered().len(), 1, "{:?}", player.changes);
    assert!(
        player.left().is_empty(),
        "stays degraded while hovering: {:?}",
        player.changes
    );
}

#[test]
fn steady_ratio_below_the_threshold_never_trips() {
    let mut player = warmed_up();
    player.play(&steps(120, 0.45, FailureClass::Timeout));
    assert!(player.changes.is_empty(), "{:?}", player.changes);
}

#[test]
fn few_checks_cannot_decide() {
    let mut player = Player::new(WeatherSettings::default());
    player.play(&[Step {
        checks: 40,
        failed: 40,
        class: FailureClass::Timeout,
    }]);
    assert!(player.changes.is_empty(), "40 checks are fewer than min_samples");
}

#[test]
fn every_canary_failing_trips_and_one_answering_leaves_after_the_hold() {
    let settings = WeatherSettings {
        canaries: 2,
        min_samples: 0,
        ..WeatherSettings::default()
    };
    let mut player = Player::new(settings);
    player.canary_round(2, false).canary_round(2, false);
    assert!(player.changes.is_empty(), "two failures are not three");
    player.canary_round(2, false);
    assert!(matches!(
        player.entered().as_slice(),
        [(
            2,
            DegradedReason::CanariesDown {
                canaries: 2,
                consecutive_failures: 3
            }
        )]
    ));
    // One canary answers again; the other stays down (it may really be down).
    for _ in 0..14 {
        let at = player.now(Duration::ZERO);
        player.detector.observe_canary(at, 0, true);
        player.detector.observe_canary(at, 1, false);
        player.evaluate(at);
        player.bucket += 1;
    }
    assert_eq!(player.left(), vec![15], "{:?}", player.changes);
}

#[test]
fn one_canary_down_is_that_canarys_problem() {
    let settings = WeatherSettings {
        canaries: 2,
        ..WeatherSettings::default()
    };
    let mut player = Player::new(settings);
    for _ in 0..10 {
        let at = player.now(Duration::ZERO);
        player.detector.observe_canary(at, 0, false);
        player.detector.observe_canary(at, 1, true);
        player.evaluate(at);
        player.bucket += 1;
    }
    assert!(player.changes.is_empty());
}

#[test]
fn dead_resolver_is_its_own_reason_and_nxdomain_is_not() {
    let mut player = warmed_up();
    player.play(&steps(12, 0.40, FailureClass::Dns));
    assert!(player.changes.is_empty(), "sites' NXDOMAIN: {:?}", player.changes);
    player.play(&steps(3, 0.30, FailureClass::DnsUnavailable));
    assert!(
        matches!(player.entered().as_slice(), [(_, DegradedReason::ResolverDown { .. })]),
        "{:?}",
        player.changes
    );
}

#[test]
fn a_few_sites_with_broken_name_servers_do_not_look_like_a_dead_resolver() {
    let mut player = warmed_up();
    // 1 % of the checks end as dns_unavailable: sites whose own name servers fail (SERVFAIL).
    player.play(&steps(120, 0.01, FailureClass::DnsUnavailable));
    assert!(player.changes.is_empty(), "{:?}", player.changes);
}
