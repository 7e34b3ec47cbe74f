//! No caller slows another: a plain RPC never waits on an unrelated managed
//! name, a full store registers nothing it cannot keep, each caller
//! namespace has limits (names, watch streams) and ListClients pages, and
//! SIGTERM with a watch open ends the watch with UNAVAILABLE and exits.

mod support;

use std::time::Duration;

use dcr_dev_upstream::{Fault, FaultKind, Route};
use dcr_gateway::config::{RawConfig, RawStoreConfig};
use dcr_gateway::pb::v1 as pb;
use support::managed::{ensure, ensure_req, follow, listed};
use support::process::serve_with;
use support::{TestGateway, as_caller, eventually, reason};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn a_plain_call_never_waits_on_an_unrelated_busy_managed_name() {
    let dev = support::dev_upstream().await;
    let gw = TestGateway::start(&dev.base_url()).await;
    let mut c = gw.client().await;
    for i in 0..50 {
        ensure(&mut c, &format!("name-{i:02}"), "many").await;
    }
    let busy_id = ensure(&mut c, "busy", "busy")
        .await
        .client
        .unwrap()
        .client_id;
    let managed = ensure(&mut c, "managed", "managed").await;
    let plain = support::register(&mut c, "plain").await.client_id;

    // The busy name's next ensure holds it while its read is slow.
    dev.inject(Fault {
        route: Route::Get,
        times: Some(1),
        kind: FaultKind::Delay { ms: 8000 },
    });
    let busy = {
        let mut c = c.clone();
        tokio::spawn(async move { c.ensure_client(ensure_req("busy", "busy")).await })
    };
    eventually(Duration::from_secs(5), || async {
        (dev.stats().in_flight >= 1).then_some(())
    })
    .await;

    // A rotation of an unrelated client, plain and managed, answers while
    // the busy name is still held.
    support::rotate_secret(&mut c, &plain).await;
    let id = managed.client.unwrap().client_id;
    let rotated = support::rotate_secret(&mut c, &id).await;
    assert!(
        !busy.is_finished(),
        "the busy name was not held for the test"
    );
    // The managed client's record took its new secret.
    let current = follow(&mut c, "managed")
        .await
        .message()
        .await
        .unwrap()
        .unwrap()
        .client
        .unwrap()
        .client_secret;
    assert_eq!(current, rotated.client_secret);
    busy.await.unwrap().unwrap();
    assert_ne!(busy_id, plain);
}

#[tokio::test]
async fn a_full_store_registers_nothing_it_cannot_keep() {
    let dev = support::dev_upstream().await;
    let raw = RawConfig {
        token_store: RawStoreConfig {
            backend: Some("memory".into()),
            max_entries: Some(3),
            ..Default::default()
        },
        ..Default::default()
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let c = gw.client().await;
    // Eight at once, then one more: whatever the order, only what fits.
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let mut c = c.clone();
            tokio::spawn(async move { c.ensure_client(ensure_req(&format!("n{i}"), "n")).await })
        })
        .collect();
    let mut kept = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => kept += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(reason(&status), "TOKEN_STORE_FULL");
                assert!(status.get_error_details().retry_info().is_none());
            }
        }
    }
    assert_eq!(kept, 3);
    let mut c = c.clone();
    let more = c.ensure_client(ensure_req("n9", "n")).await.unwrap_err();
    assert_eq!(reason(&more), "TOKEN_STORE_FULL");
    // Every client registered and not kept was deleted again: none orphaned.
    let deleted = dev
        .stats()
        .requests
        .get(&Route::Delete)
        .copied()
        .unwrap_or(0);
    assert_eq!(dev.clients_created() as u64 - deleted, 3);
}

#[tokio::test]
async fn each_namespace_has_its_limits_and_lists_a_page_at_a_time() {
    let dev = support::dev_upstream().await;
    let raw = RawConfig {
        callers: Some(
            "billing=billing-token-0123456789,shop=shop-token-0123456789abc"
                .parse()
                .unwrap(),
        ),
        max_managed_clients_per_namespace: Some(7),
        max_watches_per_namespace: Some(2),
        admin_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut c = gw.client().await;
    let (a, b) = (
        "Bearer billing-token-0123456789",
        "Bearer shop-token-0123456789abc",
    );
    for i in 0..7 {
        c.ensure_client(as_caller(ensure_req(&format!("n{i}"), "n"), a))
            .await
            .unwrap();
    }
    let refused = c
        .ensure_client(as_caller(ensure_req("n7", "n"), a))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "NAMESPACE_LIMIT_REACHED");
    assert_eq!(dev.clients_created(), 7, "a refused name was registered");
    // An existing name is still ensured, and another caller has its own room.
    c.ensure_client(as_caller(ensure_req("n3", "n"), a))
        .await
        .unwrap();
    c.ensure_client(as_caller(ensure_req("n7", "n"), b))
        .await
        .unwrap();
    assert_eq!(
        gw.metric(r#"dcr_managed_limit_refusals_total{limit="names"}"#)
            .await,
        1.0
    );

    // Pages of three, in name order, all of them once.
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_clients(as_caller(
                pb::ListClientsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                },
                a,
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.clients.len() <= 3);
        names.extend(page.clients.into_iter().map(|m| m.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["n0", "n1", "n2", "n3", "n4", "n5", "n6"]);
    for bad in [
        pb::ListClientsRequest {
            page_size: -1,
            ..Default::default()
        },
        pb::ListClientsRequest {
            page_token: "Not A Name".into(),
            ..Default::default()
        },
    ] {
        let err = c.list_clients(as_caller(bad, a)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    // Two watch streams per namespace; a third waits for one to end.
    let watch = |name: &'static str| {
        let mut c = c.clone();
        async move {
            c.watch_client(as_caller(pb::WatchClientRequest { name: name.into() }, a))
                .await
        }
    };
    let first = watch("n0").await.unwrap();
    let _second = watch("n1").await.unwrap();
    let third = watch("n2").await.unwrap_err();
    assert_eq!(third.code(), Code::ResourceExhausted);
    assert_eq!(reason(&third), "NAMESPACE_LIMIT_REACHED");
    assert_eq!(gw.metric("dcr_managed_watches").await, 2.0);
    drop(first);
    eventually(Duration::from_secs(5), || async {
        watch("n2").await.ok().map(drop)
    })
    .await;
}

#[tokio::test]
async fn sigterm_with_a_watch_open_ends_it_with_unavailable_and_exits_promptly() {
    let dev = support::dev_upstream().await;
    let dir = support::temp_dir("sigterm");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[[clients]]\nname = \"rotating\"\nrotate_secret_every = \"2s\"\n\
         metadata = { client_name = \"r\", grant_types = [\"client_credentials\"] }\n",
    )
    .unwrap();
    let upstream = dev.base_url();
    let mut gw = serve_with(
        &[
            "--upstream",
            &upstream,
            "--token-store",
            "memory",
            "--reconcile-interval",
            "1s",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let mut c = support::Client::new(support::channel(gw.addr.parse().unwrap()).await);
    eventually(Duration::from_secs(10), || {
        let mut c = c.clone();
        async move { listed(&mut c, "rotating").await.map(drop) }
    })
    .await;
    let mut watch = follow(&mut c, "rotating").await;
    watch.message().await.unwrap().unwrap();

    let rotations = || support::managed::requests(&dev, Route::RotateSecret);
    let pid = gw.child.id().unwrap().to_string();
    let at_signal = rotations();
    let started = std::time::Instant::now();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    // The watch ends with UNAVAILABLE, saying why.
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the watch ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the watch ends within 3 s");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert_eq!(reason(&ended), "SHUTTING_DOWN");
    let status = tokio::time::timeout(Duration::from_secs(3), gw.child.wait())
        .await
        .expect("exits within 3 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        rotations() <= at_signal + 1,
        "rotations went on after SIGTERM: {} then {}",
        at_signal,
        rotations()
    );
}
