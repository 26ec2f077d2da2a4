//! Message ids (reference §4.7): the broker's offsetMsgId (store host + commit-log offset) and
//! the client-side UNIQ_KEY.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// offsetMsgId: store IP, store port (i32) and commit-log offset (i64), as uppercase hex.
pub fn offset_msg_id(store_host: SocketAddr, physical_offset: i64) -> String {
    let mut bytes = Vec::with_capacity(28);
    match store_host.ip() {
        IpAddr::V4(ip) => bytes.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => bytes.extend_from_slice(&ip.octets()),
    }
    bytes.extend_from_slice(&(store_host.port() as i32).to_be_bytes());
    bytes.extend_from_slice(&physical_offset.to_be_bytes());
    hex_upper(&bytes)
}

/// Decodes an offsetMsgId into the broker address and commit-log offset.
pub fn decode_offset_msg_id(id: &str) -> Option<(SocketAddr, i64)> {
    let bytes = from_hex(id)?;
    let ip_len = match bytes.len() {
        16 => 4,
        28 => 16,
        _ => return None,
    };
    let ip = if ip_len == 4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        let mut o = [0u8; 16];
        o.copy_from_slice(&bytes[..16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    let port = i32::from_be_bytes(bytes[ip_len..ip_len + 4].try_into().ok()?);
    let offset = i64::from_be_bytes(bytes[ip_len + 4..ip_len + 12].try_into().ok()?);
    Some((SocketAddr::new(ip, u16::try_from(port).ok()?), offset))
}

pub fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xF) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Generates UNIQ_KEYs in the client's shape: a fixed 12-byte prefix (IP, process id, a random
/// number), then milliseconds since a start time and a counter. Only uniqueness matters to clients.
pub struct UniqIdGenerator {
    prefix: String,
    start_ms: u64,
    counter: AtomicU16,
}

impl UniqIdGenerator {
    pub fn new(ip: IpAddr) -> Self {
        let mut prefix = Vec::with_capacity(10);
        match ip {
            IpAddr::V4(v4) => prefix.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => prefix.extend_from_slice(&v6.octets()),
        }
        prefix.extend_from_slice(&(std::process::id() as u16).to_be_bytes());
        prefix.extend_from_slice(&rand::random::<u32>().to_be_bytes());
        UniqIdGenerator {
            prefix: hex_upper(&prefix),
            start_ms: now_ms(),
            counter: AtomicU16::new(rand::random()),
        }
    }

    pub fn next_id(&self) -> String {
        let elapsed = (now_ms() - self.start_ms) as u32;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut tail = [0u8; 6];
        tail[..4].copy_from_slice(&elapsed.to_be_bytes());
        tail[4..].copy_from_slice(&n.to_be_bytes());
        let mut id = String::with_capacity(self.prefix.len() + 12);
        id.push_str(&self.prefix);
        id.push_str(&hex_upper(&tail));
        id
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_msg_id_matches_the_reference_example() {
        let addr: SocketAddr = "10.0.0.1:10911".parse().unwrap();
        let id = offset_msg_id(addr, 0x1A2B);
        assert_eq!(id, "0A00000100002A9F0000000000001A2B");
        assert_eq!(decode_offset_msg_id(&id), Some((addr, 0x1A2B)));
    }

    #[test]
    fn uniq_ids_are_unique_and_32_hex_chars() {
        let g = UniqIdGenerator::new("127.0.0.1".parse().unwrap());
        let a = g.next_id();
        let b = g.next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}
