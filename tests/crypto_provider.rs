//! The gateway builds every TLS configuration of its own with its own crypto
//! provider: validating settings and starting a gateway with a TLS listener
//! and a client certificate for the upstream install no process-wide rustls
//! provider. (This file is its own test process, so nothing else installs one.)

mod support;

use dcr_gateway::Gateway;
use dcr_gateway::config::RawConfig;
use rustls::crypto::CryptoProvider;
use support::pki::{Ca, write};

#[tokio::test]
async fn validating_and_starting_leave_the_process_default_provider_alone() {
    let dir = support::temp_dir("provider");
    let listener_ca = Ca::new("listener CA");
    let server = listener_ca.server();
    let client = Ca::new("gateway client CA").client(Vec::new());
    let mut raw = RawConfig {
        dev_upstream: Some(true),
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("off".into()),
        tls_cert: Some(
            write(&dir, "server.pem", &server.cert)
                .display()
                .to_string(),
        ),
        tls_key: Some(
            write(&dir, "server-key.pem", &server.key)
                .display()
                .to_string(),
        ),
        upstream_ca_file: Some(
            write(&dir, "ca.pem", &listener_ca.pem)
                .display()
                .to_string(),
        ),
        upstream_client_cert: Some(
            write(&dir, "client.pem", &client.cert)
                .display()
                .to_string(),
        ),
        upstream_client_key: Some(
            write(&dir, "client-key.pem", &client.key)
                .display()
                .to_string(),
        ),
        ..Default::default()
    };
    raw.token_store.backend = Some("memory".into());

    let config = raw.validate().expect("valid settings");
    assert!(
        CryptoProvider::get_default().is_none(),
        "validating the settings installed a process-wide crypto provider"
    );
    let gateway = Gateway::bind(config).await.expect("the gateway starts");
    assert!(gateway.local_addr().is_ok());
    assert!(
        CryptoProvider::get_default().is_none(),
        "starting the gateway installed a process-wide crypto provider"
    );
}
