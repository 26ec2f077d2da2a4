//! The broker settings that UPDATE_BROKER_CONFIG (`mqadmin updateBrokerConfig`) may change while
//! the broker runs, and the file that keeps those changes across a restart,
//! `<store root>/config/brokerConfigOverrides.json` (`{"maxMessageSize": "1048576", …}`, RocketMQ's
//! key names), applied at start on top of the TOML file.
//!
//! It owns the live values (atomics, read on the request paths without a lock) and the overrides
//! file. It never takes a key it cannot apply at once: a key that needs a restart, an unknown key
//! and a bad value are refused whole, naming the key and why, and nothing changes.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::config::BrokerConfig;

/// The overrides file, under the store root's `config` directory.
pub const OVERRIDES_FILE: &str = "brokerConfigOverrides.json";

/// Bounds of `defaultTopicQueueNums` (the TOML file's too).
pub const MAX_DEFAULT_TOPIC_QUEUE_NUMS: i32 = 1024;
/// Bounds of `maxMessageSize`, bytes: at least 1 KiB, at most 64 MiB.
pub const MIN_MAX_MESSAGE_SIZE_BYTES: usize = 1024;
pub const MAX_MAX_MESSAGE_SIZE_BYTES: usize = 64 * 1024 * 1024;

/// Keys GET_BROKER_CONFIG shows that only a restart changes (edit the TOML file).
const RESTART_KEYS: &[&str] = &[
    "brokerName",
    "brokerClusterName",
    "brokerId",
    "brokerIP1",
    "listenPort",
    "namesrvAddr",
    "regionId",
    "storePathRootDir",
    "mappedFileSizeCommitLog",
    "flushDiskType",
    "flushIntervalCommitLog",
    "syncFlushTimeout",
    "brokerRole",
    "aclEnable",
    "aclFile",
    "traceOn",
    "autoCreateSubscriptionGroup",
];

/// One accepted setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    AutoCreateTopicEnable(bool),
    DefaultTopicQueueNums(i32),
    MaxMessageSize(usize),
}

impl Setting {
    /// Parses `key=value`; `Err` names the key and why it is refused.
    pub fn parse(key: &str, value: &str) -> Result<Setting, String> {
        let v = value.trim();
        match key {
            "autoCreateTopicEnable" => parse_bool(key, v).map(Setting::AutoCreateTopicEnable),
            "defaultTopicQueueNums" => match v.parse::<i32>() {
                Ok(n) if (1..=MAX_DEFAULT_TOPIC_QUEUE_NUMS).contains(&n) => {
                    Ok(Setting::DefaultTopicQueueNums(n))
                }
                _ => Err(format!(
                    "defaultTopicQueueNums must be a whole number from 1 to \
                     {MAX_DEFAULT_TOPIC_QUEUE_NUMS}, not `{v}`"
                )),
            },
            "maxMessageSize" => match v.parse::<usize>() {
                Ok(n) if (MIN_MAX_MESSAGE_SIZE_BYTES..=MAX_MAX_MESSAGE_SIZE_BYTES).contains(&n) => {
                    Ok(Setting::MaxMessageSize(n))
                }
                _ => Err(format!(
                    "maxMessageSize must be a number of bytes from {MIN_MAX_MESSAGE_SIZE_BYTES} \
                     to {MAX_MAX_MESSAGE_SIZE_BYTES}, not `{v}`"
                )),
            },
            k if RESTART_KEYS.contains(&k) => Err(format!(
                "{k} cannot change while the broker runs: set it in the broker's TOML file and \
                 restart"
            )),
            k => Err(format!(
                "{k} is not a setting Petrel can change at runtime (those are \
                 autoCreateTopicEnable, defaultTopicQueueNums, maxMessageSize)"
            )),
        }
    }

    pub fn key(&self) -> &'static str {
        match self {
            Setting::AutoCreateTopicEnable(_) => "autoCreateTopicEnable",
            Setting::DefaultTopicQueueNums(_) => "defaultTopicQueueNums",
            Setting::MaxMessageSize(_) => "maxMessageSize",
        }
    }

    pub fn value_text(&self) -> String {
        match self {
            Setting::AutoCreateTopicEnable(v) => v.to_string(),
            Setting::DefaultTopicQueueNums(v) => v.to_string(),
            Setting::MaxMessageSize(v) => v.to_string(),
        }
    }

    /// Puts the setting into a config about to start a broker.
    fn apply_to(&self, config: &mut BrokerConfig) {
        match *self {
            Setting::AutoCreateTopicEnable(v) => config.auto_create_topic_enable = v,
            Setting::DefaultTopicQueueNums(v) => config.default_topic_queue_nums = v,
            Setting::MaxMessageSize(v) => config.max_message_bytes = v,
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key} must be true or false, not `{v}`")),
    }
}

/// Parses every `key=value` of a request; all of them or none.
pub fn parse_all(pairs: &BTreeMap<String, String>) -> Result<Vec<Setting>, String> {
    if pairs.is_empty() {
        return Err("the request carries no key=value to change".into());
    }
    pairs.iter().map(|(k, v)| Setting::parse(k, v)).collect()
}

/// The live values, read by the request paths.
pub struct RuntimeSettings {
    auto_create_topic_enable: AtomicBool,
    default_topic_queue_nums: AtomicI32,
    max_message_bytes: AtomicUsize,
    overrides_path: PathBuf,
    /// Held across a change, so two changes write the file one after the other.
    saved: Mutex<BTreeMap<String, String>>,
}

impl RuntimeSettings {
    /// The values of `config` (overrides already applied by [`apply_saved_overrides`]).
    pub fn new(config: &BrokerConfig) -> RuntimeSettings {
        let overrides_path = overrides_path(&config.store.root_dir);
        let saved = read_overrides(&overrides_path).unwrap_or_default();
        RuntimeSettings {
            auto_create_topic_enable: AtomicBool::new(config.auto_create_topic_enable),
            default_topic_queue_nums: AtomicI32::new(config.default_topic_queue_nums),
            max_message_bytes: AtomicUsize::new(config.max_message_bytes),
            overrides_path,
            saved: Mutex::new(saved),
        }
    }

    pub fn auto_create_topic_enable(&self) -> bool {
        self.auto_create_topic_enable.load(Ordering::Relaxed)
    }

    pub fn default_topic_queue_nums(&self) -> i32 {
        self.default_topic_queue_nums.load(Ordering::Relaxed)
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes.load(Ordering::Relaxed)
    }

    /// Writes `settings` to the overrides file (atomically), then puts them in force. Nothing
    /// changes when the file cannot be written.
    pub fn change(&self, settings: &[Setting]) -> io::Result<()> {
        let mut saved = self.saved.lock();
        let mut next = saved.clone();
        for s in settings {
            next.insert(s.key().to_owned(), s.value_text());
        }
        let text = serde_json::to_vec_pretty(&next).map_err(io::Error::other)?;
        petrel_store::metadata::write_atomic(&self.overrides_path, &text)?;
        *saved = next;
        for s in settings {
            match *s {
                Setting::AutoCreateTopicEnable(v) => {
                    self.auto_create_topic_enable.store(v, Ordering::Relaxed)
                }
                Setting::DefaultTopicQueueNums(v) => {
                    self.default_topic_queue_nums.store(v, Ordering::Relaxed)
                }
                Setting::MaxMessageSize(v) => self.max_message_bytes.store(v, Ordering::Relaxed),
            }
            tracing::info!(key = s.key(), value = %s.value_text(), "broker setting changed at runtime");
        }
        Ok(())
    }
}

fn overrides_path(root: &Path) -> PathBuf {
    root.join("config").join(OVERRIDES_FILE)
}

fn read_overrides(path: &Path) -> io::Result<BTreeMap<String, String>> {
    Ok(petrel_store::metadata::read_json(path)?.unwrap_or_default())
}

/// Applies the overrides file of `config`'s store, if there is one, on top of `config`; a file
/// that does not parse, or holds a key or value this version does not take, stops the start.
pub fn apply_saved_overrides(config: &mut BrokerConfig) -> Result<(), String> {
    let path = overrides_path(&config.store.root_dir);
    let saved = read_overrides(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (k, v) in &saved {
        let s = Setting::parse(k, v).map_err(|e| format!("{}: {e}", path.display()))?;
        s.apply_to(config);
    }
    if !saved.is_empty() {
        tracing::info!(file = %path.display(), keys = saved.len(), "broker settings changed at runtime applied over the config file");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_store::StoreConfig;

    fn config(root: &Path) -> BrokerConfig {
        BrokerConfig::new(StoreConfig::new(root.to_path_buf()))
    }

    fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn keys_and_values_are_checked_and_refusals_name_the_key() {
        assert_eq!(
            parse_all(&pairs(&[
                ("maxMessageSize", "2048"),
                ("autoCreateTopicEnable", "FALSE")
            ])),
            Ok(vec![
                Setting::AutoCreateTopicEnable(false),
                Setting::MaxMessageSize(2048)
            ])
        );
        let e = parse_all(&pairs(&[
            ("maxMessageSize", "2048"),
            ("flushDiskType", "SYNC_FLUSH"),
        ]))
        .unwrap_err();
        assert_eq!(
            e,
            "flushDiskType cannot change while the broker runs: set it in the broker's TOML \
             file and restart"
        );
        let e = Setting::parse("noSuchKey", "1").unwrap_err();
        assert!(e.starts_with("noSuchKey is not a setting"), "{e}");
        let e = Setting::parse("maxMessageSize", "12").unwrap_err();
        assert!(
            e.starts_with("maxMessageSize must be a number of bytes"),
            "{e}"
        );
        let e = Setting::parse("defaultTopicQueueNums", "0").unwrap_err();
        assert!(e.contains("not `0`"), "{e}");
        let e = Setting::parse("autoCreateTopicEnable", "yes").unwrap_err();
        assert_eq!(e, "autoCreateTopicEnable must be true or false, not `yes`");
        assert!(parse_all(&BTreeMap::new()).is_err());
    }

    #[test]
    fn a_change_is_in_force_at_once_and_applied_again_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        let c = config(dir.path());
        let live = RuntimeSettings::new(&c);
        assert_eq!(live.max_message_bytes(), c.max_message_bytes);
        live.change(&[Setting::MaxMessageSize(4096)]).unwrap();
        live.change(&[Setting::DefaultTopicQueueNums(3)]).unwrap();
        assert_eq!(live.max_message_bytes(), 4096);
        assert_eq!(live.default_topic_queue_nums(), 3);

        let mut next = config(dir.path());
        apply_saved_overrides(&mut next).unwrap();
        assert_eq!(next.max_message_bytes, 4096);
        assert_eq!(next.default_topic_queue_nums, 3);
        assert!(
            next.auto_create_topic_enable,
            "untouched keys keep the file's value"
        );
        let text = std::fs::read_to_string(dir.path().join("config").join(OVERRIDES_FILE)).unwrap();
        assert!(text.contains("\"maxMessageSize\": \"4096\""), "{text}");
    }

    #[test]
    fn a_bad_overrides_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join(OVERRIDES_FILE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, r#"{"maxMessageSize": "tiny"}"#).unwrap();
        let e = apply_saved_overrides(&mut config(dir.path())).unwrap_err();
        assert!(e.contains("maxMessageSize must be"), "{e}");
        assert_eq!(
            apply_saved_overrides(&mut config(&dir.path().join("none"))),
            Ok(())
        );
    }
}
