//! Test harness: start Petrel in-process on ephemeral ports.
