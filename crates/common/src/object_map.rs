//! Reading fastjson's maps with object keys. Java bodies such as `ResetOffsetBody` hold a
//! `Map<MessageQueue, Long>`, which fastjson writes as `{{"brokerName":..,"queueId":0,..}:12}`:
//! not JSON, so serde cannot read it directly. This reads such a map entry by entry, letting
//! serde parse each key and each value.

use serde::de::DeserializeOwned;

/// Reads the object-keyed map under `"field":` in `text` (for example `offsetTable`).
pub fn parse_object_key_map<K, V>(text: &[u8], field: &str) -> Result<Vec<(K, V)>, String>
where
    K: DeserializeOwned,
    V: DeserializeOwned,
{
    let needle = format!("\"{field}\"");
    let start = find(text, needle.as_bytes())
        .ok_or_else(|| format!("no \"{field}\" in the body"))?
        + needle.len();
    let mut at = skip_ws(text, start);
    at = expect(text, at, b':', field)?;
    at = expect(text, skip_ws(text, at), b'{', field)?;
    let mut entries = Vec::new();
    loop {
        at = skip_ws(text, at);
        match text.get(at) {
            Some(b'}') => return Ok(entries),
            Some(b',') if !entries.is_empty() => at = skip_ws(text, at + 1),
            Some(_) if entries.is_empty() => {}
            _ => return Err(format!("{field}: expected ',' or '}}' at byte {at}")),
        }
        let (key, next) = one_value::<K>(text, at, field)?;
        at = expect(text, skip_ws(text, next), b':', field)?;
        let (value, next) = one_value::<V>(text, skip_ws(text, at), field)?;
        entries.push((key, value));
        at = next;
    }
}

fn one_value<T: DeserializeOwned>(
    text: &[u8],
    at: usize,
    field: &str,
) -> Result<(T, usize), String> {
    let mut stream = serde_json::Deserializer::from_slice(&text[at..]).into_iter::<T>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, at + stream.byte_offset())),
        Some(Err(e)) => Err(format!("{field}: bad entry at byte {at}: {e}")),
        None => Err(format!("{field}: the body ends at byte {at}")),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn skip_ws(text: &[u8], mut at: usize) -> usize {
    while text.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

fn expect(text: &[u8], at: usize, want: u8, field: &str) -> Result<usize, String> {
    if text.get(at) == Some(&want) {
        Ok(at + 1)
    } else {
        Err(format!("{field}: expected '{}' at byte {at}", want as char))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MessageQueue;

    #[test]
    fn reads_message_queue_keys() {
        let text = br#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:12, {"brokerName":"b","queueId":1,"topic":"T"} : 7}}"#;
        let rows: Vec<(MessageQueue, i64)> = parse_object_key_map(text, "offsetTable").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].0.queue_id, rows[0].1), (0, 12));
        assert_eq!((rows[1].0.queue_id, rows[1].1), (1, 7));
        assert_eq!(rows[1].0.topic, "T");
    }

    #[test]
    fn empty_and_broken_maps() {
        let rows: Vec<(MessageQueue, i64)> =
            parse_object_key_map(br#"{"offsetTable":{}}"#, "offsetTable").unwrap();
        assert!(rows.is_empty());
        let err =
            parse_object_key_map::<MessageQueue, i64>(br#"{"x":{}}"#, "offsetTable").unwrap_err();
        assert!(err.contains("no \"offsetTable\""), "{err}");
        let err = parse_object_key_map::<MessageQueue, i64>(
            br#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"} 12}}"#,
            "offsetTable",
        )
        .unwrap_err();
        assert!(err.contains("expected ':'"), "{err}");
    }
}
