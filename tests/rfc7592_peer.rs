//! The generic RFC 7591/7592 profile against a real peer, node-oidc-provider
//! (installed from the committed lockfile with `npm ci`), and the profile's
//! guards: discovery, foreign `registration_client_uri`, rotation on read.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use prost_types::FieldMask;
use support::scripted::{Answer, Scripted};
use support::{Client, TestGateway, dev_upstream, get_req};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;
use tonic::Code;

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc-provider")
}

/// Runs `npm ci` once per test binary when the peer's dependencies are missing.
async fn install_peer() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            if peer_dir().join("node_modules/oidc-provider").exists() {
                return;
            }
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(peer_dir())
                .status()
                .await
                .unwrap_or_else(|e| panic!("cannot run npm ({e}): install Node.js and npm to run the rfc7592 peer tests"));
            assert!(status.success(), "npm ci failed in {}", peer_dir().display());
        })
        .await;
}

/// Starts node-oidc-provider; returns the process and its issuer URL.
async fn oidc_provider(initial_access_token: Option<&str>) -> (Child, String) {
    match initial_access_token {
        Some(iat) => oidc_provider_with(&[("INITIAL_ACCESS_TOKEN", iat)]).await,
        None => oidc_provider_with(&[]).await,
    }
}

/// Starts node-oidc-provider with `env` (see server.mjs).
async fn oidc_provider_with(env: &[(&str, &str)]) -> (Child, String) {
    install_peer().await;
    let mut cmd = Command::new("node");
    cmd.arg("server.mjs")
        .current_dir(peer_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(port) = line.strip_prefix("listening ") {
                return port.trim().to_owned();
            }
        }
        panic!("oidc-provider exited before listening");
    })
    .await
    .expect("oidc-provider starts");
    (child, format!("http://127.0.0.1:{port}"))
}

fn generic() -> RawConfig {
    RawConfig {
        upstream_profile: Some("rfc7592".into()),
        retry_backoff_base: Some("1ms".into()),
        ..Default::default()
    }
}

fn web_client(name: &str) -> pb::ClientMetadata {
    pb::ClientMetadata {
        client_name: Some(name.into()),
        redirect_uris: vec!["https://app.example/cb".into()],
        ..Default::default()
    }
}

fn update(id: &str, metadata: pb::ClientMetadata, mask: &[&str]) -> pb::UpdateClientRequest {
    pb::UpdateClientRequest {
        client_id: id.into(),
        registration_access_token: None,
        metadata: Some(metadata),
        update_mask: (!mask.is_empty()).then(|| FieldMask {
            paths: mask.iter().map(|p| p.to_string()).collect(),
        }),
    }
}

async fn full_flow(client: &mut Client, iat: Option<&str>) {
    let reg = pb::RegisterClientRequest {
        metadata: Some(web_client("peer")),
        initial_access_token: iat.map(Into::into),
    };
    let created = client
        .register_client(reg)
        .await
        .expect("register")
        .into_inner()
        .client
        .unwrap();
    let id = created.client_id.clone();
    let rat1 = created.registration_access_token.clone().expect("a RAT");
    assert!(created.registration_client_uri.contains(&id));

    let got = client
        .get_client(get_req(&id, None))
        .await
        .expect("get with the stored RAT")
        .into_inner()
        .client
        .unwrap();
    assert_eq!(got.metadata.unwrap().client_name.as_deref(), Some("peer"));

    // A masked update: read, merge, PUT with client_id; the server rotates the RAT.
    let meta = pb::ClientMetadata {
        client_name: Some("peer-renamed".into()),
        ..Default::default()
    };
    let updated = client
        .update_client(update(&id, meta, &["client_name"]))
        .await
        .expect("masked update")
        .into_inner();
    let updated = updated.client.unwrap();
    let rat2 = updated
        .registration_access_token
        .expect("the server rotated the RAT on update");
    assert_ne!(rat2, rat1);
    let m = updated.metadata.unwrap();
    assert_eq!(m.client_name.as_deref(), Some("peer-renamed"));
    assert_eq!(
        m.redirect_uris,
        vec!["https://app.example/cb"],
        "the mask kept the rest"
    );

    // The old RAT is dead at the server; the gateway followed the rotation.
    let err = client
        .get_client(get_req(&id, Some(&rat1)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    client
        .get_client(get_req(&id, None))
        .await
        .expect("the stored RAT is the rotated one");

    // A full update rotates again, and is followed again.
    client
        .update_client(update(&id, web_client("peer-full"), &[]))
        .await
        .expect("full update");
    client
        .get_client(get_req(&id, None))
        .await
        .expect("followed the second rotation");

    let secret = pb::RotateClientSecretRequest {
        client_id: id.clone(),
        registration_access_token: None,
    };
    let err = client.rotate_client_secret(secret).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(
        err.message()
            .contains("no secret or registration-token rotation"),
        "{}",
        err.message()
    );
    let rat = pb::RotateRegistrationTokenRequest {
        client_id: id.clone(),
        registration_access_token: None,
    };
    assert_eq!(
        client
            .rotate_registration_token(rat)
            .await
            .unwrap_err()
            .code(),
        Code::Unimplemented
    );

    let delete = pb::DeleteClientRequest {
        client_id: id.clone(),
        registration_access_token: None,
    };
    client.delete_client(delete).await.expect("delete");
    let err = client.get_client(get_req(&id, None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn generic_profile_runs_the_flow_against_node_oidc_provider() {
    let (_peer, issuer) = oidc_provider(None).await;
    // No registration endpoint configured: it is discovered from the issuer.
    let gw = TestGateway::start_with(&issuer, generic()).await;
    full_flow(&mut gw.client().await, None).await;
}

#[tokio::test]
async fn generic_profile_with_an_initial_access_token() {
    let iat = "peer-initial-access-token-0123456789";
    let (_peer, issuer) = oidc_provider(Some(iat)).await;
    let gw = TestGateway::start_with(&issuer, generic()).await;
    let mut client = gw.client().await;
    let reg = pb::RegisterClientRequest {
        metadata: Some(web_client("no-iat")),
        initial_access_token: None,
    };
    let err = client.register_client(reg).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    full_flow(&mut client, Some(iat)).await;
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration() {
    let reg = r#"{"issuer":"{self}","registration_endpoint":"{self}/connect/register"}"#;
    // The first answer (RFC 8414 metadata) is a 404; the second (OIDC) names the endpoint.
    let upstream = Scripted::start(vec![Answer::json(404, "{}"), Answer::json(200, reg)]).await;
    let _gw = TestGateway::start_with(&upstream.url(), generic()).await;
    let paths: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration"
        ]
    );
}

#[tokio::test]
async fn a_foreign_registration_client_uri_gets_nothing() {
    let foreign = Scripted::start(vec![Answer::json(200, r#"{"client_id":"c1"}"#)]).await;
    let register_answer = format!(
        r#"{{"client_id":"c1","registration_access_token":"rat-0123456789","registration_client_uri":"{}/steal/c1"}}"#,
        foreign.url()
    );
    let upstream = Scripted::start(vec![Answer::json(201, &register_answer)]).await;
    let raw = RawConfig {
        registration_endpoint: Some(format!("{}/reg", upstream.url())),
        ..generic()
    };
    let gw = TestGateway::start_with(&upstream.url(), raw).await;
    let mut client = gw.client().await;
    let reg = pb::RegisterClientRequest {
        metadata: Some(web_client("lured")),
        initial_access_token: None,
    };
    client.register_client(reg).await.expect("register");
    let err = client.get_client(get_req("c1", None)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("origin"), "{}", err.message());
    assert!(
        foreign.requests().is_empty(),
        "the foreign origin received nothing"
    );
    assert_eq!(
        upstream.requests().len(),
        1,
        "and nothing else went upstream"
    );
}

#[tokio::test]
async fn rotation_on_read_and_on_update_is_followed() {
    let dev = dev_upstream().await;
    dev.rotate_on_read_and_update(true);
    let gw = TestGateway::start(&dev.base_url()).await;
    let mut client = gw.client().await;
    let created = support::register(&mut client, "rotating").await;
    let mut last = created.registration_access_token.unwrap();
    for _ in 0..3 {
        let got = client
            .get_client(get_req(&created.client_id, None))
            .await
            .expect("read with the latest RAT");
        let rat = got
            .into_inner()
            .client
            .unwrap()
            .registration_access_token
            .expect("a new RAT on every read");
        assert_ne!(rat, last);
        last = rat;
    }
    let meta = support::machine_client("rotating2");
    let updated = client
        .update_client(update(&created.client_id, meta, &[]))
        .await
        .expect("update with the latest RAT");
    assert!(
        updated
            .into_inner()
            .client
            .unwrap()
            .registration_access_token
            .is_some()
    );
    client
        .get_client(get_req(&created.client_id, None))
        .await
        .expect("followed the rotation on update");
}

#[tokio::test]
async fn managed_clients_on_the_generic_profile() {
    let (_peer, issuer) = oidc_provider(None).await;
    let gw = TestGateway::start_with(&issuer, generic()).await;
    let mut client = gw.client().await;
    let ensure = |name: &str| pb::EnsureClientRequest {
        name: "peer-app".into(),
        metadata: Some(web_client(name)),
        initial_access_token: None,
    };
    let created = client
        .ensure_client(ensure("managed"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.outcome(), pb::EnsureOutcome::Created);
    let created = created.client.unwrap();
    assert!(created.client_secret.is_some());
    let again = client
        .ensure_client(ensure("managed"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.outcome(), pb::EnsureOutcome::Unchanged);
    assert_eq!(again.client.as_ref().unwrap().client_id, created.client_id);
    let changed = client
        .ensure_client(ensure("managed v2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.outcome(), pb::EnsureOutcome::Updated);
    let held = client
        .get_client(get_req(&created.client_id, None))
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    assert_eq!(
        held.metadata.unwrap().client_name.as_deref(),
        Some("managed v2")
    );
    client
        .forget_client(pb::ForgetClientRequest {
            name: "peer-app".into(),
            delete_upstream: true,
        })
        .await
        .unwrap();
    let err = client
        .get_client(get_req(&created.client_id, None))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "deleted at the server: {err:?}"
    );
}

#[tokio::test]
async fn a_declared_client_on_the_generic_profile_gets_its_discovered_token_endpoint_and_no_false_drift()
 {
    let (_peer, issuer) = oidc_provider(None).await;
    let dir = support::temp_dir("generic-declared");
    let mut metadata = serde_json::Map::new();
    metadata.insert("client_name".into(), "declared".into());
    metadata.insert(
        "redirect_uris".into(),
        serde_json::json!(["https://app.example/cb"]),
    );
    let raw = RawConfig {
        clients: vec![dcr_gateway::config::RawClient {
            name: "peer-declared".into(),
            namespace: None,
            metadata,
            rotate_secret_every: None,
            rotate_before_expiry: None,
            credentials_file: None,
            deliver_secret: None,
            tokens: Vec::new(),
        }],
        credentials_dir: Some(dir.to_str().unwrap().into()),
        reconcile_interval: Some("1s".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        ..generic()
    };
    let gw = TestGateway::start_with(&issuer, raw).await;
    let file = dir.join("peer-declared.json");
    let written = support::eventually(Duration::from_secs(15), || async {
        support::managed::read_file(&file)
    })
    .await;
    let discovered: serde_json::Value = serde_json::from_str(
        &support::http_get(format!("{issuer}/.well-known/openid-configuration"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(written["token_endpoint"], discovered["token_endpoint"]);
    // The server's defaults and normalisation are never taken for drift.
    let unchanged = r#"dcr_managed_reconciles_total{outcome="unchanged"}"#;
    support::eventually(Duration::from_secs(15), || async {
        (gw.metric(unchanged).await >= 3.0).then_some(())
    })
    .await;
    assert_eq!(gw.metric("dcr_managed_drift_total").await, 0.0);
    assert_eq!(
        gw.metric(r#"dcr_managed_reconciles_total{outcome="updated"}"#)
            .await,
        0.0
    );
}

#[tokio::test]
async fn private_key_jwt_clients_get_tokens_with_signed_assertions_across_a_key_rotation() {
    // Tokens live 2 s, so the gateway asks for new ones all along.
    let (_peer, issuer) = oidc_provider_with(&[("CLIENT_CREDENTIALS_TTL", "2")]).await;
    let mut declared = support::managed::declared("keyed", Some("1s"));
    declared.metadata = match serde_json::to_value(keyed_metadata_json()).unwrap() {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    };
    let raw = RawConfig {
        clients: vec![declared],
        reconcile_interval: Some("1s".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        ..generic()
    };
    let gw = TestGateway::start_with(&issuer, raw).await;
    let mut client = gw.client().await;
    let token = |c: &Client| {
        let mut c = c.clone();
        async move {
            c.get_access_token(pb::GetAccessTokenRequest {
                name: "keyed".into(),
                scopes: Vec::new(),
                resource: Vec::new(),
            })
            .await
        }
    };
    let first = support::eventually(Duration::from_secs(20), || async {
        token(&client).await.ok()
    })
    .await
    .into_inner();
    assert!(!first.access_token.is_empty());
    // The key rotates a second after it was made: the server then holds
    // both public keys, never a private one, and every token request made
    // meanwhile (one per second and more) succeeds.
    let id = support::managed::listed(&mut client, "keyed")
        .await
        .unwrap()
        .client_id;
    let jwks = |held: pb::Client| json_of_struct(held.metadata.unwrap().jwks.unwrap());
    let limit = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            tokio::time::Instant::now() < limit,
            "the key did not rotate"
        );
        token(&client).await.expect("no token request fails");
        let held = client
            .get_client(get_req(&id, None))
            .await
            .unwrap()
            .into_inner()
            .client
            .unwrap();
        let keys = jwks(held)["keys"].as_array().unwrap().clone();
        assert!(
            keys.iter().all(|k| k.get("d").is_none()),
            "a private key was published"
        );
        if keys.len() == 2 {
            assert_ne!(keys[0]["kid"], keys[1]["kid"]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Signed by the new key from now on: more tokens, no failure.
    let ok = gw
        .metric("dcr_access_token_requests_total{result=\"ok\"}")
        .await;
    support::eventually(Duration::from_secs(10), || async {
        token(&client).await.expect("no token request fails");
        let now = gw
            .metric("dcr_access_token_requests_total{result=\"ok\"}")
            .await;
        (now >= ok + 2.0).then_some(())
    })
    .await;
    token(&client).await.expect("a token after the rotation");
    let failed = gw
        .metric("dcr_access_token_requests_total{result=\"error\"}")
        .await;
    assert_eq!(
        failed, 0.0,
        "a token request failed across the key rotation"
    );
}

fn keyed_metadata_json() -> serde_json::Value {
    // node-oidc-provider wants a redirect URI for its default response type.
    serde_json::json!({
        "client_name": "keyed",
        "grant_types": ["authorization_code", "client_credentials"],
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "api:read",
    })
}

/// A `google.protobuf.Struct` as JSON.
fn json_of_struct(s: prost_types::Struct) -> serde_json::Value {
    fn value(v: prost_types::Value) -> serde_json::Value {
        use prost_types::value::Kind;
        match v.kind {
            Some(Kind::StringValue(s)) => s.into(),
            Some(Kind::NumberValue(n)) => n.into(),
            Some(Kind::BoolValue(b)) => b.into(),
            Some(Kind::StructValue(s)) => json_of_struct(s),
            Some(Kind::ListValue(l)) => l.values.into_iter().map(value).collect(),
            Some(Kind::NullValue(_)) | None => serde_json::Value::Null,
        }
    }
    s.fields.into_iter().map(|(k, v)| (k, value(v))).collect()
}
