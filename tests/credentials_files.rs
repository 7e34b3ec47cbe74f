//! Credentials files as an attacker who shares the pod, and an unlucky
//! operator, meet them: links and FIFOs planted in the folder are never
//! written through nor block a write, the folder's permissions are checked
//! (and a folder of its own can be created), a file is rewritten only when
//! its content changes, rotation is held while nothing can be delivered, and
//! the file names the token endpoint under the upstream's own path.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use dcr_dev_upstream::{DevUpstream, Route};
use dcr_gateway::CREDENTIALS_HEALTH;
use dcr_gateway::Gateway;
use dcr_gateway::config::RawConfig;
use support::managed::{declared, file_client, file_store, health, listed, read_file, requests};
use support::{TestGateway, eventually};

/// Settings for declared clients `names` writing into `dir`, reconciled
/// every second, with the admin listener on.
fn files_config(names: &[&str], dir: &Path) -> RawConfig {
    RawConfig {
        clients: names.iter().map(|n| declared(n, None)).collect(),
        credentials_dir: Some(dir.to_str().unwrap().into()),
        reconcile_interval: Some("1s".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    }
}

async fn readyz(gw: &TestGateway) -> (u16, String) {
    let resp = support::http_get(format!("http://{}/readyz", gw.admin.unwrap()))
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

#[tokio::test]
async fn planted_links_fifos_and_folders_are_never_written_through_nor_block() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("planted");
    let outside = support::temp_dir("planted-victims");
    let store = support::temp_dir("planted-store");
    let victim = |name: &str| {
        let path = outside.join(name);
        std::fs::write(&path, "victim\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    };
    // Every name the old code wrote through: its temporary files and its
    // start-up probe, as symbolic links, a hard link, a FIFO; and a link to
    // the token store itself.
    let (by_symlink, by_hardlink, by_probe) = (victim("a"), victim("b"), victim("c"));
    std::os::unix::fs::symlink(&by_symlink, dir.join(".alpha.json.tmp")).unwrap();
    std::fs::hard_link(&by_hardlink, dir.join(".beta.json.tmp")).unwrap();
    let probe = format!(".dcr-gateway-probe-{}", std::process::id());
    std::os::unix::fs::symlink(&by_probe, dir.join(probe)).unwrap();
    mkfifo(&dir.join(".gamma.json.tmp"));
    std::os::unix::fs::symlink(store.join("tokens.redb"), dir.join(".zeta.json.tmp")).unwrap();
    // Folders under temporary names (the gateway's own pattern, and another
    // program's) neither stop the start nor are removed.
    std::fs::create_dir(dir.join(".omega.json.0123456789abcdef.tmp")).unwrap();
    std::fs::create_dir(dir.join(".x.tmp")).unwrap();
    // A FIFO or a socket where a file goes is replaced; a folder there
    // cannot be, and says so.
    mkfifo(&dir.join("delta.json"));
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("eta.json")).unwrap();
    std::fs::create_dir(dir.join("epsilon.json")).unwrap();

    let names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"];
    let config = || RawConfig {
        token_store: file_store(&store),
        ..files_config(&names, &dir)
    };
    let mut gw = TestGateway::start_with(&dev.base_url(), config()).await;
    for name in ["alpha", "beta", "gamma", "delta", "zeta", "eta"] {
        let path = dir.join(format!("{name}.json"));
        let (id, secret) =
            eventually(Duration::from_secs(15), || async { file_client(&path) }).await;
        assert!(
            std::fs::symlink_metadata(&path).unwrap().is_file(),
            "{name}"
        );
        assert!(support::secret_works(&dev.base_url(), &id, &secret).await);
    }
    for victim in [&by_symlink, &by_hardlink, &by_probe] {
        assert_eq!(std::fs::read_to_string(victim).unwrap(), "victim\n");
        let mode = std::fs::metadata(victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{} was chmodded", victim.display());
    }
    assert!(dir.join(".x.tmp").is_dir());
    // Links planted while it runs, at the names the old code wrote through,
    // are not written through when a file changes.
    let again = victim("d");
    std::os::unix::fs::symlink(&again, dir.join(".alpha.json.tmp")).unwrap();
    let mut c = gw.client().await;
    let (id, old) = file_client(&dir.join("alpha.json")).unwrap();
    support::rotate_secret(&mut c, &id).await;
    eventually(Duration::from_secs(10), || async {
        file_client(&dir.join("alpha.json")).filter(|(_, s)| *s != old)
    })
    .await;
    assert_eq!(std::fs::read_to_string(&again).unwrap(), "victim\n");
    let failing = eventually(Duration::from_secs(10), || {
        let mut c = c.clone();
        async move {
            let file = listed(&mut c, "epsilon").await?.credentials_file?;
            (!file.error.is_empty()).then_some(file.error)
        }
    })
    .await;
    assert!(!failing.is_empty());
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("credentials file"), "{body}");

    // Nothing blocked: the gateway stops promptly, and the store the link
    // pointed at reads back whole.
    let id = file_client(&dir.join("alpha.json")).unwrap().0;
    gw.signal_shutdown();
    tokio::time::timeout(Duration::from_secs(5), &mut gw.task)
        .await
        .expect("stops within 5 s")
        .unwrap();
    let gw = TestGateway::start_with(&dev.base_url(), config()).await;
    let again = support::managed::ensure(&mut gw.client().await, "alpha", "alpha").await;
    assert_eq!(again.client.unwrap().client_id, id);
    c = gw.client().await;
    assert!(listed(&mut c, "zeta").await.is_some());
}

#[tokio::test]
async fn the_folder_is_checked_and_can_be_made_the_gateways_own() {
    let dev = support::dev_upstream().await;
    let shared = support::temp_dir("shared-volume");
    std::fs::set_permissions(&*shared, std::fs::Permissions::from_mode(0o777)).unwrap();

    let gw = TestGateway::start_with(&dev.base_url(), files_config(&["alpha"], &shared)).await;
    let warning = gw
        .client()
        .await
        .list_clients(dcr_gateway::pb::v1::ListClientsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .credentials_dir_warning;
    assert!(warning.contains("writable by every user"), "{warning:?}");
    assert_eq!(gw.metric("dcr_managed_credentials_dir_unsafe").await, 1.0);

    // With the sticky bit, others can no longer replace the gateway's files.
    std::fs::set_permissions(&*shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let gw = TestGateway::start_with(&dev.base_url(), files_config(&["alpha"], &shared)).await;
    assert_eq!(gw.metric("dcr_managed_credentials_dir_unsafe").await, 0.0);

    // A folder of the gateway's own inside the shared volume: created 0750.
    std::fs::set_permissions(&*shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let own = shared.join("credentials");
    let created = RawConfig {
        credentials_dir_create: Some(true),
        ..files_config(&["alpha"], &own)
    };
    let gw = TestGateway::start_with(&dev.base_url(), created).await;
    let mode = std::fs::symlink_metadata(&own)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777 & !0o2000, 0o750);
    assert_eq!(gw.metric("dcr_managed_credentials_dir_unsafe").await, 0.0);
    eventually(Duration::from_secs(10), || async {
        file_client(&own.join("alpha.json"))
    })
    .await;

    // Someone who planted a link there first gets a start error, not the files.
    let planted = shared.join("planted");
    let elsewhere = support::temp_dir("elsewhere");
    std::os::unix::fs::symlink(&*elsewhere, &planted).unwrap();
    let mut raw = RawConfig {
        credentials_dir_create: Some(true),
        upstream: Some(dev.base_url()),
        listen: Some("127.0.0.1:0".into()),
        ..files_config(&["alpha"], &planted)
    };
    raw.token_store.backend = Some("memory".into());
    let err = Gateway::bind(raw.validate().unwrap())
        .await
        .err()
        .expect("a start error");
    let err = err.to_string();
    assert!(err.starts_with("--credentials-dir"), "{err}");
    assert!(err.contains("not a folder"), "{err}");
}

#[tokio::test]
async fn an_unchanged_client_rewrites_nothing_across_reconciles_and_restarts() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("unchanged");
    let store = support::temp_dir("unchanged-store");
    let config = || RawConfig {
        token_store: file_store(&store),
        ..files_config(&["alpha"], &dir)
    };
    let file = dir.join("alpha.json");
    let unchanged = r#"dcr_managed_deliveries_total{result="unchanged"}"#;
    let stamp = |path: &Path| {
        let m = std::fs::metadata(path).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let mut gw = TestGateway::start_with(&dev.base_url(), config()).await;
    eventually(Duration::from_secs(10), || async { file_client(&file) }).await;
    eventually(Duration::from_secs(10), || async {
        (gw.metric(unchanged).await >= 2.0).then_some(())
    })
    .await;
    let (written, stored) = (stamp(&file), stamp(&store.join("tokens.redb")));
    let seen = gw.metric(unchanged).await;
    eventually(Duration::from_secs(10), || async {
        (gw.metric(unchanged).await >= seen + 2.0).then_some(())
    })
    .await;
    assert_eq!(
        stamp(&file),
        written,
        "a reconcile with nothing changed rewrote the file"
    );
    assert_eq!(
        stamp(&store.join("tokens.redb")),
        stored,
        "a reconcile with nothing changed wrote to the store"
    );
    // The first delivery, and no other.
    assert_eq!(
        gw.metric(r#"dcr_managed_deliveries_total{result="written"}"#)
            .await,
        1.0
    );

    gw.signal_shutdown();
    gw.task.await.unwrap();
    let gw = TestGateway::start_with(&dev.base_url(), config()).await;
    eventually(Duration::from_secs(10), || async {
        (gw.metric(unchanged).await >= 2.0).then_some(())
    })
    .await;
    assert_eq!(stamp(&file), written, "a restart rewrote an unchanged file");
    assert!(read_file(&file).is_some());
}

#[tokio::test]
async fn with_the_folder_gone_rotation_is_held_and_the_delivered_secret_keeps_working() {
    let dev = support::dev_upstream().await;
    let parent = support::temp_dir("gone");
    let dir = parent.join("credentials");
    std::fs::create_dir(&dir).unwrap();
    let config = RawConfig {
        clients: vec![declared("rotating", Some("2s"))],
        ..files_config(&[], &dir)
    };
    let gw = TestGateway::start_with(&dev.base_url(), config).await;
    let file = dir.join("rotating.json");
    eventually(Duration::from_secs(10), || async { file_client(&file) }).await;
    let rotations = || requests(&dev, Route::RotateSecret);
    // The folder goes; what readers last had is what the file last held.
    let (id, delivered) = file_client(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let at_removal = rotations();
    let held = r#"dcr_managed_rotations_total{result="held"}"#;
    eventually(Duration::from_secs(20), || async {
        (gw.metric(held).await >= 2.0).then_some(())
    })
    .await;
    assert!(
        rotations() <= at_removal + 1,
        "{} rotations while nothing could be delivered",
        rotations() - at_removal
    );
    assert!(
        support::secret_works(&dev.base_url(), &id, &delivered).await,
        "the last delivered secret was rotated away"
    );
    let mut c = gw.client().await;
    let error = listed(&mut c, "rotating")
        .await
        .unwrap()
        .credentials_file
        .unwrap()
        .error;
    assert!(!error.is_empty());
    assert_eq!(readyz(&gw).await.0, 503);
    // What a pod's readiness probe asks: not serving; the gateway itself is.
    assert_eq!(health(gw.addr, CREDENTIALS_HEALTH).await, 2, "NOT_SERVING");
    assert_eq!(health(gw.addr, "dcr.v1.DynamicClientRegistration").await, 1);
    assert_eq!(
        gw.metric(r#"dcr_managed_clients{state="failing"}"#).await,
        1.0
    );

    // The folder is back: the current credentials reach it within seconds.
    std::fs::create_dir(&dir).unwrap();
    let (id, secret) = eventually(Duration::from_secs(10), || async { file_client(&file) }).await;
    assert!(support::secret_works(&dev.base_url(), &id, &secret).await);
    eventually(Duration::from_secs(10), || async {
        (readyz(&gw).await.0 == 200).then_some(())
    })
    .await;
    eventually(Duration::from_secs(5), || async {
        (health(gw.addr, CREDENTIALS_HEALTH).await == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_token_endpoint_keeps_the_upstreams_path() {
    let dev = DevUpstream::start_under("127.0.0.1:0".parse().unwrap(), None, "/tenant1")
        .await
        .unwrap();
    let base = dev.base_url();
    assert!(base.ends_with("/tenant1"));
    let dir = support::temp_dir("tenant");
    let _gw = TestGateway::start_with(&base, files_config(&["alpha"], &dir)).await;
    let file = dir.join("alpha.json");
    let (id, secret) = eventually(Duration::from_secs(10), || async { file_client(&file) }).await;
    let endpoint = read_file(&file).unwrap()["token_endpoint"].clone();
    assert_eq!(endpoint, format!("{base}/oauth/token"));
    // The endpoint the file names gives the client a token.
    assert!(support::secret_works(&base, &id, &secret).await);
}
