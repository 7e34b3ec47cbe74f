//! Declared clients (`[[clients]]`): ensured at start with no code in the
//! service, their credentials written to `--credentials-dir` atomically,
//! their secrets rotated on schedule (once across replicas), and a missing
//! folder is a start error naming the setting.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use dcr_dev_upstream::Route;
use dcr_gateway::Gateway;
use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use serde_json::Value;
use support::managed::{declared, ensure, follow, read_file as read, restart_empty};
use support::redis::RedisServer;
use support::{TestGateway, eventually};

#[tokio::test]
async fn a_declared_client_is_registered_and_its_credentials_written() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("credentials");
    let store = support::temp_dir("credentials-store");
    let raw = || RawConfig {
        clients: vec![declared("billing-api", None)],
        credentials_dir: Some(dir.to_str().unwrap().into()),
        reconcile_interval: Some("1s".into()),
        token_store: dcr_gateway::config::RawStoreConfig {
            backend: Some("file".into()),
            path: Some(store.join("t.redb").to_str().unwrap().into()),
            keys: Some(support::redis::K1.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut gw = TestGateway::start_with(&dev.base_url(), raw()).await;
    let path = dir.join("billing-api.json");
    let file = eventually(Duration::from_secs(10), || async { read(&path) }).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (id, secret) = (
        file["client_id"].as_str().unwrap().to_owned(),
        file["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        file["token_endpoint"],
        format!("{}/oauth/token", dev.base_url())
    );
    assert!(support::secret_works(&dev.base_url(), &id, &secret).await);

    // The same name through the RPC is the same client.
    let ensured = ensure(&mut gw.client().await, "billing-api", "billing-api").await;
    assert_eq!(ensured.client.unwrap().client_id, id);
    assert_eq!(dev.clients_created(), 1);

    // A restart finds the client again: no second registration.
    gw.signal_shutdown();
    gw.task.await.unwrap();
    let gw = TestGateway::start_with(&dev.base_url(), raw()).await;
    let again = ensure(&mut gw.client().await, "billing-api", "billing-api").await;
    assert_eq!(again.outcome(), pb::EnsureOutcome::Unchanged);
    assert_eq!(again.client.unwrap().client_id, id);
    assert_eq!(read(&path).unwrap()["client_id"], id.as_str());
    assert_eq!(dev.clients_created(), 1, "a restart registered again");

    // Readers of the file only ever see a whole one while it is rewritten.
    let reader = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let until = Instant::now() + Duration::from_secs(4);
            let mut reads = 0;
            while Instant::now() < until {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    serde_json::from_str::<Value>(&text).expect("a whole credentials file");
                    reads += 1;
                }
            }
            reads
        })
    };
    // The server loses the client: the next reconcile registers it anew,
    // and the file says so.
    let dev = restart_empty(dev).await;
    let renewed = eventually(Duration::from_secs(15), || async {
        let now = read(&path)?;
        (now["client_id"] != id.as_str()).then_some(now)
    })
    .await;
    assert!(
        support::secret_works(
            &dev.base_url(),
            renewed["client_id"].as_str().unwrap(),
            renewed["client_secret"].as_str().unwrap()
        )
        .await
    );
    assert!(reader.await.unwrap() > 0, "the reader read the file");
}

#[tokio::test]
async fn a_scheduled_rotation_reaches_watchers_and_the_file_and_the_old_secret_keeps_its_grace() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("rotate");
    let raw = RawConfig {
        clients: vec![declared("rotating", Some("2s"))],
        reconcile_interval: Some("1s".into()),
        credentials_dir: Some(dir.to_str().unwrap().into()),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let path = dir.join("rotating.json");
    let first = eventually(Duration::from_secs(10), || async { read(&path) }).await;
    let id = first["client_id"].as_str().unwrap().to_owned();

    let mut watch = follow(&mut gw.client().await, "rotating").await;
    let current = watch.message().await.unwrap().unwrap();
    assert_eq!(current.change(), pb::ClientChange::Current);
    let old = current.client.unwrap().client_secret.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(20), watch.message())
        .await
        .expect("a rotation within the period")
        .unwrap()
        .unwrap();
    assert_eq!(heard.change(), pb::ClientChange::SecretRotated);
    let new = heard.client.unwrap().client_secret.unwrap();
    assert_ne!(new, old);
    assert!(support::secret_works(&dev.base_url(), &id, &new).await);
    assert!(
        support::secret_works(&dev.base_url(), &id, &old).await,
        "the previous secret works in its grace window"
    );
    // The file follows; a reader only ever sees a whole file (`read`).
    eventually(Duration::from_secs(10), || async {
        let now = read(&path)?;
        (now["client_secret"] != first["client_secret"]).then_some(())
    })
    .await;
    assert_eq!(dev.clients_created(), 1);
}

#[tokio::test]
async fn two_replicas_on_one_redis_rotate_once_per_period() {
    const PERIOD: Duration = Duration::from_secs(3);
    let redis = RedisServer::start().await;
    let dev = support::dev_upstream().await;
    let replica = || {
        let mut raw = support::redis::store_config(&redis.url(), "rotations");
        raw.clients = vec![declared("rotating", Some("3s"))];
        raw.reconcile_interval = Some("1s".into());
        raw
    };
    let start = Instant::now();
    let _a = TestGateway::start_with(&dev.base_url(), replica()).await;
    let _b = TestGateway::start_with(&dev.base_url(), replica()).await;
    // Four rotations take at least four periods less their
    // second-granularity slack, however slow the machine; both replicas
    // rotating would halve that.
    let rotations = || {
        dev.stats()
            .requests
            .get(&Route::RotateSecret)
            .copied()
            .unwrap_or(0)
    };
    eventually(Duration::from_secs(60), || async {
        (rotations() >= 4).then_some(())
    })
    .await;
    let took = start.elapsed();
    assert!(
        took >= (PERIOD - Duration::from_secs(1)) * 4,
        "{} rotations in {took:?}: both replicas rotated",
        rotations()
    );
    assert_eq!(dev.clients_created(), 1, "one registration across replicas");
}

#[tokio::test]
async fn a_missing_credentials_folder_is_a_start_error_naming_the_setting() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("no-credentials");
    let raw = RawConfig {
        upstream: Some(dev.base_url()),
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("off".into()),
        clients: vec![declared("billing-api", None)],
        credentials_dir: Some(dir.join("missing").to_str().unwrap().into()),
        ..Default::default()
    };
    let mut raw = raw;
    raw.token_store.backend = Some("memory".into());
    let err = Gateway::bind(raw.validate().unwrap())
        .await
        .err()
        .expect("a start error");
    assert!(err.to_string().starts_with("--credentials-dir"), "{err}");

    let mut bad = RawConfig {
        upstream: Some(dev.base_url()),
        clients: vec![declared("Bad Name", None)],
        ..Default::default()
    };
    bad.token_store.backend = Some("memory".into());
    let bad = bad.validate().unwrap_err();
    assert!(
        bad.to_string().contains("clients[0] (Bad Name): name"),
        "{bad}"
    );
}
