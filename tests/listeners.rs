//! The gRPC listeners over real sockets: TLS, mutual TLS with the caller's
//! certificate identity as its token-store namespace, certificate reload
//! without a restart, the Unix socket listener, and the health-only listener.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use dcr_gateway::Gateway;
use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use dcr_gateway::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use dcr_gateway::store::{FileStore, Tokens};
use support::pki::{Ca, dns, spiffe, tls_channel, write};
use support::scripted::{Answer, Scripted};
use support::{Client, TestGateway, dev_upstream, get_req, machine_client, register};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn temp_dir(name: &str) -> support::TempDir {
    support::temp_dir(&format!("listen-{name}"))
}

/// Settings for a TLS listener from the files in `dir`.
fn tls_settings(dir: &Path, mutual: bool) -> RawConfig {
    RawConfig {
        tls_cert: Some(dir.join("cert.pem").display().to_string()),
        tls_key: Some(dir.join("key.pem").display().to_string()),
        tls_client_ca: mutual.then(|| dir.join("client-ca.pem").display().to_string()),
        tls_reload_interval: Some("100ms".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn tls_listener_serves_and_refuses_plaintext() {
    let dir = temp_dir("tls");
    let ca = Ca::new("server CA");
    let server = ca.server();
    write(&dir, "cert.pem", &server.cert);
    write(&dir, "key.pem", &server.key);
    let dev = dev_upstream().await;
    let gw = TestGateway::start_with(&dev.base_url(), tls_settings(&dir, false)).await;

    let channel = tls_channel(gw.addr.port(), &ca.pem, None)
        .await
        .expect("TLS connects");
    let mut client = Client::new(channel);
    let registered = register(&mut client, "over-tls").await;
    let got = client
        .get_client(get_req(&registered.client_id, None))
        .await
        .expect("get over TLS")
        .into_inner();
    assert_eq!(got.client.unwrap().client_id, registered.client_id);

    // A plaintext HTTP/2 client gets no gRPC answer from a TLS listener.
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let err = Client::new(plain)
        .get_client(get_req(&registered.client_id, None))
        .await
        .expect_err("plaintext must not be served");
    assert_ne!(err.code(), Code::Ok);
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_and_namespaces_by_identity() {
    let dir = temp_dir("mtls");
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let server = server_ca.server();
    write(&dir, "cert.pem", &server.cert);
    write(&dir, "key.pem", &server.key);
    write(&dir, "client-ca.pem", &client_ca.pem);
    let store_path = dir.join("tokens.redb");
    let mut raw = tls_settings(&dir, true);
    raw.token_store.backend = Some("file".into());
    raw.token_store.path = Some(store_path.display().to_string());
    raw.token_store.allow_plaintext_store = Some(true);
    let dev = dev_upstream().await;
    let mut gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let port = gw.addr.port();

    // No certificate: the handshake fails, so no call gets through.
    let refused = match tls_channel(port, &server_ca.pem, None).await {
        Err(_) => true,
        Ok(ch) => Client::new(ch)
            .get_client(get_req("any", Some("rat-rat-rat-rat")))
            .await
            .is_err(),
    };
    assert!(
        refused,
        "a client without a certificate was served under mutual TLS"
    );

    // A certificate from another CA is refused too.
    let stranger = Ca::new("other CA").client(vec![dns("stranger.example")]);
    let refused = match tls_channel(port, &server_ca.pem, Some(&stranger)).await {
        Err(_) => true,
        Ok(ch) => Client::new(ch)
            .get_client(get_req("any", Some("rat-rat-rat-rat")))
            .await
            .is_err(),
    };
    assert!(refused, "a certificate from an untrusted CA was accepted");

    let billing_id = "spiffe://example.org/ns/shop/sa/billing";
    let billing = client_ca.client(vec![dns("ignored.example"), spiffe(billing_id)]);
    let inventory = client_ca.client(vec![dns("inventory.shop.svc")]);
    let mut billing_client = Client::new(
        tls_channel(port, &server_ca.pem, Some(&billing))
            .await
            .expect("billing connects"),
    );
    let mut inventory_client = Client::new(
        tls_channel(port, &server_ca.pem, Some(&inventory))
            .await
            .expect("inventory connects"),
    );

    let mine = register(&mut billing_client, "billing").await;
    billing_client
        .get_client(get_req(&mine.client_id, None))
        .await
        .expect("the registering workload manages its client with the stored token");
    let err = inventory_client
        .get_client(get_req(&mine.client_id, None))
        .await
        .expect_err("another workload has no token for it");
    assert_ne!(err.code(), Code::Ok);
    let theirs = register(&mut inventory_client, "inventory").await;

    gw.signal_shutdown();
    gw.task.await.unwrap();
    let store = FileStore::open(&store_path, None).expect("store opens after shutdown");
    let mut entries: Vec<(String, String)> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| (k.namespace, k.client_id))
        .collect();
    entries.sort();
    let mut expected = vec![
        (billing_id.to_owned(), mine.client_id.clone()),
        ("inventory.shop.svc".to_owned(), theirs.client_id.clone()),
    ];
    expected.sort();
    assert_eq!(entries, expected);
}

#[tokio::test]
async fn a_changed_certificate_is_served_without_a_restart() {
    let dir = temp_dir("reload");
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let old = old_ca.server();
    write(&dir, "cert.pem", &old.cert);
    write(&dir, "key.pem", &old.key);
    let dev = dev_upstream().await;
    let gw = TestGateway::start_with(&dev.base_url(), tls_settings(&dir, false)).await;
    let port = gw.addr.port();
    let mut client = Client::new(
        tls_channel(port, &old_ca.pem, None)
            .await
            .expect("old certificate served"),
    );
    register(&mut client, "before-reload").await;
    assert!(
        tls_channel(port, &new_ca.pem, None).await.is_err(),
        "new CA trusted too early"
    );

    // Replace the pair (key first, then certificate: a half-written pair is
    // refused and the old one kept) and wait for the new one to be served.
    let new = new_ca.server();
    write(&dir, "key.pem", &new.key);
    write(&dir, "cert.pem", &new.cert);
    let deadline = Instant::now() + Duration::from_secs(20);
    let channel = loop {
        if let Ok(ch) = tls_channel(port, &new_ca.pem, None).await {
            break ch;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    register(&mut Client::new(channel), "after-reload").await;
    assert!(
        tls_channel(port, &old_ca.pem, None).await.is_err(),
        "the old certificate is still served"
    );
}

#[tokio::test]
async fn the_unix_socket_listener_serves_the_full_flow() {
    let dir = temp_dir("uds");
    let socket = dir.join("dcr.sock");
    let dev = dev_upstream().await;
    let raw = RawConfig {
        listen: Some(format!("unix:{}", socket.display())),
        unix_socket_mode: Some("0600".into()),
        health_listen: Some("127.0.0.1:0".into()),
        upstream: Some(dev.base_url()),
        admin_listen: Some("off".into()),
        ..Default::default()
    };
    let mut raw = raw;
    raw.token_store.backend = Some("memory".into());
    let gateway = Gateway::bind(raw.validate().unwrap())
        .await
        .expect("binds the socket");
    let health_addr = gateway.health_addr().expect("health listener");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(async move {
        let _ = stopped.await;
    }));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let path = socket.clone();
    let channel = tonic::transport::Endpoint::from_static("http://uds.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .expect("connects over the socket");
    let mut client = DynamicClientRegistrationClient::new(channel);
    let c = register(&mut client, "over-uds").await;
    let id = c.client_id.clone();
    client.get_client(get_req(&id, None)).await.expect("get");
    let mut metadata = machine_client("renamed");
    metadata.client_name = Some("renamed".into());
    let updated = client
        .update_client(pb::UpdateClientRequest {
            client_id: id.clone(),
            metadata: Some(metadata),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        updated
            .client
            .unwrap()
            .metadata
            .unwrap()
            .client_name
            .as_deref(),
        Some("renamed")
    );
    client
        .rotate_client_secret(pb::RotateClientSecretRequest {
            client_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("rotate secret");
    client
        .rotate_registration_token(pb::RotateRegistrationTokenRequest {
            client_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("rotate token");
    client
        .delete_client(pb::DeleteClientRequest {
            client_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");

    // The health-only listener answers probes over plain TCP.
    let mut health = HealthClient::new(support::channel(health_addr).await);
    for service in ["", "dcr.v1.DynamicClientRegistration"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }

    let _ = stop.send(());
    task.await.unwrap().expect("serves until stopped");
    assert!(!socket.exists(), "the socket file is removed at shutdown");
}

/// A RegisterClient through a gateway with `raw` settings to `upstream`; the
/// upstream answers 500, so a call that reached it is INTERNAL.
async fn register_code(upstream: &str, raw: RawConfig) -> Code {
    let gw = TestGateway::start_with(upstream, raw).await;
    let req = pb::RegisterClientRequest {
        metadata: Some(machine_client("tls-upstream")),
        initial_access_token: None,
    };
    match gw.client().await.register_client(req).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn upstream_tls_uses_the_extra_ca_and_client_certificate() {
    let dir = temp_dir("upstream-tls");
    let ca = Ca::new("private upstream CA");
    let gateway_ca = Ca::new("gateway client CA");
    let client = gateway_ca.client(vec![dns("dcr-gateway.example")]);
    let ca_file = write(&dir, "upstream-ca.pem", &ca.pem);
    let cert_file = write(&dir, "client.pem", &client.cert);
    let key_file = write(&dir, "client-key.pem", &client.key);
    let tls = support::pki::server_config(&ca.server(), Some(&gateway_ca));
    let failure = Answer::json(500, r#"{"error":"server_error"}"#);
    let upstream = Scripted::start_tls(vec![failure], tls).await;
    let url = upstream.https_url();
    let full = || RawConfig {
        upstream_ca_file: Some(ca_file.display().to_string()),
        upstream_client_cert: Some(cert_file.display().to_string()),
        upstream_client_key: Some(key_file.display().to_string()),
        require_upstream_tls: Some(true),
        max_attempts: Some(1),
        ..Default::default()
    };

    // Without the extra CA the server is not trusted; without the client
    // certificate it refuses the handshake: neither request arrives.
    let no_ca = RawConfig {
        upstream_ca_file: None,
        ..full()
    };
    assert_eq!(register_code(&url, no_ca).await, Code::Unavailable);
    let no_cert = RawConfig {
        upstream_client_cert: None,
        upstream_client_key: None,
        ..full()
    };
    assert_eq!(register_code(&url, no_cert).await, Code::Unavailable);
    assert!(
        upstream.requests().is_empty(),
        "a request crossed a failed handshake"
    );

    assert_eq!(register_code(&url, full()).await, Code::Internal);
    assert_eq!(
        upstream.requests().len(),
        1,
        "the request arrived over mutual TLS"
    );
}
