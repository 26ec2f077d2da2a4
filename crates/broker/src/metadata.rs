//! Loading and saving the broker's JSON metadata files (topics, groups, offsets) through the
//! store's atomic write, so a crash never leaves half a file.

use std::path::Path;

use serde::de::DeserializeOwned;

pub use petrel_store::metadata::write_atomic;

/// Reads a JSON file; `None` if it does not exist.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => petrel_common::protocol::from_fastjson(&bytes)
            .map(Some)
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
