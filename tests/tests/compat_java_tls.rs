//! TLS with the official Java 4.9.8 client (compat/java Tls.java): a producer and a push consumer
//! with `setUseTLS(true)` send and consume through Petrel's name server and broker over TLS, with
//! the self-signed certificate Petrel made itself. Under `tlsServerMode = "enforcing"` a plaintext
//! producer cannot even reach the name server, so the TLS clients' traffic was encrypted; under
//! the default (permissive) a plaintext producer shares the same ports.

use std::path::Path;

use petrel::standalone::StandaloneConfig;
use petrel_tests::java::{scenario, unique_run_name};

/// Messages each producer sends.
const MESSAGES: usize = 60;

/// Petrel with `toml` as its broker config (both servers take its TLS keys in standalone).
fn petrel(dir: &Path, toml: &str) -> StandaloneConfig {
    let path = dir.join("broker.toml");
    std::fs::write(&path, toml).expect("write the broker config");
    let mut c = StandaloneConfig::ephemeral(dir.join("data"));
    c.broker_config_file = Some(path);
    c
}

fn run(config: StandaloneConfig, plaintext: &str) -> petrel_tests::process::ProgramRun {
    petrel_tests::process::run_against_petrel(config, "Tls.sendAndConsume", |petrel| {
        scenario(
            "Tls.sendAndConsume",
            &petrel.namesrv_addr,
            &unique_run_name(),
            &[
                ("messages", MESSAGES.to_string()),
                ("plaintext", plaintext.to_owned()),
            ],
        )
    })
}

#[test]
fn java_client_sends_and_consumes_over_tls_and_enforcing_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        petrel(dir.path(), "tlsServerMode = \"enforcing\"\n"),
        "refused",
    );
    assert_eq!(out.result("sent"), Some(&*MESSAGES.to_string()));
    assert_eq!(out.result("received"), Some(&*MESSAGES.to_string()));
    assert!(
        out.result("plaintextRefusedWith").is_some(),
        "{}",
        out.stdout
    );
    // The certificate both servers used was made at the first start and kept for the next.
    let tls_dir = dir.path().join("data/config/tls");
    for file in ["server.crt", "server.key"] {
        assert!(tls_dir.join(file).is_file(), "{file} under {tls_dir:?}");
    }
}

#[test]
fn permissive_by_default_serves_java_tls_and_plaintext_clients_on_the_same_ports() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(petrel(dir.path(), ""), "served");
    assert_eq!(out.result("sent"), Some(&*(2 * MESSAGES).to_string()));
    assert_eq!(out.result("received"), Some(&*(2 * MESSAGES).to_string()));
}
