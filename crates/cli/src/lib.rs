//! The `petrel` binary's library side: running the server roles in one process (standalone) or
//! apart, and the commands for humans (send, consume) and benchmarks. Tests start Petrel through
//! [`standalone::Standalone`] exactly as the binary does.

pub mod standalone;
