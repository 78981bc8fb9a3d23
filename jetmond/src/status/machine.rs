//! The transitions: per-site state and what each event does to it.

use std::collections::{BTreeSet, HashMap};

use super::{
    Action, BlogId, CheckEntry, CheckOutcome, CheckType, Event, IgnoredAnswer, LocalCheck, MachineConfig, Notification,
    SiteStatus, UnixMillis, VeriflierAnswer, VeriflierUnavailable,
};

/// A failed local check kept while the machine decides whether the site is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCheckRecord {
    /// The monitor host that made it.
    pub host: String,
    /// When it finished.
    pub at: UnixMillis,
    /// What it found.
    pub outcome: CheckOutcome,
}

/// A veriflier's answer kept until the request is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeriflierRecord {
    /// The veriflier's name.
    pub veriflier: String,
    /// When the answer arrived.
    pub at: UnixMillis,
    /// What it found.
    pub outcome: CheckOutcome,
}

/// A pending request to the verifliers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeriflierRequest {
    /// When the verifliers were asked; the request expires `timeout_for_requests` after this.
    pub sent_at: UnixMillis,
    /// The local failures that led to the request, reported in the notification.
    pub local_failures: Vec<LocalCheckRecord>,
    /// Answers so far, one per veriflier, in arrival order.
    pub answers: Vec<VeriflierRecord>,
    /// Verifliers that reported they cannot answer.
    pub unavailable: Vec<String>,
}

impl VeriflierRequest {
    fn has_heard_from(&self, veriflier: &str) -> bool {
        self.answers.iter().any(|answer| answer.veriflier == veriflier)
            || self.unavailable.iter().any(|name| name == veriflier)
    }

    fn offline(&self) -> usize {
        self.answers.iter().filter(|answer| !answer.outcome.up).count()
    }

    fn online(&self) -> usize {
        self.answers.len() - self.offline()
    }
}

/// Where a RUNNING site stands on the way to a DOWN decision. Sites in any other status are always
/// [`Phase::Normal`]: only RUNNING → DOWN needs confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing pending.
    #[default]
    Normal,
    /// Local checks failed (fewer than `num_of_checks` so far); a re-check is scheduled.
    Rechecking {
        /// The failed checks, oldest first.
        failures: Vec<LocalCheckRecord>,
    },
    /// The local re-checks all failed; the verifliers were asked.
    AwaitingVerifliers(VeriflierRequest),
}

/// What the machine knows about one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteState {
    monitor_url: String,
    status: SiteStatus,
    last_status_change: Option<UnixMillis>,
    phase: Phase,
}

impl SiteState {
    /// The URL being checked.
    pub fn monitor_url(&self) -> &str {
        &self.monitor_url
    }

    /// The current status.
    pub fn status(&self) -> SiteStatus {
        self.status
    }

    /// When the status last changed; `None` when unknown (a NULL `last_status_change` in the database).
    pub fn last_status_change(&self) -> Option<UnixMillis> {
        self.last_status_change
    }

    /// What is pending for the site.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }
}

/// The status machine for all sites this host monitors.
///
/// Deterministic: the same events in the same order give the same actions. It holds no clock, no
/// sockets and no database handle; see the [module docs](super) for the rules.
#[derive(Debug, Clone)]
pub struct StatusMachine {
    config: MachineConfig,
    sites: HashMap<BlogId, SiteState>,
    /// Pending veriflier requests ordered by age, so a [`Event::Tick`] only looks at expired ones
    /// instead of walking every site.
    awaiting: BTreeSet<(UnixMillis, BlogId)>,
}

impl StatusMachine {
    /// A machine that tracks no site yet.
    pub fn new(config: MachineConfig) -> Self {
        StatusMachine {
            config,
            sites: HashMap::new(),
            awaiting: BTreeSet::new(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// Replaces the settings (SIGHUP). Sites keep their state; the new limits apply from the next event on,
    /// so a site part-way through its re-checks finishes them under the new `num_of_checks`.
    pub fn set_config(&mut self, config: MachineConfig) {
        self.config = config;
    }

    /// Starts tracking a site with the status stored for it (database row or state file). Returns
    /// `false` and changes nothing if the site is already tracked: from then on the machine's own state
    /// is newer than any store.
    ///
    /// A site first seen in a [`LocalCheck`] without this call is tracked as RUNNING with an unknown
    /// last status change.
    pub fn track(
        &mut self,
        blog_id: BlogId,
        monitor_url: impl Into<String>,
        status: SiteStatus,
        last_status_change: Option<UnixMillis>,
    ) -> bool {
        if self.sites.contains_key(&blog_id) {
            return false;
        }
        self.sites.insert(
            blog_id,
            SiteState {
                monitor_url: monitor_url.into(),
                status,
                last_status_change,
                phase: Phase::Normal,
            },
        );
        true
    }

    /// Stops tracking a site (removed or deactivated), dropping anything pending for it.
    pub fn forget(&mut self, blog_id: BlogId) -> Option<SiteState> {
        let state = self.sites.remove(&blog_id)?;
        if let Phase::AwaitingVerifliers(request) = &state.phase {
            self.awaiting.remove(&(request.sent_at, blog_id));
        }
        Some(state)
    }

    /// What the machine knows about a site.
    pub fn site(&self, blog_id: BlogId) -> Option<&SiteState> {
        self.sites.get(&blog_id)
    }

    /// How many sites are tracked.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// Whether no site is tracked.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// Applies one event and returns what the caller must do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::LocalCheck(check) => self.on_local_check(check, &mut actions),
            Event::VeriflierAnswer(answer) => self.on_veriflier_answer(answer, &mut actions),
            Event::VeriflierUnavailable(report) => self.on_veriflier_unavailable(report, &mut actions),
            Event::Tick { now } => self.on_tick(now, &mut actions),
        }
        actions
    }

    /// Whether the verifliers take part in decisions at all.
    fn verifliers_decide(&self) -> bool {
        !self.config.verifliers.is_empty() && self.config.peer_offline_limit > 0
    }

    fn on_local_check(&mut self, check: LocalCheck, actions: &mut Vec<Action>) {
        let LocalCheck {
            blog_id,
            monitor_url,
            host,
            at,
            outcome,
        } = check;
        let site = self.sites.entry(blog_id).or_insert_with(|| SiteState {
            monitor_url: monitor_url.clone(),
            status: SiteStatus::Running,
            last_status_change: None,
            phase: Phase::Normal,
        });

        if site.monitor_url != monitor_url {
            let dropped_failures = match std::mem::take(&mut site.phase) {
                Phase::Normal => 0,
                Phase::Rechecking { failures } => failures.len(),
                Phase::AwaitingVerifliers(request) => {
                    self.awaiting.remove(&(request.sent_at, blog_id));
                    request.local_failures.len()
                }
            };
            let previous_url = std::mem::replace(&mut site.monitor_url, monitor_url);
            actions.push(Action::UrlChanged {
                blog_id,
                previous_url,
                dropped_failures,
            });
        }

        let record = LocalCheckRecord { host, at, outcome };
        match (site.status, record.outcome.up) {
            (SiteStatus::Running, true) => {
                let failed_checks = match std::mem::take(&mut site.phase) {
                    Phase::Normal => return,
                    Phase::Rechecking { failures } => failures.len(),
                    Phase::AwaitingVerifliers(request) => {
                        self.awaiting.remove(&(request.sent_at, blog_id));
                        request.local_failures.len()
                    }
                };
                actions.push(Action::Recovered { blog_id, failed_checks });
            }
            (SiteStatus::Running, false) => self.on_running_site_failed(blog_id, record, actions),
            (SiteStatus::Down | SiteStatus::ConfirmedDown, true) => {
                let checks = vec![CheckEntry::new(CheckType::Local, &record.host, &record.outcome)];
                change_status(blog_id, site, SiteStatus::Running, at, at, checks, actions);
            }
            (SiteStatus::Down, false) => {
                // An unknown last change (NULL in the database) counts as long ago, as in the original,
                // where `new Date(null)` is the epoch.
                let down_for = at.saturating_duration_since(site.last_status_change.unwrap_or(UnixMillis::EPOCH));
                if down_for > self.config.time_between_notices {
                    let checks = vec![CheckEntry::new(CheckType::Local, &record.host, &record.outcome)];
                    change_status(blog_id, site, SiteStatus::ConfirmedDown, at, at, checks, actions);
                }
            }
            // Already confirmed: nothing more to say until it comes back.
            (SiteStatus::ConfirmedDown, false) => {}
        }
    }

    fn on_running_site_failed(&mut self, blog_id: BlogId, record: LocalCheckRecord, actions: &mut Vec<Action>) {
        let verifliers_decide = self.verifliers_decide();
        let Some(site) = self.sites.get_mut(&blog_id) else {
            return;
        };
        let mut failures = match std::mem::take(&mut site.phase) {
            Phase::Normal => Vec::new(),
            Phase::Rechecking { failures } => failures,
            // The verifliers are the judge now; another local failure adds nothing.
            phase @ Phase::AwaitingVerifliers(_) => {
                site.phase = phase;
                return;
            }
        };
        if let Some(previous) = failures.last() {
            // A failure too soon after the previous one (e.g. a round's check landing between
            // re-checks) does not count: the spacing is what makes the re-checks meaningful. The
            // scheduled re-check is still pending.
            if record.at < previous.at.saturating_add(self.config.time_between_checks) {
                site.phase = Phase::Rechecking { failures };
                return;
            }
        }
        let at = record.at;
        failures.push(record);
        if failures.len() < self.config.num_of_checks as usize {
            site.phase = Phase::Rechecking { failures };
            actions.push(Action::ScheduleRecheck {
                blog_id,
                not_before: at.saturating_add(self.config.time_between_checks),
            });
        } else if verifliers_decide {
            site.phase = Phase::AwaitingVerifliers(VeriflierRequest {
                sent_at: at,
                local_failures: failures,
                answers: Vec::new(),
                unavailable: Vec::new(),
            });
            self.awaiting.insert((at, blog_id));
            actions.push(Action::AskVerifliers {
                blog_id,
                monitor_url: site.monitor_url.clone(),
            });
        } else {
            let checks = local_entries(&failures);
            change_status(blog_id, site, SiteStatus::Down, at, at, checks, actions);
        }
    }

    fn on_veriflier_answer(&mut self, answer: VeriflierAnswer, actions: &mut Vec<Action>) {
        let VeriflierAnswer {
            blog_id,
            monitor_url,
            veriflier,
            at,
            outcome,
        } = answer;
        if let Some(site) = self.sites.get(&blog_id) {
            if matches!(site.phase, Phase::AwaitingVerifliers(_)) && site.monitor_url != monitor_url {
                actions.push(Action::AnswerIgnored {
                    blog_id,
                    veriflier,
                    reason: IgnoredAnswer::UrlMismatch,
                });
                return;
            }
        }
        let Some(request) = self.pending_request(blog_id, &veriflier, at, actions) else {
            return;
        };
        request.answers.push(VeriflierRecord { veriflier, at, outcome });
        self.decide(blog_id, at, actions);
    }

    fn on_veriflier_unavailable(&mut self, report: VeriflierUnavailable, actions: &mut Vec<Action>) {
        let VeriflierUnavailable {
            blog_id, veriflier, at, ..
        } = report;
        let Some(request) = self.pending_request(blog_id, &veriflier, at, actions) else {
            return;
        };
        request.unavailable.push(veriflier);
        self.decide(blog_id, at, actions);
    }

    /// The request a report from `veriflier` at `at` may count toward, or `None` (with the reason
    /// pushed to `actions`) when it must be ignored.
    fn pending_request(
        &mut self,
        blog_id: BlogId,
        veriflier: &str,
        at: UnixMillis,
        actions: &mut Vec<Action>,
    ) -> Option<&mut VeriflierRequest> {
        let ignored = |reason| Action::AnswerIgnored {
            blog_id,
            veriflier: veriflier.to_owned(),
            reason,
        };
        if !self.config.verifliers.iter().any(|name| name == veriflier) {
            actions.push(ignored(IgnoredAnswer::UnknownVeriflier));
            return None;
        }
        let sent_at = match self.sites.get(&blog_id).map(|site| &site.phase) {
            Some(Phase::AwaitingVerifliers(request)) => request.sent_at,
            _ => {
                actions.push(ignored(IgnoredAnswer::NoPendingRequest));
                return None;
            }
        };
        // A late report must not decide: the request is already dead even if no Tick has said so yet.
        if self.is_expired(sent_at, at) {
            self.expire(blog_id, actions);
            actions.push(ignored(IgnoredAnswer::NoPendingRequest));
            return None;
        }
        let Some(Phase::AwaitingVerifliers(request)) = self.sites.get_mut(&blog_id).map(|site| &mut site.phase) else {
            return None;
        };
        if request.has_heard_from(veriflier) {
            actions.push(ignored(IgnoredAnswer::Duplicate));
            return None;
        }
        Some(request)
    }

    /// Settles the request of `blog_id` if its answers allow: DOWN at the offline limit, back to
    /// normal once the limit is out of reach.
    fn decide(&mut self, blog_id: BlogId, at: UnixMillis, actions: &mut Vec<Action>) {
        let limit = self.config.peer_offline_limit as usize;
        let configured = self.config.verifliers.len();
        let Some(site) = self.sites.get_mut(&blog_id) else {
            return;
        };
        let Phase::AwaitingVerifliers(request) = &site.phase else {
            return;
        };
        let (offline, online, unavailable) = (request.offline(), request.online(), request.unavailable.len());
        let outstanding = configured.saturating_sub(offline + online + unavailable);
        if offline >= limit {
            let Phase::AwaitingVerifliers(request) = std::mem::take(&mut site.phase) else {
                return;
            };
            self.awaiting.remove(&(request.sent_at, blog_id));
            let last_check = request
                .local_failures
                .last()
                .map_or(request.sent_at, |failure| failure.at);
            let mut checks = local_entries(&request.local_failures);
            checks.extend(
                request
                    .answers
                    .iter()
                    .map(|answer| CheckEntry::new(CheckType::Veriflier, &answer.veriflier, &answer.outcome)),
            );
            change_status(blog_id, site, SiteStatus::Down, at, last_check, checks, actions);
        } else if offline + outstanding < limit {
            if let Phase::AwaitingVerifliers(request) = std::mem::take(&mut site.phase) {
                self.awaiting.remove(&(request.sent_at, blog_id));
            }
            actions.push(if unavailable == 0 {
                Action::FalseAlarm {
                    blog_id,
                    offline,
                    online,
                }
            } else {
                Action::VerificationInconclusive {
                    blog_id,
                    offline,
                    online,
                    unavailable,
                }
            });
        }
    }

    fn on_tick(&mut self, now: UnixMillis, actions: &mut Vec<Action>) {
        let expired: Vec<BlogId> = self
            .awaiting
            .iter()
            .take_while(|&&(sent_at, _)| self.is_expired(sent_at, now))
            .map(|&(_, blog_id)| blog_id)
            .collect();
        for blog_id in expired {
            self.expire(blog_id, actions);
        }
    }

    /// "Older than the timeout": a request exactly `timeout_for_requests` old is still alive.
    fn is_expired(&self, sent_at: UnixMillis, now: UnixMillis) -> bool {
        now.saturating_duration_since(sent_at) > self.config.timeout_for_requests
    }

    fn expire(&mut self, blog_id: BlogId, actions: &mut Vec<Action>) {
        let Some(site) = self.sites.get_mut(&blog_id) else {
            return;
        };
        if let Phase::AwaitingVerifliers(request) = std::mem::take(&mut site.phase) {
            self.awaiting.remove(&(request.sent_at, blog_id));
            actions.push(Action::VeriflierRequestExpired {
                blog_id,
                sent_at: request.sent_at,
                offline: request.offline(),
                online: request.online(),
            });
        }
    }
}

fn local_entries(failures: &[LocalCheckRecord]) -> Vec<CheckEntry> {
    failures
        .iter()
        .map(|failure| CheckEntry::new(CheckType::Local, &failure.host, &failure.outcome))
        .collect()
}

/// Moves `site` to `status` at `at`, and tells the caller to persist it and then notify WPCOM.
fn change_status(
    blog_id: BlogId,
    site: &mut SiteState,
    status: SiteStatus,
    at: UnixMillis,
    last_check: UnixMillis,
    checks: Vec<CheckEntry>,
    actions: &mut Vec<Action>,
) {
    site.status = status;
    site.last_status_change = Some(at);
    site.phase = Phase::Normal;
    actions.push(Action::PersistStatus {
        blog_id,
        status,
        last_status_change: at,
    });
    actions.push(Action::Notify(Notification {
        blog_id,
        monitor_url: site.monitor_url.clone(),
        status_id: status,
        last_check,
        last_status_change: at,
        checks,
    }));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const BLOG: BlogId = 42;
    const URL: &str = "https://example.com";
    const HOST: &str = "jetmon-1";
    const T0_MILLIS: u64 = 1_764_072_000_000;
    const RECHECK_SPACING: Duration = Duration::from_secs(30);

    fn at(seconds_after_start: u64) -> UnixMillis {
        UnixMillis::from_millis(T0_MILLIS + seconds_after_start * 1_000)
    }

    fn up() -> CheckOutcome {
        CheckOutcome {
            up: true,
            code: 200,
            rtt_ms: 120,
            error: None,
        }
    }

    fn down() -> CheckOutcome {
        CheckOutcome {
            up: false,
            code: 998,
            rtt_ms: 20_000,
            error: Some("timeout".into()),
        }
    }

    fn with_verifliers(names: &[&str], limit: u32) -> MachineConfig {
        MachineConfig {
            verifliers: names.iter().map(|name| (*name).to_owned()).collect(),
            peer_offline_limit: limit,
            ..MachineConfig::default()
        }
    }

    fn local(seconds: u64, outcome: CheckOutcome) -> Event {
        local_for(URL, seconds, outcome)
    }

    fn local_for(url: &str, seconds: u64, outcome: CheckOutcome) -> Event {
        Event::LocalCheck(LocalCheck {
            blog_id: BLOG,
            monitor_url: url.into(),
            host: HOST.into(),
            at: at(seconds),
            outcome,
        })
    }

    fn answer(veriflier: &str, seconds: u64, outcome: CheckOutcome) -> Event {
        answer_for(URL, veriflier, seconds, outcome)
    }

    fn answer_for(url: &str, veriflier: &str, seconds: u64, outcome: CheckOutcome) -> Event {
        Event::VeriflierAnswer(VeriflierAnswer {
            blog_id: BLOG,
            monitor_url: url.into(),
            veriflier: veriflier.into(),
            at: at(seconds),
            outcome,
        })
    }

    fn unavailable(veriflier: &str, seconds: u64) -> Event {
        Event::VeriflierUnavailable(VeriflierUnavailable {
            blog_id: BLOG,
            veriflier: veriflier.into(),
            at: at(seconds),
            reason: "connection refused".into(),
        })
    }

    /// Feeds the three spaced local failures (at 0, 30 and 60 s) and returns the actions of the last.
    fn fail_locally_three_times(machine: &mut StatusMachine) -> Vec<Action> {
        machine.handle(local(0, down()));
        machine.handle(local(30, down()));
        machine.handle(local(60, down()))
    }

    fn notifications(actions: &[Action]) -> Vec<&Notification> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Notify(notification) => Some(notification),
                _ => None,
            })
            .collect()
    }

    fn status(machine: &StatusMachine) -> Option<SiteStatus> {
        machine.site(BLOG).map(SiteState::status)
    }

    fn local_entry(outcome: &CheckOutcome) -> CheckEntry {
        CheckEntry::new(CheckType::Local, HOST, outcome)
    }

    #[test]
    fn success_on_running_site_does_nothing() {
        let mut machine = StatusMachine::new(MachineConfig::default());
        assert_eq!(machine.handle(local(0, up())), vec![]);
        assert_eq!(status(&machine), Some(SiteStatus::Running));
    }

    #[test]
    fn first_failed_check_schedules_spaced_recheck() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        let actions = machine.handle(local(0, down()));
        assert_eq!(
            actions,
            vec![Action::ScheduleRecheck {
                blog_id: BLOG,
                not_before: at(0).saturating_add(RECHECK_SPACING),
            }]
        );
        assert!(
            matches!(machine.site(BLOG).map(SiteState::phase), Some(Phase::Rechecking { failures }) if failures.len() == 1)
        );
    }

    #[test]
    fn third_failed_local_check_asks_verifliers() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2"], 2));
        let second = {
            machine.handle(local(0, down()));
            machine.handle(local(30, down()))
        };
        assert!(matches!(second.as_slice(), [Action::ScheduleRecheck { .. }]));
        let third = machine.handle(local(60, down()));
        assert_eq!(
            third,
            vec![Action::AskVerifliers {
                blog_id: BLOG,
                monitor_url: URL.into(),
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Running));
    }

    #[test]
    fn failed_check_sooner_than_spacing_does_not_count() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        machine.handle(local(0, down()));
        assert_eq!(machine.handle(local(29, down())), vec![]);
        // Still only one failure: the next spaced failure is the second, not the third.
        let actions = machine.handle(local(30, down()));
        assert!(matches!(actions.as_slice(), [Action::ScheduleRecheck { .. }]));
    }

    #[test]
    fn success_during_rechecks_cancels_without_notice() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        machine.handle(local(0, down()));
        machine.handle(local(30, down()));
        let actions = machine.handle(local(60, up()));
        assert_eq!(
            actions,
            vec![Action::Recovered {
                blog_id: BLOG,
                failed_checks: 2,
            }]
        );
        assert_eq!(machine.site(BLOG).map(SiteState::phase), Some(&Phase::Normal));
        // The count starts over: a new failure is the first again.
        assert!(matches!(
            machine.handle(local(90, down())).as_slice(),
            [Action::ScheduleRecheck { .. }]
        ));
    }

    #[test]
    fn success_while_awaiting_verifliers_cancels_and_later_answers_are_ignored() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        assert_eq!(
            machine.handle(local(70, up())),
            vec![Action::Recovered {
                blog_id: BLOG,
                failed_checks: 3,
            }]
        );
        assert_eq!(
            machine.handle(answer("v1", 75, down())),
            vec![Action::AnswerIgnored {
                blog_id: BLOG,
                veriflier: "v1".into(),
                reason: IgnoredAnswer::NoPendingRequest,
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Running));
    }

    #[test]
    fn offline_quorum_makes_site_down_and_notifies_with_all_checks() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2", "v3"], 2));
        fail_locally_three_times(&mut machine);
        assert_eq!(machine.handle(answer("v1", 61, up())), vec![]);
        assert_eq!(machine.handle(answer("v2", 62, down())), vec![]);
        let actions = machine.handle(answer("v3", 63, down()));

        let veriflier_entry = |name: &str, outcome: &CheckOutcome| CheckEntry::new(CheckType::Veriflier, name, outcome);
        let expected = Notification {
            blog_id: BLOG,
            monitor_url: URL.into(),
            status_id: SiteStatus::Down,
            last_check: at(60),
            last_status_change: at(63),
            checks: vec![
                local_entry(&down()),
                local_entry(&down()),
                local_entry(&down()),
                veriflier_entry("v1", &up()),
                veriflier_entry("v2", &down()),
                veriflier_entry("v3", &down()),
            ],
        };
        assert_eq!(
            actions,
            vec![
                Action::PersistStatus {
                    blog_id: BLOG,
                    status: SiteStatus::Down,
                    last_status_change: at(63),
                },
                Action::Notify(expected),
            ]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Down));
        assert_eq!(machine.site(BLOG).and_then(SiteState::last_status_change), Some(at(63)));
    }

    #[test]
    fn fewer_offline_than_limit_is_false_alarm_without_notice() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2", "v3"], 2));
        fail_locally_three_times(&mut machine);
        assert_eq!(machine.handle(answer("v1", 61, down())), vec![]);
        assert_eq!(machine.handle(answer("v2", 62, up())), vec![]);
        assert_eq!(
            machine.handle(answer("v3", 63, up())),
            vec![Action::FalseAlarm {
                blog_id: BLOG,
                offline: 1,
                online: 2,
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Running));
        assert_eq!(machine.site(BLOG).map(SiteState::phase), Some(&Phase::Normal));
    }

    #[test]
    fn false_alarm_is_decided_as_soon_as_limit_is_out_of_reach() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2", "v3"], 3));
        fail_locally_three_times(&mut machine);
        let actions = machine.handle(answer("v1", 61, up()));
        assert_eq!(
            actions,
            vec![Action::FalseAlarm {
                blog_id: BLOG,
                offline: 0,
                online: 1,
            }]
        );
    }

    #[test]
    fn answers_after_the_decision_are_ignored() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2", "v3"], 1));
        fail_locally_three_times(&mut machine);
        assert_eq!(notifications(&machine.handle(answer("v1", 61, down()))).len(), 1);
        let late = machine.handle(answer("v2", 62, down()));
        assert_eq!(
            late,
            vec![Action::AnswerIgnored {
                blog_id: BLOG,
                veriflier: "v2".into(),
                reason: IgnoredAnswer::NoPendingRequest,
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Down));
    }

    #[test]
    fn answers_from_the_same_veriflier_twice_count_once() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2"], 2));
        fail_locally_three_times(&mut machine);
        assert_eq!(machine.handle(answer("v1", 61, down())), vec![]);
        assert_eq!(
            machine.handle(answer("v1", 62, down())),
            vec![Action::AnswerIgnored {
                blog_id: BLOG,
                veriflier: "v1".into(),
                reason: IgnoredAnswer::Duplicate,
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Running));
        assert_eq!(notifications(&machine.handle(answer("v2", 63, down()))).len(), 1);
    }

    #[test]
    fn answer_from_unconfigured_veriflier_does_not_count() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        assert_eq!(
            machine.handle(answer("intruder", 61, down())),
            vec![Action::AnswerIgnored {
                blog_id: BLOG,
                veriflier: "intruder".into(),
                reason: IgnoredAnswer::UnknownVeriflier,
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Running));
    }

    #[test]
    fn answer_without_a_request_is_ignored() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        let actions = machine.handle(answer("v1", 0, down()));
        assert_eq!(
            actions,
            vec![Action::AnswerIgnored {
                blog_id: BLOG,
                veriflier: "v1".into(),
                reason: IgnoredAnswer::NoPendingRequest,
            }]
        );
        assert!(machine.is_empty());
    }

    #[test]
    fn unavailable_veriflier_does_not_count_toward_quorum() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2", "v3"], 2));
        fail_locally_three_times(&mut machine);
        assert_eq!(machine.handle(unavailable("v1", 61)), vec![]);
        assert_eq!(machine.handle(answer("v2", 62, down())), vec![]);
        assert_eq!(status(&machine), Some(SiteStatus::Running));
        assert_eq!(notifications(&machine.handle(answer("v3", 63, down()))).len(), 1);
    }

    #[test]
    fn unavailable_verifliers_make_the_request_inconclusive() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2"], 2));
        fail_locally_three_times(&mut machine);
        assert_eq!(machine.handle(answer("v1", 61, down())), vec![]);
        assert_eq!(
            machine.handle(unavailable("v2", 62)),
            vec![Action::VerificationInconclusive {
                blog_id: BLOG,
                offline: 1,
                online: 0,
                unavailable: 1,
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Running));
    }

    #[test]
    fn stale_veriflier_request_dropped_without_notice() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2"], 2));
        fail_locally_three_times(&mut machine);
        machine.handle(answer("v1", 70, down()));
        // Sent at 60 s: exactly 60 s old is still alive, older is dropped.
        assert_eq!(machine.handle(Event::Tick { now: at(120) }), vec![]);
        assert_eq!(
            machine.handle(Event::Tick { now: at(121) }),
            vec![Action::VeriflierRequestExpired {
                blog_id: BLOG,
                sent_at: at(60),
                offline: 1,
                online: 0,
            }]
        );
        assert_eq!(status(&machine), Some(SiteStatus::Running));
        assert_eq!(machine.site(BLOG).map(SiteState::phase), Some(&Phase::Normal));
        assert_eq!(machine.handle(Event::Tick { now: at(500) }), vec![]);
    }

    #[test]
    fn late_answer_before_any_tick_expires_the_request_instead_of_deciding() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        let actions = machine.handle(answer("v1", 125, down()));
        assert!(notifications(&actions).is_empty());
        assert!(matches!(actions.first(), Some(Action::VeriflierRequestExpired { .. })));
        assert_eq!(status(&machine), Some(SiteStatus::Running));
    }

    #[test]
    fn tick_expires_only_requests_that_are_old_enough() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        let other = BLOG + 1;
        for seconds in [40, 70, 100] {
            machine.handle(Event::LocalCheck(LocalCheck {
                blog_id: other,
                monitor_url: "https://other.example".into(),
                host: HOST.into(),
                at: at(seconds),
                outcome: down(),
            }));
        }
        // BLOG asked at 60 s, `other` at 100 s.
        let expired = machine.handle(Event::Tick { now: at(130) });
        assert!(matches!(
            expired.as_slice(),
            [Action::VeriflierRequestExpired { blog_id: BLOG, .. }]
        ));
        assert!(matches!(
            machine.site(other).map(SiteState::phase),
            Some(Phase::AwaitingVerifliers(_))
        ));
    }

    #[test]
    fn without_verifliers_local_rechecks_alone_make_site_down() {
        let mut machine = StatusMachine::new(MachineConfig::default());
        let actions = fail_locally_three_times(&mut machine);
        let sent = notifications(&actions);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].status_id, SiteStatus::Down);
        assert_eq!(sent[0].checks, vec![local_entry(&down()); 3]);
        assert_eq!(sent[0].last_check, at(60));
        assert_eq!(status(&machine), Some(SiteStatus::Down));
    }

    #[test]
    fn zero_peer_offline_limit_decides_locally() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 0));
        let actions = fail_locally_three_times(&mut machine);
        assert_eq!(notifications(&actions).len(), 1);
    }

    #[test]
    fn single_check_configuration_escalates_on_first_failure() {
        let mut machine = StatusMachine::new(MachineConfig {
            num_of_checks: 1,
            ..with_verifliers(&["v1"], 1)
        });
        assert!(matches!(
            machine.handle(local(0, down())).as_slice(),
            [Action::AskVerifliers { .. }]
        ));
    }

    #[test]
    fn failed_local_check_while_awaiting_verifliers_changes_nothing() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        assert_eq!(machine.handle(local(90, down())), vec![]);
        assert!(matches!(
            machine.site(BLOG).map(SiteState::phase),
            Some(Phase::AwaitingVerifliers(request)) if request.local_failures.len() == 3
        ));
    }

    #[test]
    fn down_site_failing_within_notice_interval_stays_down_silently() {
        let mut machine = StatusMachine::new(MachineConfig::default());
        machine.track(BLOG, URL, SiteStatus::Down, Some(at(0)));
        assert_eq!(machine.handle(local(59 * 60, down())), vec![]);
        assert_eq!(status(&machine), Some(SiteStatus::Down));
    }

    #[test]
    fn confirmed_down_after_notice_interval() {
        let mut machine = StatusMachine::new(MachineConfig::default());
        machine.track(BLOG, URL, SiteStatus::Down, Some(at(0)));
        let actions = machine.handle(local(59 * 60 + 1, down()));
        assert_eq!(
            actions,
            vec![
                Action::PersistStatus {
                    blog_id: BLOG,
                    status: SiteStatus::ConfirmedDown,
                    last_status_change: at(59 * 60 + 1),
                },
                Action::Notify(Notification {
                    blog_id: BLOG,
                    monitor_url: URL.into(),
                    status_id: SiteStatus::ConfirmedDown,
                    last_check: at(59 * 60 + 1),
                    last_status_change: at(59 * 60 + 1),
                    checks: vec![local_entry(&down())],
                }),
            ]
        );
        // Confirmed is final until the site comes back: no repeated notices.
        assert_eq!(machine.handle(local(3 * 3_600, down())), vec![]);
    }

    #[test]
    fn down_site_with_unknown_last_change_is_confirmed_on_next_failure() {
        let mut machine = StatusMachine::new(MachineConfig::default());
        machine.track(BLOG, URL, SiteStatus::Down, None);
        let actions = machine.handle(local(0, down()));
        assert_eq!(
            notifications(&actions).first().map(|n| n.status_id),
            Some(SiteStatus::ConfirmedDown)
        );
    }

    #[test]
    fn success_on_down_site_makes_it_running_and_notifies() {
        for previous in [SiteStatus::Down, SiteStatus::ConfirmedDown] {
            let mut machine = StatusMachine::new(MachineConfig::default());
            machine.track(BLOG, URL, previous, Some(at(0)));
            let actions = machine.handle(local(10, up()));
            assert_eq!(
                actions,
                vec![
                    Action::PersistStatus {
                        blog_id: BLOG,
                        status: SiteStatus::Running,
                        last_status_change: at(10),
                    },
                    Action::Notify(Notification {
                        blog_id: BLOG,
                        monitor_url: URL.into(),
                        status_id: SiteStatus::Running,
                        last_check: at(10),
                        last_status_change: at(10),
                        checks: vec![local_entry(&up())],
                    }),
                ]
            );
        }
    }

    #[test]
    fn up_down_up_produces_original_notification_sequence() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1", "v2", "v3"], 3));
        let mut sent = Vec::new();
        let mut feed = |machine: &mut StatusMachine, event| {
            for action in machine.handle(event) {
                if let Action::Notify(notification) = action {
                    sent.push((notification.status_id, notification.checks.len()));
                }
            }
        };
        feed(&mut machine, local(0, up()));
        fail_locally_three_times(&mut machine);
        for (name, seconds) in [("v1", 61), ("v2", 62), ("v3", 63)] {
            feed(&mut machine, answer(name, seconds, down()));
        }
        feed(&mut machine, local(300, down()));
        feed(&mut machine, local(63 + 59 * 60 + 1, down()));
        feed(&mut machine, local(2 * 3_600, down()));
        feed(&mut machine, local(3 * 3_600, up()));
        feed(&mut machine, local(3 * 3_600 + 300, up()));
        assert_eq!(
            sent,
            vec![
                (SiteStatus::Down, 6),
                (SiteStatus::ConfirmedDown, 1),
                (SiteStatus::Running, 1)
            ]
        );
    }

    #[test]
    fn url_change_drops_pending_rechecks() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        machine.handle(local(0, down()));
        machine.handle(local(30, down()));
        let actions = machine.handle(local_for("https://new.example", 60, down()));
        assert_eq!(
            actions,
            vec![
                Action::UrlChanged {
                    blog_id: BLOG,
                    previous_url: URL.into(),
                    dropped_failures: 2,
                },
                Action::ScheduleRecheck {
                    blog_id: BLOG,
                    not_before: at(60).saturating_add(RECHECK_SPACING),
                },
            ]
        );
        assert_eq!(
            machine.site(BLOG).map(SiteState::monitor_url),
            Some("https://new.example")
        );
    }

    #[test]
    fn answer_for_the_old_url_is_ignored_after_url_change() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        let new_url = "https://new.example";
        machine.handle(local_for(new_url, 90, down()));
        machine.handle(local_for(new_url, 120, down()));
        machine.handle(local_for(new_url, 150, down()));
        assert_eq!(
            machine.handle(answer("v1", 151, down())),
            vec![Action::AnswerIgnored {
                blog_id: BLOG,
                veriflier: "v1".into(),
                reason: IgnoredAnswer::UrlMismatch,
            }]
        );
        let decided = machine.handle(answer_for(new_url, "v1", 152, down()));
        assert_eq!(
            notifications(&decided).first().map(|n| n.monitor_url.as_str()),
            Some(new_url)
        );
    }

    #[test]
    fn url_change_while_awaiting_verifliers_cancels_the_request_and_its_timeout() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        let actions = machine.handle(local_for("https://new.example", 70, up()));
        assert_eq!(
            actions,
            vec![Action::UrlChanged {
                blog_id: BLOG,
                previous_url: URL.into(),
                dropped_failures: 3,
            }]
        );
        assert_eq!(machine.handle(Event::Tick { now: at(1_000) }), vec![]);
    }

    #[test]
    fn track_does_not_overwrite_newer_in_memory_state() {
        let mut machine = StatusMachine::new(MachineConfig::default());
        assert!(machine.track(BLOG, URL, SiteStatus::Down, Some(at(0))));
        assert!(!machine.track(BLOG, URL, SiteStatus::Running, None));
        assert_eq!(status(&machine), Some(SiteStatus::Down));
    }

    #[test]
    fn forget_drops_pending_request() {
        let mut machine = StatusMachine::new(with_verifliers(&["v1"], 1));
        fail_locally_three_times(&mut machine);
        assert!(machine.forget(BLOG).is_some());
        assert_eq!(machine.handle(Event::Tick { now: at(1_000) }), vec![]);
        assert!(machine.is_empty());
    }

    #[test]
    fn sites_are_independent() {
        let mut machine = StatusMachine::new(MachineConfig::default());
        fail_locally_three_times(&mut machine);
        let other = Event::LocalCheck(LocalCheck {
            blog_id: BLOG + 1,
            monitor_url: "https://other.example".into(),
            host: HOST.into(),
            at: at(90),
            outcome: up(),
        });
        assert_eq!(machine.handle(other), vec![]);
        assert_eq!(status(&machine), Some(SiteStatus::Down));
        assert_eq!(machine.site(BLOG + 1).map(SiteState::status), Some(SiteStatus::Running));
    }
}
