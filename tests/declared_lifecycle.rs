//! Declared clients follow their client at once: a late or restarted
//! upstream gets a working file within seconds, 256 clients are delivered
//! promptly, a client deleted through the gateway is registered again at
//! once, a change made at the server is put back, and a client no longer
//! declared is retired (its file at once, its client after a grace). Short
//! rotation periods and bad tables are reported by name.

mod support;

use std::time::Duration;

use dcr_dev_upstream::DevUpstream;
use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use support::managed::{declared, file_client, file_store, listed, restart_empty};
use support::process::{run, serve_with};
use support::{TestGateway, eventually};

fn declared_config(names: &[&str], dir: &std::path::Path, interval: &str) -> RawConfig {
    RawConfig {
        clients: names.iter().map(|n| declared(n, None)).collect(),
        credentials_dir: Some(dir.to_str().unwrap().into()),
        reconcile_interval: Some(interval.into()),
        admin_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    }
}

/// Whether the server still knows `id` with `secret` (a deleted client's
/// secret is refused at the token endpoint).
async fn works(dev: &DevUpstream, id: &str, secret: &str) -> bool {
    support::secret_works(&dev.base_url(), id, secret).await
}

#[tokio::test]
async fn a_late_upstream_gets_a_working_file_within_seconds() {
    // An address nothing listens on yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = support::temp_dir("late");
    // The default reconcile interval (5 minutes): only retries can help.
    let raw = RawConfig {
        reconcile_interval: None,
        ..declared_config(&["alpha"], &dir, "5m")
    };
    let _gw = TestGateway::start_with(&format!("http://{addr}"), raw).await;
    // The scenario: the upstream starts two seconds after the gateway.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let file = dir.join("alpha.json");
    assert!(file_client(&file).is_none());
    let dev = DevUpstream::start(addr, None).await.unwrap();
    let (id, secret) = eventually(Duration::from_secs(8), || async { file_client(&file) }).await;
    assert!(works(&dev, &id, &secret).await);
}

#[tokio::test]
async fn a_restarted_upstream_that_lost_its_clients_gets_a_working_file_within_seconds() {
    let mut dev = support::dev_upstream().await;
    let addr = dev.addr();
    let dir = support::temp_dir("restarted");
    let config = declared_config(&["alpha"], &dir, "20s");
    let gw = TestGateway::start_with(&dev.base_url(), config).await;
    let file = dir.join("alpha.json");
    let (first, _) = eventually(Duration::from_secs(10), || async { file_client(&file) }).await;
    // The upstream goes away; the next reconcile fails (within the interval).
    dev.pause().await;
    let errors = r#"dcr_managed_reconciles_total{outcome="error"}"#;
    eventually(Duration::from_secs(30), || async {
        (gw.metric(errors).await >= 1.0).then_some(())
    })
    .await;
    // It comes back having lost every client: the retries find that out,
    // well before the next interval.
    drop(dev);
    let dev = DevUpstream::start(addr, None).await.unwrap();
    let (id, secret) = eventually(Duration::from_secs(6), || async {
        file_client(&file).filter(|(id, _)| *id != first)
    })
    .await;
    assert!(works(&dev, &id, &secret).await);
}

#[tokio::test]
async fn two_hundred_fifty_six_declared_clients_all_get_working_files_promptly() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("many");
    let names: Vec<String> = (0..256).map(|i| format!("client-{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _gw = TestGateway::start_with(&dev.base_url(), declared_config(&refs, &dir, "5m")).await;
    let files = eventually(Duration::from_secs(30), || async {
        names
            .iter()
            .map(|n| file_client(&dir.join(format!("{n}.json"))))
            .collect::<Option<Vec<_>>>()
    })
    .await;
    for (id, secret) in &files {
        assert!(works(&dev, id, secret).await, "{id}");
    }
    assert_eq!(dev.clients_created(), 256);
}

#[tokio::test]
async fn a_declared_client_deleted_through_the_gateway_is_registered_again_at_once() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("deleted");
    // A long interval: only the gateway's own knowledge can be this quick.
    let gw =
        TestGateway::start_with(&dev.base_url(), declared_config(&["alpha"], &dir, "5m")).await;
    let mut c = gw.client().await;
    let file = dir.join("alpha.json");
    let (first, first_secret) =
        eventually(Duration::from_secs(10), || async { file_client(&file) }).await;

    // ForgetClient with the client deleted at the server.
    c.forget_client(pb::ForgetClientRequest {
        name: "alpha".into(),
        delete_upstream: true,
    })
    .await
    .unwrap();
    let (second, secret) = eventually(Duration::from_secs(2), || async {
        file_client(&file).filter(|(id, _)| *id != first)
    })
    .await;
    assert!(works(&dev, &second, &secret).await);
    assert!(
        !works(&dev, &first, &first_secret).await,
        "the forgotten client is deleted"
    );

    // A plain DeleteClient of its client through the gateway is proof enough.
    c.delete_client(pb::DeleteClientRequest {
        client_id: second.clone(),
        registration_access_token: None,
    })
    .await
    .unwrap();
    let (third, secret) = eventually(Duration::from_secs(2), || async {
        file_client(&file).filter(|(id, _)| *id != second)
    })
    .await;
    assert!(works(&dev, &third, &secret).await);
    let status = listed(&mut c, "alpha").await.unwrap();
    assert_eq!(status.client_id, third);
    assert_eq!(status.last_outcome(), pb::EnsureOutcome::Recreated);
    assert!(status.last_error.is_empty(), "{}", status.last_error);
}

#[tokio::test]
async fn a_change_made_at_the_server_is_put_back() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("drift");
    let mut alpha = declared("alpha", None);
    // A scope the server normalises: never mistaken for a change.
    alpha
        .metadata
        .insert("scope".into(), serde_json::json!("  read   write "));
    let raw = RawConfig {
        clients: vec![alpha],
        ..declared_config(&[], &dir, "1s")
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut c = gw.client().await;
    let (id, _) = eventually(Duration::from_secs(10), || async {
        file_client(&dir.join("alpha.json"))
    })
    .await;
    let unchanged = r#"dcr_managed_reconciles_total{outcome="unchanged"}"#;
    eventually(Duration::from_secs(10), || async {
        (gw.metric(unchanged).await >= 2.0).then_some(())
    })
    .await;
    assert_eq!(gw.metric("dcr_managed_drift_total").await, 0.0);

    // Someone with the client's token changes it behind the gateway's back.
    let hacked = pb::ClientMetadata {
        client_name: Some("hacked".into()),
        grant_types: vec!["client_credentials".into()],
        redirect_uris: vec!["https://evil.example/cb".into()],
        ..Default::default()
    };
    c.update_client(pb::UpdateClientRequest {
        client_id: id.clone(),
        metadata: Some(hacked),
        ..Default::default()
    })
    .await
    .unwrap();
    let read = || {
        let mut c = c.clone();
        let id = id.clone();
        async move {
            c.get_client(support::get_req(&id, None))
                .await
                .unwrap()
                .into_inner()
                .client
                .unwrap()
                .metadata
                .unwrap()
        }
    };
    let restored = eventually(Duration::from_secs(5), || async {
        let m = read().await;
        (m.client_name.as_deref() == Some("alpha")).then_some(m)
    })
    .await;
    assert!(
        restored.redirect_uris.is_empty(),
        "{:?}",
        restored.redirect_uris
    );
    assert_eq!(gw.metric("dcr_managed_drift_total").await, 1.0);
    // Put back once; then unchanged again, not updated on every reconcile.
    let seen = gw.metric(unchanged).await;
    eventually(Duration::from_secs(10), || async {
        (gw.metric(unchanged).await >= seen + 2.0).then_some(())
    })
    .await;
    assert_eq!(gw.metric("dcr_managed_drift_total").await, 1.0);
    assert_eq!(
        gw.metric(r#"dcr_managed_reconciles_total{outcome="updated"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_client_no_longer_declared_is_retired_its_file_at_once_its_client_after_the_grace() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("retired");
    let store = support::temp_dir("retired-store");
    let config = |names: &[&str]| {
        let mut raw = declared_config(names, &dir, "1s");
        raw.retired_client_grace = Some("8s".into());
        raw.token_store = file_store(&store);
        raw
    };
    let mut gw = TestGateway::start_with(&dev.base_url(), config(&["alpha", "beta"])).await;
    let beta_file = dir.join("beta.json");
    let (beta, beta_secret) = eventually(Duration::from_secs(10), || async {
        file_client(&beta_file)
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        file_client(&dir.join("alpha.json"))
    })
    .await;
    gw.signal_shutdown();
    gw.task.await.unwrap();

    // beta is no longer declared: its file goes at once; its client stays,
    // listed as retired, for the grace (an older replica may still use it).
    let gw = TestGateway::start_with(&dev.base_url(), config(&["alpha"])).await;
    let mut c = gw.client().await;
    eventually(Duration::from_secs(2), || async {
        (!beta_file.exists()).then_some(())
    })
    .await;
    let retired = eventually(Duration::from_secs(5), || {
        let mut c = c.clone();
        async move {
            listed(&mut c, "beta")
                .await
                .filter(|m| m.retired_at.is_some())
        }
    })
    .await;
    assert!(retired.delete_at.is_some());
    assert!(
        works(&dev, &beta, &beta_secret).await,
        "deleted before its grace"
    );
    // After the grace, it is deleted at the server and no longer listed.
    eventually(Duration::from_secs(30), || {
        let mut c = c.clone();
        async move { listed(&mut c, "beta").await.is_none().then_some(()) }
    })
    .await;
    assert!(
        !works(&dev, &beta, &beta_secret).await,
        "still registered after its grace"
    );
    assert!(listed(&mut c, "alpha").await.is_some());
}

#[tokio::test]
async fn a_clients_file_left_from_an_earlier_configuration_is_removed_at_start() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("leftover");
    let ours = r#"{"client_id":"shark_dcr_old","client_secret":"s","token_endpoint":null}"#;
    std::fs::write(dir.join("gamma.json"), ours).unwrap();
    std::fs::write(dir.join("notes.json"), r#"{"hello":"world"}"#).unwrap();
    std::fs::write(dir.join("README"), "not ours").unwrap();
    // The memory store: no record remembers gamma, the file itself tells.
    let _gw =
        TestGateway::start_with(&dev.base_url(), declared_config(&["alpha"], &dir, "1s")).await;
    eventually(Duration::from_secs(10), || async {
        file_client(&dir.join("alpha.json"))
    })
    .await;
    eventually(Duration::from_secs(5), || async {
        (!dir.join("gamma.json").exists()).then_some(())
    })
    .await;
    assert!(
        dir.join("notes.json").exists(),
        "a file not of the gateway's was removed"
    );
    assert!(dir.join("README").exists());
}

#[tokio::test]
async fn a_rotation_period_shorter_than_the_servers_grace_is_warned_about() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("short-rotation");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[[clients]]\nname = \"hasty\"\nrotate_secret_every = \"1s\"\n\
         metadata = { client_name = \"h\", grant_types = [\"client_credentials\"] }\n\
         [[clients]]\nname = \"patient\"\nrotate_secret_every = \"2h\"\n\
         metadata = { client_name = \"p\", grant_types = [\"client_credentials\"] }\n",
    )
    .unwrap();
    let upstream = dev.base_url();
    let gw = serve_with(
        &[
            "--upstream",
            &upstream,
            "--token-store",
            "memory",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let log = gw.log.lock().unwrap().clone();
    let warning = log
        .lines()
        .find(|l| l.contains("SHORT ROTATION"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(
        warning.contains("\"hasty\"") && warning.contains("1h"),
        "{warning}"
    );
    assert!(!log.contains("\"patient\" rotates"), "{log}");
}

#[tokio::test]
async fn a_bad_table_is_named_by_its_place_and_its_key_as_written() {
    let dir = support::temp_dir("bad-tables");
    let cases = [
        (
            "[[clients]]\nname = \"first\"\nmetadata = { client_name = \"f\" }\n\
             [[clients]]\nname = \"billing-api\"\nrotate_secret_evry = \"30d\"\n",
            ["clients[1] (billing-api)", "rotate_secret_evry"],
        ),
        (
            "[[clients]]\nname = \"billing-api\"\n\
             metadata = { client_name = \"b\", client_id = \"mine\" }\n",
            ["clients[0] (billing-api)", "metadata.client_id:"],
        ),
        (
            "[[clients]]\nname = \"first\"\n[[clients]]\nname = \"second\"\n\
             [[clients]]\nname = \"billing-api\"\nrotate_secret_every = 30\n",
            ["clients[2] (billing-api)", "rotate_secret_every:"],
        ),
    ];
    for (i, (toml, expected)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let (ok, _, err) = run(&[
            "serve",
            "--dev-upstream",
            "--config",
            path.to_str().unwrap(),
        ])
        .await;
        assert!(!ok, "a bad table started");
        for part in expected {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
        assert!(!err.contains("additional_metadata"), "{err}");
    }
}

#[tokio::test]
async fn clients_a_name_replaced_are_listed_for_the_grace_then_dropped() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("replaced");
    let mut raw = declared_config(&["alpha"], &dir, "1s");
    raw.retired_client_grace = Some("4s".into());
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut c = gw.client().await;
    let file = dir.join("alpha.json");
    let (first, _) = eventually(Duration::from_secs(10), || async { file_client(&file) }).await;
    // The server loses it: a new client, and the lost one listed as replaced.
    let _dev = restart_empty(dev).await;
    let replaced = eventually(Duration::from_secs(15), || {
        let mut c = c.clone();
        async move {
            let m = listed(&mut c, "alpha").await?;
            (!m.replaced.is_empty()).then_some(m.replaced)
        }
    })
    .await;
    assert_eq!(replaced[0].client_id, first);
    // Dropped once the grace has passed.
    eventually(Duration::from_secs(20), || {
        let mut c = c.clone();
        async move {
            listed(&mut c, "alpha")
                .await?
                .replaced
                .is_empty()
                .then_some(())
        }
    })
    .await;
    assert!(listed(&mut c, "alpha").await.unwrap().retired_at.is_none());
}

#[tokio::test]
async fn a_client_moved_to_another_namespace_keeps_its_file() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("moved");
    let store = support::temp_dir("moved-store");
    let (a, b) = (
        "Bearer team-a-token-0123456789",
        "Bearer team-b-token-0123456789",
    );
    let config = |namespace: &str| {
        let mut alpha = declared("alpha", None);
        alpha.namespace = Some(namespace.into());
        RawConfig {
            clients: vec![alpha],
            callers: Some(
                "team-a=team-a-token-0123456789,team-b=team-b-token-0123456789"
                    .parse()
                    .unwrap(),
            ),
            token_store: file_store(&store),
            // Nothing repairs the file before the next start.
            ..declared_config(&[], &dir, "1h")
        }
    };
    let mut gw = TestGateway::start_with(&dev.base_url(), config("team-a")).await;
    let file = dir.join("alpha.json");
    let (first, _) = eventually(Duration::from_secs(10), || async { file_client(&file) }).await;
    gw.signal_shutdown();
    gw.task.await.unwrap();
    // A reader of the file from now on: it must never find it missing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (file, stop) = (file.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut missing = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                missing += usize::from(file_client(&file).is_none());
            }
            missing
        })
    };
    // Now declared in another namespace: a client of its own there, and the
    // old one retired, which must not take the file the new one writes.
    let gw = TestGateway::start_with(&dev.base_url(), config("team-b")).await;
    let c = gw.client().await;
    let list = |token: &'static str| {
        let mut c = c.clone();
        async move {
            c.list_clients(support::as_caller(pb::ListClientsRequest::default(), token))
                .await
                .unwrap()
                .into_inner()
                .clients
        }
    };
    eventually(Duration::from_secs(10), || async {
        let old = list(a).await;
        old.iter().any(|m| m.retired_at.is_some()).then_some(())
    })
    .await;
    let second = eventually(Duration::from_secs(10), || async {
        let new = list(b).await;
        new.first().map(|m| m.client_id.clone())
    })
    .await;
    assert_ne!(second, first);
    let (id, secret) = eventually(Duration::from_secs(10), || async {
        file_client(&file).filter(|(id, _)| *id == second)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(reader.await.unwrap(), 0, "a reader found the file missing");
    assert!(works(&dev, &id, &secret).await);
}
