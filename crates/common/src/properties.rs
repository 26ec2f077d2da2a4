//! Message properties: `name \u{1} value \u{2}` pairs (reference §4.5), and the well-known names.

pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
pub const PROPERTY_SEPARATOR: char = '\u{2}';

pub const KEYS: &str = "KEYS";
pub const TAGS: &str = "TAGS";
pub const WAIT: &str = "WAIT";
pub const DELAY: &str = "DELAY";
/// 5.x delivery at a chosen time: epoch milliseconds.
pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
/// 5.x delivery after a chosen delay, in seconds (wins over the two others when both are set).
pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
/// 5.x delivery after a chosen delay, in milliseconds.
pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
/// Delivery at a chosen time, epoch milliseconds: the name older clients (and Aliyun's ONS
/// SDK) use; the weakest of the four.
pub const START_DELIVER_TIME: &str = "__STARTDELIVERTIME";
pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
pub const REAL_TOPIC: &str = "REAL_TOPIC";
pub const REAL_QID: &str = "REAL_QID";
pub const TRAN_MSG: &str = "TRAN_MSG";
pub const PGROUP: &str = "PGROUP";
/// The transaction id of a half message (its UNIQ_KEY).
pub const TRANSACTION_ID: &str = "__transactionId__";
/// Seconds before a half message is first checked back, instead of `transactionTimeout`.
pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
/// How often a half message moved to TRANS_CHECK_MAX_TIME_TOPIC was checked.
pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
pub const MIN_OFFSET: &str = "MIN_OFFSET";
pub const MAX_OFFSET: &str = "MAX_OFFSET";
pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
pub const MSG_REGION: &str = "MSG_REGION";
pub const TRACE_ON: &str = "TRACE_ON";
pub const UNIQ_KEY: &str = "UNIQ_KEY";
pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
pub const CLUSTER: &str = "CLUSTER";
pub const SHARDING_KEY: &str = "__SHARDINGKEY";

/// A message's properties, kept in their wire form (reference §4.5) because the broker stores
/// them as they came and only looks up or sets a few. Every writer (producer, send, batch,
/// send-back, scheduled delivery) goes through this type, so the two shapes producers send —
/// with and without the trailing separator (4.9.x Java drops it) — are handled in one place:
/// the string is kept ending with [`PROPERTY_SEPARATOR`], and a property set later can never be
/// glued onto the last value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// Empty, or `name \u{1} value \u{2}` pairs ending with `\u{2}`.
    wire: String,
}

impl Properties {
    pub fn new() -> Self {
        Properties::default()
    }

    /// Takes the wire form as a producer sent it, with or without the trailing separator.
    /// Malformed segments (no separator strictly inside, empty name or value) are kept but
    /// never found, as RocketMQ ignores them when it parses.
    pub fn from_wire(wire: impl Into<String>) -> Self {
        let mut wire = wire.into();
        if !wire.is_empty() && !wire.ends_with(PROPERTY_SEPARATOR) {
            wire.push(PROPERTY_SEPARATOR);
        }
        Properties { wire }
    }

    /// [`Properties::from_wire`] over stored bytes, which need not be UTF-8.
    pub fn from_stored(bytes: &[u8]) -> Self {
        Self::from_wire(String::from_utf8_lossy(bytes))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        find(&self.wire, name)
    }

    /// Sets `name`, replacing its value if it is there (as Java's `putProperty` does).
    pub fn insert(&mut self, name: &str, value: impl AsRef<str>) {
        let value = value.as_ref();
        debug_assert!(
            !name.is_empty() && !value.is_empty(),
            "an empty name or value is never read"
        );
        debug_assert!(
            !name.contains([NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR])
                && !value.contains([NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR]),
            "a separator inside a property would split it"
        );
        self.remove(name);
        self.wire.push_str(name);
        self.wire.push(NAME_VALUE_SEPARATOR);
        self.wire.push_str(value);
        self.wire.push(PROPERTY_SEPARATOR);
    }

    /// Removes every occurrence of `name`; returns the first value it had.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let value = self.get(name)?.to_owned();
        let mut kept = String::with_capacity(self.wire.len());
        for segment in self.wire.split_terminator(PROPERTY_SEPARATOR) {
            if segment
                .split_once(NAME_VALUE_SEPARATOR)
                .is_some_and(|(k, _)| k == name)
            {
                continue;
            }
            kept.push_str(segment);
            kept.push(PROPERTY_SEPARATOR);
        }
        self.wire = kept;
        Some(value)
    }

    /// Records where a message parked on a system topic (schedule, timer, transaction half)
    /// really goes: `REAL_TOPIC` and `REAL_QID`.
    pub fn set_real_destination(&mut self, topic: &str, queue_id: i32) {
        self.insert(REAL_TOPIC, topic);
        self.insert(REAL_QID, queue_id.to_string());
    }

    /// Takes `REAL_TOPIC` and `REAL_QID` out again; the error names what is missing or bad.
    pub fn take_real_destination(&mut self) -> Result<(String, i32), &'static str> {
        let topic = self.remove(REAL_TOPIC).ok_or("no REAL_TOPIC")?;
        let queue_id = self
            .remove(REAL_QID)
            .and_then(|q| q.trim().parse().ok())
            .ok_or("no valid REAL_QID")?;
        Ok((topic, queue_id))
    }

    /// The well-formed pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.wire.split(PROPERTY_SEPARATOR).filter_map(|segment| {
            let (k, v) = segment.split_once(NAME_VALUE_SEPARATOR)?;
            (!k.is_empty() && !v.is_empty()).then_some((k, v))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The wire form, ending with the separator when not empty.
    pub fn as_str(&self) -> &str {
        &self.wire
    }

    pub fn into_wire(self) -> String {
        self.wire
    }
}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Finds one property in the wire form without building a map (the send hot path needs only a few).
pub fn find<'a>(encoded: &'a str, name: &str) -> Option<&'a str> {
    encoded.split(PROPERTY_SEPARATOR).find_map(|segment| {
        let (k, v) = segment.split_once(NAME_VALUE_SEPARATOR)?;
        (k == name && !v.is_empty()).then_some(v)
    })
}

/// [`find`] over properties in their stored, not necessarily UTF-8, form, without allocating.
pub fn find_encoded<'a>(encoded: &'a [u8], name: &str) -> Option<&'a [u8]> {
    encoded
        .split(|&b| b == PROPERTY_SEPARATOR as u8)
        .find_map(|pair| {
            let sep = pair.iter().position(|&b| b == NAME_VALUE_SEPARATOR as u8)?;
            (&pair[..sep] == name.as_bytes() && sep + 1 < pair.len()).then(|| &pair[sep + 1..])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let mut p = Properties::new();
        p.insert(TAGS, "TagA");
        p.insert(KEYS, "k1 k2");
        p.insert("名前", "値");
        assert_eq!(Properties::from_wire(p.as_str()), p);
        assert_eq!(p.get(KEYS), Some("k1 k2"));
        assert_eq!(find(p.as_str(), "名前"), Some("値"));
        assert_eq!(p.get("missing"), None);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            vec![(TAGS, "TagA"), (KEYS, "k1 k2"), ("名前", "値")]
        );
    }

    /// The 4.9.x Java producer's string has no trailing separator; what the broker adds must
    /// not be glued onto the producer's last value.
    #[test]
    fn setting_after_a_string_without_trailing_separator_keeps_the_last_value() {
        let mut p = Properties::from_wire("KEYS\u{1}k\u{2}TAGS\u{1}A");
        p.insert(CLUSTER, "DefaultCluster");
        p.insert(UNIQ_KEY, "ID");
        assert_eq!(p.get(TAGS), Some("A"));
        assert_eq!(p.get(CLUSTER), Some("DefaultCluster"));
        assert_eq!(
            p.as_str(),
            "KEYS\u{1}k\u{2}TAGS\u{1}A\u{2}CLUSTER\u{1}DefaultCluster\u{2}UNIQ_KEY\u{1}ID\u{2}"
        );
        assert_eq!(Properties::from_wire("").as_str(), "");
    }

    #[test]
    fn insert_replaces_and_remove_takes_out() {
        let mut p = Properties::from_wire("a\u{1}1\u{2}b\u{1}2");
        p.insert("a", "3");
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![("b", "2"), ("a", "3")]);
        assert_eq!(p.remove("b"), Some("2".to_owned()));
        assert_eq!(p.remove("b"), None);
        assert_eq!(p.as_str(), "a\u{1}3\u{2}");
        assert_eq!(p.remove("a"), Some("3".to_owned()));
        assert!(p.is_empty());
    }

    #[test]
    fn ignores_malformed_segments() {
        let p = Properties::from_wire("\u{1}x\u{2}novalue\u{2}a\u{1}\u{2}k\u{1}v\u{2}");
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![("k", "v")]);
        assert_eq!(p.get("a"), None);
    }
}
