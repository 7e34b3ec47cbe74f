//! Token files for declared clients: the service reads an access token from
//! a file, refreshed ahead of expiry and rewritten only when it changes;
//! with `deliver_secret = false` no secret is on disk at all.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use dcr_dev_upstream::DevUpstream;
use dcr_gateway::config::{RawClient, RawConfig, RawTokenFile};
use dcr_gateway::pb::v1 as pb;
use support::managed::declared;
use support::{TestGateway, eventually};

/// A declared client_credentials client `name` allowed scopes `a b`, whose
/// tokens are delivered as `<name>.token` (scope a) and `<name>.all.token`,
/// with or without its secret in its credentials file.
fn with_tokens(name: &str, deliver_secret: bool) -> RawClient {
    let mut client = declared(name, None);
    client.metadata.insert("scope".into(), "a b".into());
    client.deliver_secret = Some(deliver_secret);
    client.tokens = vec![
        RawTokenFile {
            label: None,
            scopes: vec!["a".into()],
            resource: Vec::new(),
        },
        RawTokenFile {
            label: Some("all".into()),
            scopes: Vec::new(),
            resource: Vec::new(),
        },
    ];
    client
}

fn config(clients: Vec<RawClient>, dir: &Path) -> RawConfig {
    RawConfig {
        clients,
        credentials_dir: Some(dir.to_str().unwrap().into()),
        reconcile_interval: Some("1s".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    }
}

/// The file's token once it is there.
fn read_token(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().filter(|t| !t.is_empty())
}

/// What the dev upstream's protected resource says of `token`.
async fn presented(dev: &DevUpstream, token: &str) -> (u16, serde_json::Value) {
    support::install_crypto_provider();
    let resp = reqwest::Client::new()
        .get(format!("{}/_dev/resource", dev.base_url()))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn a_service_gets_tokens_from_files_and_no_secret_is_on_disk() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("token-files");
    let gw = TestGateway::start_with(
        &dev.base_url(),
        config(vec![with_tokens("svc", false)], &dir),
    )
    .await;

    let token = eventually(Duration::from_secs(10), || async {
        read_token(&dir.join("svc.token"))
    })
    .await;
    assert!(!token.ends_with('\n'), "just the token, for $(cat …)");
    let (status, about) = presented(&dev, &token).await;
    assert_eq!(status, 200, "the file's token is accepted: {about}");
    assert_eq!(about["scope"], "a");
    let all = eventually(Duration::from_secs(10), || async {
        read_token(&dir.join("svc.all.token"))
    })
    .await;
    assert_eq!(presented(&dev, &all).await.1["scope"], "a b");
    let mode = std::fs::metadata(dir.join("svc.token")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The credentials file names the client, and holds no secret.
    let file = eventually(Duration::from_secs(10), || async {
        support::managed::read_file(&dir.join("svc.json"))
    })
    .await;
    assert!(file["client_id"].is_string());
    assert!(file.get("client_secret").is_none(), "{file}");
    let mut c = gw.client().await;
    let secret = c
        .ensure_client(pb::EnsureClientRequest {
            name: "svc".into(),
            metadata: Some(pb::ClientMetadata {
                client_name: Some("svc".into()),
                grant_types: vec!["client_credentials".into()],
                scope: Some("a b".into()),
                ..Default::default()
            }),
            initial_access_token: None,
        })
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap()
        .client_secret
        .unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let content = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&content).contains(&secret),
            "a secret reached the disk"
        );
    }
    let shown = support::managed::listed(&mut c, "svc").await.unwrap();
    let tokens = shown.access_tokens.expect("tokens shown");
    assert!(tokens.files && tokens.held == 2, "{tokens:?}");
}

#[tokio::test]
async fn a_token_file_is_refreshed_ahead_and_never_rewritten_unchanged() {
    let dev = support::dev_upstream().await;
    dev.set_token_lifetime(Duration::from_secs(6));
    let dir = support::temp_dir("token-refresh");
    let gw = TestGateway::start_with(
        &dev.base_url(),
        config(vec![with_tokens("job", true)], &dir),
    )
    .await;
    let path = dir.join("job.token");
    let first = eventually(Duration::from_secs(10), || async { read_token(&path) }).await;
    let inode = std::fs::metadata(&path).unwrap().ino();
    // Reconciles pass (one a second) and find the file as it should be.
    let unchanged = gw
        .metric("dcr_managed_deliveries_total{result=\"unchanged\"}")
        .await;
    eventually(Duration::from_secs(10), || async {
        let now = gw
            .metric("dcr_managed_deliveries_total{result=\"unchanged\"}")
            .await;
        (now >= unchanged + 4.0).then_some(())
    })
    .await;
    if read_token(&path).as_deref() == Some(first.as_str()) {
        assert_eq!(
            std::fs::metadata(&path).unwrap().ino(),
            inode,
            "an unchanged token was rewritten"
        );
    }
    // Refreshed before it expires (at most 4.8 s into 6 s): the file's
    // token is active whenever it is read.
    let second = eventually(Duration::from_secs(12), || async {
        let now = read_token(&path)?;
        let (status, _) = presented(&dev, &now).await;
        assert_eq!(status, 200, "the file held an inactive token");
        (now != first).then_some(now)
    })
    .await;
    assert_eq!(presented(&dev, &second).await.0, 200);
}

#[tokio::test]
async fn token_files_no_longer_declared_are_removed_and_nothing_else() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("token-undeclared");
    std::fs::write(dir.join("gone.token"), "0123abcd").unwrap();
    std::fs::write(dir.join("gone.old.token"), "0123abcd").unwrap();
    std::fs::write(dir.join("notes.token"), "not a token, it has spaces").unwrap();
    std::fs::write(dir.join("keep.txt"), "0123abcd").unwrap();
    let gw = TestGateway::start_with(
        &dev.base_url(),
        config(vec![with_tokens("svc", true)], &dir),
    )
    .await;
    eventually(Duration::from_secs(10), || async {
        read_token(&dir.join("svc.token"))
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        (!dir.join("gone.token").exists() && !dir.join("gone.old.token").exists()).then_some(())
    })
    .await;
    assert!(
        dir.join("notes.token").exists(),
        "not a token file of the gateway's"
    );
    assert!(dir.join("keep.txt").exists());
    drop(gw);
}

#[tokio::test]
async fn token_file_settings_are_checked_and_errors_name_the_field() {
    let dir = support::temp_dir("token-config");
    let mut bad_scope = with_tokens("svc", true);
    bad_scope.tokens[1].scopes = vec!["ok".into(), "has space".into()];
    let mut twice = with_tokens("svc", true);
    twice.tokens[1].label = None;
    let mut bad_label = with_tokens("svc", true);
    bad_label.tokens[1].label = Some("Not.Ok".into());
    for (client, dir_set, needle) in [
        (bad_scope, true, "clients[0] (svc): tokens[1].scopes[1]"),
        (twice, true, "clients[0] (svc): tokens[1].label"),
        (bad_label, true, "clients[0] (svc): tokens[1].label"),
        (
            with_tokens("svc", true),
            false,
            "clients[0] (svc): tokens: needs --credentials-dir",
        ),
    ] {
        let mut raw = config(vec![client], &dir);
        raw.upstream = Some("http://127.0.0.1:9".into());
        if !dir_set {
            raw.credentials_dir = None;
        }
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}
