//! Managed clients: EnsureClient registers a name once (across restarts,
//! replicas and concurrent calls), applies changed metadata, registers anew
//! only when the server proves it lost the client; WatchClient follows it;
//! ListClients and ForgetClient; and names stay in their caller's namespace.

mod support;

use std::time::Duration;

use dcr_dev_upstream::{Fault, FaultKind, Route};
use dcr_gateway::config::{RawConfig, RawStoreConfig};
use dcr_gateway::pb::v1 as pb;
use support::managed::{ensure, ensure_req, follow, list, requests, restart_empty};
use support::redis::{K1, RedisServer};
use support::{TestGateway, reason};
use tonic::Code;

fn secret(r: &pb::EnsureClientResponse) -> String {
    let client = r.client.as_ref().expect("a client");
    client.client_secret.clone().expect("the current secret")
}

fn id(r: &pb::EnsureClientResponse) -> String {
    r.client.as_ref().expect("a client").client_id.clone()
}

#[tokio::test]
async fn a_name_is_registered_once_and_changed_metadata_are_applied() {
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let mut c = gw.client().await;

    let first = ensure(&mut c, "billing-api", "billing").await;
    assert_eq!(first.outcome(), pb::EnsureOutcome::Created);
    assert!(
        first
            .client
            .as_ref()
            .unwrap()
            .registration_access_token
            .is_none(),
        "the RAT stays with the gateway"
    );
    let again = ensure(&mut c, "billing-api", "billing").await;
    assert_eq!(again.outcome(), pb::EnsureOutcome::Unchanged);
    assert_eq!((id(&again), secret(&again)), (id(&first), secret(&first)));
    assert_eq!(dev.clients_created(), 1);
    assert_eq!(requests(&dev, Route::Update), 0, "UNCHANGED wrote upstream");

    let changed = ensure(&mut c, "billing-api", "billing v2").await;
    assert_eq!(changed.outcome(), pb::EnsureOutcome::Updated);
    assert_eq!(id(&changed), id(&first));
    assert_eq!(
        secret(&changed),
        secret(&first),
        "an update keeps the secret"
    );
    let held = c
        .get_client(support::get_req(&id(&first), None))
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    assert_eq!(
        held.metadata.unwrap().client_name.as_deref(),
        Some("billing v2"),
        "the server holds the new metadata"
    );
    assert_eq!(dev.clients_created(), 1);

    // Another name is another client.
    let other = ensure(&mut c, "shop", "shop").await;
    assert_eq!(other.outcome(), pb::EnsureOutcome::Created);
    assert_ne!(id(&other), id(&first));

    let listed = list(&mut c).await;
    let names: Vec<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["billing-api", "shop"]);
    assert_eq!(listed[0].client_id, id(&first));
    assert_eq!(listed[0].last_outcome(), pb::EnsureOutcome::Updated);
    assert!(listed[0].secret_issued_at.is_some());
}

#[tokio::test]
async fn twenty_concurrent_ensures_of_a_new_name_register_once() {
    let dev = support::dev_upstream().await;
    // Slow registrations, so the calls overlap.
    dev.inject(Fault {
        route: Route::Register,
        times: None,
        kind: FaultKind::Delay { ms: 50 },
    });
    let gw = TestGateway::start(&dev.base_url()).await;
    let c = gw.client().await;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move { ensure(&mut c, "one", "one").await })
        })
        .collect();
    let mut ids = Vec::new();
    let mut created = 0;
    for call in calls {
        let r = call.await.unwrap();
        created += usize::from(r.outcome() == pb::EnsureOutcome::Created);
        ids.push(id(&r));
    }
    assert_eq!(dev.clients_created(), 1, "one registration upstream");
    assert_eq!(created, 1);
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
}

#[tokio::test]
async fn a_restart_with_the_file_store_finds_the_same_client() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("managed-file");
    let raw = || RawConfig {
        token_store: RawStoreConfig {
            backend: Some("file".into()),
            path: Some(dir.join("t.redb").to_str().unwrap().into()),
            keys: Some(K1.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut gw = TestGateway::start_with(&dev.base_url(), raw()).await;
    let first = ensure(&mut gw.client().await, "billing-api", "billing").await;
    gw.signal_shutdown();
    gw.task.await.unwrap();

    let gw = TestGateway::start_with(&dev.base_url(), raw()).await;
    let again = ensure(&mut gw.client().await, "billing-api", "billing").await;
    assert_eq!(again.outcome(), pb::EnsureOutcome::Unchanged);
    assert_eq!((id(&again), secret(&again)), (id(&first), secret(&first)));
    assert_eq!(dev.clients_created(), 1);
}

#[tokio::test]
async fn replicas_on_one_redis_share_a_name_and_register_once() {
    let redis = RedisServer::start().await;
    let dev = support::dev_upstream().await;
    let store = || support::redis::store_config(&redis.url(), "managed");
    let a = TestGateway::start_with(&dev.base_url(), store()).await;
    let b = TestGateway::start_with(&dev.base_url(), store()).await;
    let (ca, cb) = (a.client().await, b.client().await);
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let mut c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            tokio::spawn(async move { ensure(&mut c, "shared", "shared").await })
        })
        .collect();
    let mut seen = Vec::new();
    for call in calls {
        let r = call.await.unwrap();
        seen.push((id(&r), secret(&r)));
    }
    assert_eq!(dev.clients_created(), 1, "one registration across replicas");
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
}

#[tokio::test]
async fn a_client_the_server_lost_is_recreated_and_watchers_hear_of_it() {
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let mut c = gw.client().await;
    let first = ensure(&mut c, "billing-api", "billing").await;

    let mut watch = follow(&mut c, "billing-api").await;
    let current = watch.message().await.unwrap().unwrap();
    assert_eq!(current.change(), pb::ClientChange::Current);
    assert_eq!(current.client.unwrap().client_secret, Some(secret(&first)));

    // SharkAuth's "client not found" proves the loss.
    let dev = restart_empty(dev).await;
    let again = ensure(&mut c, "billing-api", "billing").await;
    assert_eq!(again.outcome(), pb::EnsureOutcome::Recreated);
    assert_ne!(id(&again), id(&first));
    assert_ne!(secret(&again), secret(&first));
    assert_eq!(dev.clients_created(), 1);
    let heard = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the watcher hears of the new client")
        .unwrap()
        .unwrap();
    assert_eq!(heard.change(), pb::ClientChange::Recreated);
    assert_eq!(heard.client.unwrap().client_id, id(&again));

    // The new client is managed as any other; the lost one is kept as replaced.
    let after = ensure(&mut c, "billing-api", "billing").await;
    assert_eq!(after.outcome(), pb::EnsureOutcome::Unchanged);
    assert_eq!(id(&after), id(&again));
    let listed = list(&mut c).await;
    assert_eq!(listed[0].replaced.len(), 1);
    assert_eq!(listed[0].replaced[0].client_id, id(&first));
    assert!(listed[0].replaced[0].replaced_at.is_some());
}

#[tokio::test]
async fn a_refused_token_that_proves_no_loss_registers_nothing() {
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let mut c = gw.client().await;
    let first = ensure(&mut c, "billing-api", "billing").await;
    dev.inject(Fault {
        route: Route::Get,
        times: Some(1),
        kind: FaultKind::Status {
            status: 401,
            retry_after: None,
            body: Some(
                r#"{"error":"invalid_token","error_description":"invalid registration access token"}"#
                    .into(),
            ),
        },
    });
    for _ in 0..2 {
        // The second time the refused token is forgotten: still no proof.
        let err = c
            .ensure_client(ensure_req("billing-api", "billing"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert_eq!(reason(&err), "CLIENT_LOSS_NOT_PROVEN");
        assert!(err.message().contains(&id(&first)), "{}", err.message());
    }
    assert_eq!(dev.clients_created(), 1, "re-registered without proof");
    let listed = list(&mut c).await;
    assert!(
        listed[0]
            .last_error
            .contains("does not prove it lost the client"),
        "ListClients says why: {:?}",
        listed[0].last_error
    );

    // The operator's way out: forget the name, ensure it anew.
    c.forget_client(pb::ForgetClientRequest {
        name: "billing-api".into(),
        delete_upstream: false,
    })
    .await
    .unwrap();
    let fresh = ensure(&mut c, "billing-api", "billing").await;
    assert_eq!(fresh.outcome(), pb::EnsureOutcome::Created);
    assert_ne!(id(&fresh), id(&first));
}

#[tokio::test]
async fn names_belong_to_their_callers_namespace() {
    let dev = support::dev_upstream().await;
    let raw = RawConfig {
        callers: Some(
            "billing=billing-token-0123456789,shop=shop-token-0123456789abc"
                .parse()
                .unwrap(),
        ),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut c = gw.client().await;
    let (a, b) = (
        "Bearer billing-token-0123456789",
        "Bearer shop-token-0123456789abc",
    );
    let mine = c
        .ensure_client(support::as_caller(ensure_req("api", "billing's"), a))
        .await
        .unwrap()
        .into_inner();

    // B's ensure of the same name is B's own client.
    let theirs = c
        .ensure_client(support::as_caller(ensure_req("api", "shop's"), b))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(theirs.outcome(), pb::EnsureOutcome::Created);
    assert_ne!(id(&theirs), id(&mine));
    assert_ne!(secret(&theirs), secret(&mine));

    let err = c
        .watch_client(support::as_caller(
            pb::WatchClientRequest {
                name: "other".into(),
            },
            b,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let listed = c
        .list_clients(support::as_caller(pb::ListClientsRequest::default(), b))
        .await
        .unwrap()
        .into_inner()
        .clients;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].client_id, id(&theirs), "B sees only its own");

    // B forgets its own "api"; A's is untouched.
    c.forget_client(support::as_caller(
        pb::ForgetClientRequest {
            name: "api".into(),
            delete_upstream: true,
        },
        b,
    ))
    .await
    .unwrap();
    let still = c
        .ensure_client(support::as_caller(ensure_req("api", "billing's"), a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.outcome(), pb::EnsureOutcome::Unchanged);
    assert_eq!(id(&still), id(&mine));
    let err = c
        .get_client(support::as_caller(support::get_req(&id(&theirs), None), b))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "deleted upstream: {err:?}"
    );

    let err = c
        .ensure_client(support::as_caller(ensure_req("Not A Name", "x"), a))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_callers_own_secret_rotation_reaches_the_record_and_its_watchers() {
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let mut c = gw.client().await;
    let first = ensure(&mut c, "billing-api", "billing").await;
    let mut watch = follow(&mut c, "billing-api").await;
    watch.message().await.unwrap().unwrap();

    let rotated = support::rotate_secret(&mut c, &id(&first)).await;
    let new = rotated.client_secret.expect("a new secret");
    let heard = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the watcher hears of the new secret")
        .unwrap()
        .unwrap();
    assert_eq!(heard.change(), pb::ClientChange::SecretRotated);
    assert_eq!(heard.client.unwrap().client_secret.as_ref(), Some(&new));
    let again = ensure(&mut c, "billing-api", "billing").await;
    assert_eq!(secret(&again), new, "the record kept the replaced secret");
}

#[tokio::test]
async fn tokens_lists_exports_and_imports_managed_clients() {
    let redis = RedisServer::start().await;
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start_with(
        &dev.base_url(),
        support::redis::store_config(&redis.url(), "cli"),
    )
    .await;
    let made = ensure(&mut gw.client().await, "billing-api", "billing").await;
    let url = redis.url();
    let store = |prefix: &'static str| {
        vec![
            "tokens".to_owned(),
            "--token-store".into(),
            "redis".into(),
            "--token-store-redis-url".into(),
            url.clone(),
            "--token-store-redis-prefix".into(),
            prefix.into(),
        ]
    };
    let args = |prefix, rest: &[&str]| {
        let mut a = store(prefix);
        a.extend(rest.iter().map(|s| s.to_string()));
        a
    };
    let keys = [("DCR_GATEWAY_TOKEN_STORE_KEYS", K1)];
    let run = |a: Vec<String>| async move {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        support::process::run_with(&a, &keys).await
    };

    let (ok, listed, err) = run(args("cli", &["list"])).await;
    assert!(ok, "{err}");
    assert!(listed.contains("1 managed client(s)"), "{listed}");
    assert!(listed.contains("billing-api") && listed.contains(&id(&made)));
    assert!(!listed.contains(&secret(&made)), "list shows a secret");
    let (_, hidden, _) = run(args("cli", &["export"])).await;
    assert!(
        !hidden.contains(&secret(&made)),
        "export without --reveal shows a secret"
    );
    let (ok, export, err) = run(args("cli", &["export", "--reveal"])).await;
    assert!(ok && export.contains(&secret(&made)), "{err}");

    let dir = support::temp_dir("managed-export");
    let file = dir.join("export.json");
    std::fs::write(&file, &export).unwrap();
    let (ok, out, err) = run(args("copy", &["import", "--file", file.to_str().unwrap()])).await;
    assert!(ok, "{err}");
    assert!(out.contains("1 managed client(s)"), "{out}");

    // A gateway on the imported copy has the same client, registering nothing.
    let copy = TestGateway::start_with(
        &dev.base_url(),
        support::redis::store_config(&redis.url(), "copy"),
    )
    .await;
    let again = ensure(&mut copy.client().await, "billing-api", "billing").await;
    assert_eq!(again.outcome(), pb::EnsureOutcome::Unchanged);
    assert_eq!((id(&again), secret(&again)), (id(&made), secret(&made)));
    assert_eq!(dev.clients_created(), 1);
}

#[tokio::test]
async fn dcr_gateway_call_ensures_lists_and_forgets() {
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let addr = format!("http://{}", gw.addr);
    let call = |rest: &[&str]| {
        let mut a = vec!["call".to_owned()];
        a.extend(rest.iter().map(|s| s.to_string()));
        a.extend(["--addr".to_owned(), addr.clone()]);
        async move {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            support::process::run(&a).await
        }
    };
    let metadata = r#"{"client_name":"cli","grant_types":["client_credentials"]}"#;
    let (ok, out, err) = call(&["ensure", "--name", "cli-app", "--metadata", metadata]).await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outcome"], "CREATED");
    assert!(v["client"]["client_secret"].is_string());
    let (ok, out, _) = call(&["list"]).await;
    assert!(ok && out.contains("cli-app"), "{out}");
    let (ok, _, err) = call(&["forget", "--name", "cli-app", "--delete-upstream"]).await;
    assert!(ok, "{err}");
    let (ok, out, _) = call(&["list"]).await;
    assert!(ok && !out.contains("cli-app"), "{out}");
}
