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
pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
pub const REAL_TOPIC: &str = "REAL_TOPIC";
pub const REAL_QID: &str = "REAL_QID";
pub const TRAN_MSG: &str = "TRAN_MSG";
pub const PGROUP: &str = "PGROUP";
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
pub const TRANSIENT_PREFIX: &str = "__RMQ.TRANSIENT.";

/// An ordered list of properties (few entries: a vector beats a map).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties(Vec<(String, String)>);

impl Properties {
    pub fn new() -> Self {
        Properties(Vec::new())
    }

    /// Parses the wire form. Segments without a separator strictly inside, or with an empty name
    /// or value, are ignored, as RocketMQ does.
    pub fn parse(s: &str) -> Self {
        let mut out = Vec::new();
        for segment in s.split(PROPERTY_SEPARATOR) {
            if let Some((k, v)) = segment.split_once(NAME_VALUE_SEPARATOR) {
                if !k.is_empty() && !v.is_empty() {
                    out.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        Properties(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(e) => e.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let pos = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(pos).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The wire form; transient properties are not stored.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.0 {
            if k.starts_with(TRANSIENT_PREFIX) {
                continue;
            }
            s.push_str(k);
            s.push(NAME_VALUE_SEPARATOR);
            s.push_str(v);
            s.push(PROPERTY_SEPARATOR);
        }
        s
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
        let s = p.encode();
        assert_eq!(Properties::parse(&s), p);
        assert_eq!(find(&s, KEYS), Some("k1 k2"));
        assert_eq!(find(&s, "missing"), None);
    }

    #[test]
    fn ignores_malformed_segments() {
        let p = Properties::parse("\u{1}x\u{2}novalue\u{2}a\u{1}\u{2}k\u{1}v\u{2}");
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![("k", "v")]);
    }
}
