//! The stored message record (commit-log format, also the pull body unit).
