//! Runtime flow control of consumer groups: pause and resume (the whole group or some of its
//! clients) and a consume rate limit (a token bucket on pulled messages), both enforced here at
//! the broker so they work with any client.
//!
//! The settings are attributes of the subscription group, so they persist with it and standard
//! tools set them (`mqadmin updateSubGroup -a +consume.rate.limit=500`, or `petrel admin`):
//! - `consume.paused`: `true` pauses every client of the group.
//! - `consume.paused.clients`: comma-separated client ids to pause.
//! - `consume.rate.limit`: most messages per second handed to the whole group (0 = no limit).
//!
//! A paused pull is parked like a pull that found nothing, and answered the moment the group is
//! resumed, so resuming is instant and a paused client sees no errors. A pull over the rate gets
//! at most the tokens available, or waits for the next token.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use petrel_common::topic::SubscriptionGroupConfig;
use tokio::sync::watch;

pub use petrel_common::topic::group_attribute::{PAUSED, PAUSED_CLIENTS, RATE_LIMIT};

/// The flow-control part of a group's attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowSettings {
    pub paused: bool,
    pub paused_clients: HashSet<String>,
    /// Messages per second; `None` = unlimited.
    pub rate_limit: Option<f64>,
}

impl FlowSettings {
    /// Reads the settings from a group's attributes; an error names the bad attribute.
    pub fn from_attributes(attributes: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut s = FlowSettings::default();
        if let Some(v) = attributes.get(PAUSED) {
            s.paused = match v.trim() {
                "true" => true,
                "false" | "" => false,
                other => return Err(format!("{PAUSED} must be true or false, not {other:?}")),
            };
        }
        if let Some(v) = attributes.get(PAUSED_CLIENTS) {
            s.paused_clients = v
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = attributes.get(RATE_LIMIT) {
            let rate: f64 = v.trim().parse().map_err(|_| {
                format!("{RATE_LIMIT} must be a number of messages per second, not {v:?}")
            })?;
            if !rate.is_finite() || rate < 0.0 {
                return Err(format!(
                    "{RATE_LIMIT} must be 0 (no limit) or more, not {v}"
                ));
            }
            s.rate_limit = (rate > 0.0).then_some(rate);
        }
        Ok(s)
    }

    /// `client_id` is asked for only when some clients are paused by id.
    fn pauses(&self, client_id: impl FnOnce() -> Option<String>) -> bool {
        self.paused
            || (!self.paused_clients.is_empty()
                && client_id().is_some_and(|c| self.paused_clients.contains(&c)))
    }
}

/// A bucket that refills at `rate` tokens a second up to one second's worth (at least one token).
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        let capacity = rate.max(1.0);
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            refilled_at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.refilled_at = now;
    }

    /// Up to `want` whole tokens, or how long until one is there.
    fn take(&mut self, want: u32, now: Instant) -> Result<u32, Duration> {
        self.refill(now);
        let granted = (self.tokens.floor() as u32).min(want);
        if granted == 0 {
            return Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate));
        }
        self.tokens -= f64::from(granted);
        Ok(granted)
    }

    fn refund(&mut self, n: u32) {
        self.tokens = (self.tokens + f64::from(n)).min(self.capacity);
    }
}

struct GroupFlow {
    settings: FlowSettings,
    bucket: Option<Mutex<TokenBucket>>,
}

/// What a pull may do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Read at most this many messages; give back what was not used with [`FlowControl::refund`].
    Granted(u32),
    /// The client is paused: park until [`FlowControl::changed`] or the pull's deadline.
    Paused,
    /// Over the rate: try again after this long.
    Wait(Duration),
}

pub struct FlowControl {
    groups: RwLock<HashMap<String, Arc<GroupFlow>>>,
    /// Bumped on every change, so parked paused pulls wake and look again.
    version: watch::Sender<u64>,
}

impl Default for FlowControl {
    fn default() -> Self {
        FlowControl {
            groups: RwLock::new(HashMap::new()),
            version: watch::channel(0).0,
        }
    }
}

impl FlowControl {
    /// Takes a group's (new) settings; a changed rate starts a full bucket.
    pub fn apply(&self, group: &SubscriptionGroupConfig) -> Result<(), String> {
        let settings = FlowSettings::from_attributes(&group.attributes)?;
        self.set(&group.group_name, settings);
        Ok(())
    }

    /// Takes `group`'s (new) settings, already read from its attributes.
    pub fn set(&self, group: &str, settings: FlowSettings) {
        let mut groups = self.groups.write();
        if groups.get(group).is_some_and(|g| g.settings == settings) {
            return;
        }
        if settings == FlowSettings::default() {
            groups.remove(group);
        } else {
            let bucket = settings.rate_limit.map(|r| Mutex::new(TokenBucket::new(r)));
            groups.insert(group.to_owned(), Arc::new(GroupFlow { settings, bucket }));
        }
        drop(groups);
        self.version.send_modify(|v| *v += 1);
    }

    pub fn remove(&self, group: &str) {
        if self.groups.write().remove(group).is_some() {
            self.version.send_modify(|v| *v += 1);
        }
    }

    pub fn settings(&self, group: &str) -> Option<FlowSettings> {
        self.groups.read().get(group).map(|g| g.settings.clone())
    }

    /// May a client of `group` read up to `want` messages now? `client_id` finds out which
    /// client is asking, when that matters.
    pub fn admit(
        &self,
        group: &str,
        client_id: impl FnOnce() -> Option<String>,
        want: u32,
    ) -> Admission {
        let Some(flow) = self.groups.read().get(group).cloned() else {
            return Admission::Granted(want);
        };
        if flow.settings.pauses(client_id) {
            return Admission::Paused;
        }
        match &flow.bucket {
            None => Admission::Granted(want),
            Some(bucket) => match bucket.lock().take(want, Instant::now()) {
                Ok(n) => Admission::Granted(n),
                Err(wait) => Admission::Wait(wait),
            },
        }
    }

    /// Gives back tokens a pull was granted but did not use.
    pub fn refund(&self, group: &str, unused: u32) {
        if unused == 0 {
            return;
        }
        if let Some(flow) = self.groups.read().get(group) {
            if let Some(bucket) = &flow.bucket {
                bucket.lock().refund(unused);
            }
        }
    }

    /// A receiver that sees every later change of any group's settings, and every [`wake`].
    ///
    /// [`wake`]: FlowControl::wake
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Makes parked pulls look again (after an offset reset).
    pub fn wake(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(attrs: &[(&str, &str)]) -> SubscriptionGroupConfig {
        let mut g = SubscriptionGroupConfig::new("g");
        for (k, v) in attrs {
            g.attributes.insert((*k).to_owned(), (*v).to_owned());
        }
        g
    }

    #[test]
    fn bad_attributes_are_refused_with_their_name() {
        let f = FlowControl::default();
        let err = f.apply(&group(&[(RATE_LIMIT, "fast")])).unwrap_err();
        assert!(err.contains(RATE_LIMIT), "{err}");
        let err = f.apply(&group(&[(RATE_LIMIT, "-3")])).unwrap_err();
        assert!(err.contains("0 (no limit)"), "{err}");
        let err = f.apply(&group(&[(PAUSED, "yes")])).unwrap_err();
        assert!(err.contains(PAUSED), "{err}");
    }

    #[test]
    fn pause_covers_the_group_or_only_the_named_clients() {
        let f = FlowControl::default();
        f.apply(&group(&[(PAUSED_CLIENTS, "a, b")])).unwrap();
        assert_eq!(f.admit("g", || Some("a".into()), 32), Admission::Paused);
        assert_eq!(
            f.admit("g", || Some("c".into()), 32),
            Admission::Granted(32)
        );
        assert_eq!(f.admit("g", || None, 32), Admission::Granted(32));
        f.apply(&group(&[(PAUSED, "true")])).unwrap();
        assert_eq!(f.admit("g", || Some("c".into()), 32), Admission::Paused);
        f.apply(&group(&[])).unwrap();
        assert_eq!(
            f.admit("g", || Some("a".into()), 32),
            Admission::Granted(32)
        );
        assert_eq!(
            f.admit("other", || Some("a".into()), 7),
            Admission::Granted(7)
        );
    }

    #[test]
    fn changes_wake_watchers() {
        let f = FlowControl::default();
        let mut rx = f.changed();
        f.apply(&group(&[(PAUSED, "true")])).unwrap();
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        f.apply(&group(&[(PAUSED, "true")])).unwrap();
        assert!(
            !rx.has_changed().unwrap(),
            "the same settings are not a change"
        );
        f.remove("g");
        assert!(rx.has_changed().unwrap());
    }

    #[test]
    fn the_bucket_grants_what_it_has_then_asks_to_wait() {
        let start = Instant::now();
        let mut b = TokenBucket::new(100.0);
        b.refilled_at = start;
        assert_eq!(b.take(32, start), Ok(32));
        assert_eq!(b.take(100, start), Ok(68));
        let wait = b.take(10, start).unwrap_err();
        assert!(
            wait <= Duration::from_millis(10) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // 50 ms later, five tokens are back.
        assert_eq!(b.take(32, start + Duration::from_millis(50)), Ok(5));
        b.refund(3);
        assert_eq!(b.take(32, start + Duration::from_millis(50)), Ok(3));
        // Never more than one second's worth, however long it sat idle.
        assert_eq!(b.take(1000, start + Duration::from_secs(60)), Ok(100));
    }

    #[test]
    fn a_slow_rate_still_holds_one_token() {
        let start = Instant::now();
        let mut b = TokenBucket::new(0.5);
        b.refilled_at = start;
        assert_eq!(b.take(32, start), Ok(1));
        let wait = b.take(1, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
    }
}
