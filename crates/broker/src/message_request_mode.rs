//! Whether a consumer group pulls or pops a topic (RocketMQ 5.x's message request mode, set by
//! `mqadmin setConsumeMode`), persisted to `config/messageRequestMode.json`. A 5.x push consumer
//! with `clientRebalance = false` asks for it in QUERY_ASSIGNMENT.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parking_lot::RwLock;
use petrel_store::metadata;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RequestMode {
    #[default]
    Pull,
    Pop,
}

/// One group's setting on one topic (RocketMQ's SetMessageRequestModeRequestBody).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestModeSetting {
    pub topic: String,
    pub consumer_group: String,
    #[serde(default)]
    pub mode: RequestMode,
    /// POP: how many consumers share each queue; 0 or less, or at least the consumers but
    /// one: every consumer pops from every queue.
    #[serde(default)]
    pub pop_share_queue_num: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestModeTable {
    /// topic → group → setting.
    message_request_mode_map: BTreeMap<String, BTreeMap<String, RequestModeSetting>>,
}

pub struct RequestModeManager {
    path: PathBuf,
    table: RwLock<RequestModeTable>,
}

impl RequestModeManager {
    pub fn load(path: PathBuf) -> std::io::Result<Self> {
        let table = metadata::read_json(&path)?.unwrap_or_default();
        Ok(RequestModeManager {
            path,
            table: RwLock::new(table),
        })
    }

    pub fn get(&self, topic: &str, group: &str) -> Option<RequestModeSetting> {
        self.table
            .read()
            .message_request_mode_map
            .get(topic)
            .and_then(|groups| groups.get(group))
            .cloned()
    }

    pub fn set(&self, setting: RequestModeSetting) -> std::io::Result<()> {
        self.table
            .write()
            .message_request_mode_map
            .entry(setting.topic.clone())
            .or_default()
            .insert(setting.consumer_group.clone(), setting);
        metadata::write_json(&self.path, &*self.table.read())
    }

    /// The whole table as GET_ALL_MESSAGE_REQUEST_MODE answers it.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.table.read()).expect("plain JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_persist_in_rocketmq_s_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messageRequestMode.json");
        let m = RequestModeManager::load(path.clone()).unwrap();
        let s: RequestModeSetting = serde_json::from_str(
            r#"{"topic":"T","consumerGroup":"G","mode":"POP","popShareQueueNum":0}"#,
        )
        .unwrap();
        m.set(s.clone()).unwrap();
        let again = RequestModeManager::load(path).unwrap();
        assert_eq!(again.get("T", "G"), Some(s));
        assert_eq!(again.get("T", "other"), None);
        let all: serde_json::Value = serde_json::from_slice(&again.encode()).unwrap();
        assert_eq!(all["messageRequestModeMap"]["T"]["G"]["mode"], "POP");
    }
}
