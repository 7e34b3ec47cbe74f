//! The durable token store: surviving `kill -9`, durable rotations, Redis shared
//! by two gateways and restarted under them, encryption at rest and key
//! rotation, caller namespaces, and the `tokens` operator commands.

mod support;

use std::path::Path;

use dcr_gateway::config::{RawConfig, RawStoreConfig};
use dcr_gateway::pb::v1 as pb;
use support::process::{run, serve, serve_args};
use support::redis::RedisServer;
use support::{Client, TestGateway, channel, dev_upstream, get_req, machine_client, register};
use tonic::Code;
use tonic_types::StatusExt;

use support::redis::K1;
const K2: &str = "k2=HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";
const K1_WRONG: &str = "k1=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn temp_dir(name: &str) -> support::TempDir {
    support::temp_dir(&format!("store-{name}"))
}

async fn client(addr: &str) -> Client {
    Client::new(channel(addr.parse().unwrap()).await)
}

/// Writes keyring `text` to `dir/name` and returns the path: the keyring has
/// no flag, so it goes in a file (or the environment).
fn keys_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn file_args<'a>(upstream: &'a str, path: &'a str, keys: &'a str) -> Vec<&'a str> {
    vec![
        "--upstream",
        upstream,
        "--token-store",
        "file",
        "--token-store-path",
        path,
        "--token-store-keys-file",
        keys,
    ]
}

fn rotate_req(id: &str) -> pb::RotateRegistrationTokenRequest {
    pb::RotateRegistrationTokenRequest {
        client_id: id.into(),
        registration_access_token: None,
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn file_store_survives_kill_9_and_keeps_rotations() {
    let dev = dev_upstream().await;
    let dir = temp_dir("kill9");
    let path = dir.join("tokens.redb");
    let (path, upstream) = (path.to_str().unwrap(), dev.base_url());
    let (k1, k2) = (keys_file(&dir, "k1", K1), keys_file(&dir, "k2", K2));
    let args = file_args(&upstream, path, &k1);

    let (mut gw, addr) = serve(&args).await;
    let mut c = client(&addr).await;
    let mut ids = Vec::new();
    let mut rats = Vec::new();
    for i in 0..100 {
        let created = register(&mut c, &format!("durable{i}")).await;
        rats.push(created.registration_access_token.unwrap());
        ids.push(created.client_id);
    }
    gw.start_kill().unwrap();
    gw.wait().await.unwrap();

    let (mut gw, addr) = serve(&args).await;
    let mut c = client(&addr).await;
    for id in &ids {
        c.get_client(get_req(id, None))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
    }
    // Rotate, kill the moment the reply is in, restart: the new token is there.
    let rotated = c
        .rotate_registration_token(rotate_req(&ids[0]))
        .await
        .unwrap()
        .into_inner();
    gw.start_kill().unwrap();
    gw.wait().await.unwrap();
    let new_rat = rotated.client.unwrap().registration_access_token.unwrap();

    let file = std::fs::read(path).unwrap();
    for rat in rats.iter().chain([&new_rat]) {
        assert!(
            !contains(&file, rat),
            "the store file holds a token in the clear"
        );
    }

    let (_gw, addr) = serve(&args).await;
    let mut c = client(&addr).await;
    c.get_client(get_req(&ids[0], None))
        .await
        .expect("the rotated token was stored durably");
    c.get_client(get_req(&ids[0], Some(&new_rat)))
        .await
        .expect("and it is the one returned");

    // Operator commands, with the gateway stopped (the file is locked while it runs).
    drop(_gw);
    let (ok, out, err) = run(&[
        "tokens",
        "--token-store-path",
        path,
        "--token-store-keys-file",
        &k1,
        "list",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("100 token(s)"), "{out}");
    assert!(
        out.contains(&ids[42]) && !contains(out.as_bytes(), &rats[42]),
        "list shows ids, never tokens"
    );
    let (ok, out, _) = run(&[
        "tokens",
        "--token-store-path",
        path,
        "--token-store-keys-file",
        &k1,
        "export",
    ])
    .await;
    assert!(
        ok && !contains(out.as_bytes(), &rats[42]),
        "export hides tokens without --reveal"
    );
    let (ok, export, _) = run(&[
        "tokens",
        "--token-store-path",
        path,
        "--token-store-keys-file",
        &k1,
        "export",
        "--reveal",
    ])
    .await;
    assert!(ok && contains(export.as_bytes(), &rats[42]));
    let (ok, out, _) = run(&[
        "tokens",
        "--token-store-path",
        path,
        "--token-store-keys-file",
        &k1,
        "forget",
        &ids[42],
    ])
    .await;
    assert!(ok && out.contains("forgot 1"), "{out}");

    let copy = dir.join("copy.redb");
    let export_file = dir.join("export.json");
    std::fs::write(&export_file, &export).unwrap();
    let copy = copy.to_str().unwrap();
    let import = [
        "tokens",
        "--token-store-path",
        copy,
        "--token-store-keys-file",
        &k2,
        "import",
        "--file",
    ];
    let (ok, out, err) = run(&[&import[..], &[export_file.to_str().unwrap()]].concat()).await;
    assert!(ok && out.contains("imported 100"), "{out} {err}");
    let copy_args = file_args(&upstream, copy, &k2);
    let (_gw, addr) = serve(&copy_args).await;
    let mut c = client(&addr).await;
    c.get_client(get_req(&ids[42], None))
        .await
        .expect("the imported token works");
}

#[tokio::test]
async fn wrong_key_fails_startup_and_a_rotated_keyring_reads_old_entries() {
    let dev = dev_upstream().await;
    let dir = temp_dir("keys");
    let path = dir.join("tokens.redb");
    let (path, upstream) = (path.to_str().unwrap(), dev.base_url());
    let k1 = keys_file(&dir, "k1", K1);
    let (k1_wrong, k2) = (keys_file(&dir, "k1w", K1_WRONG), keys_file(&dir, "k2", K2));

    let (gw, addr) = serve(&file_args(&upstream, path, &k1)).await;
    let id = register(&mut client(&addr).await, "keyed").await.client_id;
    drop(gw);

    let (ok, _, err) = run(&serve_args(&file_args(&upstream, path, &k1_wrong))).await;
    assert!(!ok);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("does not decrypt with key id \"k1\""),
        "{err}"
    );
    let (ok, _, err) = run(&serve_args(&file_args(&upstream, path, &k2))).await;
    assert!(
        !ok && err.contains("key id \"k1\", which the keyring does not hold"),
        "{err}"
    );

    let ring = keys_file(&dir, "ring", &format!("{K2}\n{K1}\n"));
    let (_gw, addr) = serve(&file_args(&upstream, path, &ring)).await;
    client(&addr)
        .await
        .get_client(get_req(&id, None))
        .await
        .expect("old entries read with the old key");
}

#[tokio::test]
async fn two_gateways_share_one_redis_which_may_restart() {
    let mut redis = RedisServer::start().await;
    let dev = dev_upstream().await;
    let a = TestGateway::start_with(
        &dev.base_url(),
        support::redis::store_config(&redis.url(), "test:"),
    )
    .await;
    let b = TestGateway::start_with(
        &dev.base_url(),
        support::redis::store_config(&redis.url(), "test:"),
    )
    .await;
    let (mut ca, mut cb) = (a.client().await, b.client().await);

    let created = register(&mut ca, "shared").await;
    let id = created.client_id;
    let rotated = ca
        .rotate_registration_token(rotate_req(&id))
        .await
        .unwrap()
        .into_inner();
    let new_rat = rotated.client.unwrap().registration_access_token.unwrap();
    cb.get_client(get_req(&id, None))
        .await
        .expect("b reads with the token a stored");

    // The values in Redis hold no token bytes.
    let mut conn = redis.connection().await;
    let keys = redis.keys("test:*").await;
    assert_eq!(keys.len(), 1);
    let value: Vec<u8> = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("val")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!contains(&value, &new_rat) && !value.is_empty());

    redis.restart().await;
    cb.get_client(get_req(&id, None))
        .await
        .expect("b reconnects after the restart");
    let again = ca
        .rotate_registration_token(rotate_req(&id))
        .await
        .expect("a reconnects too");
    let newest = again
        .into_inner()
        .client
        .unwrap()
        .registration_access_token
        .unwrap();
    cb.get_client(get_req(&id, Some(&newest))).await.unwrap();
    cb.get_client(get_req(&id, None))
        .await
        .expect("the newest token is shared");
}

#[tokio::test]
async fn interleaved_rotations_reads_and_updates_leave_a_working_token_in_the_file_store() {
    let dev = dev_upstream().await;
    let dir = temp_dir("interleave");
    let raw = RawConfig {
        token_store: RawStoreConfig {
            backend: Some("file".into()),
            path: Some(dir.join("t.redb").to_str().unwrap().into()),
            keys: Some(K1.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    };
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut c = gw.client().await;
    let id = register(&mut c, "interleaved").await.client_id;
    let mut calls = Vec::new();
    for i in 0..24 {
        let (mut c, id) = (c.clone(), id.clone());
        calls.push(tokio::spawn(async move {
            match i % 3 {
                0 => c.rotate_registration_token(rotate_req(&id)).await.map(drop),
                1 => c.get_client(get_req(&id, None)).await.map(drop),
                _ => {
                    let req = pb::UpdateClientRequest {
                        client_id: id.clone(),
                        registration_access_token: None,
                        metadata: Some(machine_client("interleaved")),
                        update_mask: None,
                    };
                    c.update_client(req).await.map(drop)
                }
            }
        }));
    }
    for call in calls {
        call.await
            .unwrap()
            .expect("no call fails from an interleaving");
    }
    c.get_client(get_req(&id, None))
        .await
        .expect("the stored token works");
    assert!(Path::new(&dir.join("t.redb")).exists());
}

#[tokio::test]
async fn callers_cannot_use_each_others_stored_tokens() {
    let dev = dev_upstream().await;
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
    let (billing, shop) = (
        "Bearer billing-token-0123456789",
        "Bearer shop-token-0123456789abc",
    );

    let reg = pb::RegisterClientRequest {
        metadata: Some(machine_client("billing-app")),
        initial_access_token: None,
    };
    let created = c
        .register_client(support::as_caller(reg, billing))
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let (id, rat) = (
        created.client_id,
        created.registration_access_token.unwrap(),
    );

    c.get_client(support::as_caller(get_req(&id, None), billing))
        .await
        .expect("billing uses its stored token");
    let err = c
        .get_client(support::as_caller(get_req(&id, None), shop))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "shop cannot use billing's token"
    );
    assert!(
        err.message().contains("pass registration_access_token"),
        "{}",
        err.message()
    );
    c.get_client(support::as_caller(get_req(&id, Some(&rat)), shop))
        .await
        .expect("with an explicit token it can");

    let err = c.get_client(get_req(&id, None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.get_error_details().error_info().unwrap().reason,
        "CALLER_UNAUTHENTICATED"
    );
    let err = c
        .get_client(support::as_caller(
            get_req(&id, None),
            "Bearer not-a-caller-token-xyz",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}
