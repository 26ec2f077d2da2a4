//! The `petrel` binary's library side: running the server roles in one process (standalone) or
//! apart, the commands for humans (send, consume) and the ACL account they sign with, the times and delays they take, and the
//! benchmarks. Tests start Petrel through [`standalone::Standalone`] exactly as the binary does.

pub mod acl_args;
pub mod admin;
pub mod bench;
pub mod config_file;
pub mod dashboard;
pub mod progress;
pub mod standalone;
pub mod time_arg;
pub mod tools;
