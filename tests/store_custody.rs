//! Custody of stored tokens at rest: the file store is owner-only, a durable
//! store without a keyring needs the operator's explicit consent, a plaintext
//! value under a keyring is refused (never served) until `tokens seal` seals it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::process::{Served, run, run_with, serve_args, serve_with};
use support::redis::RedisServer;
use support::{Client, TestGateway, channel, dev_upstream, get_req, register};
use tonic::Code;

use support::redis::K1;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Kills a served gateway and waits, so the store file is unlocked.
async fn stop(mut served: Served) {
    served.child.start_kill().unwrap();
    served.child.wait().await.unwrap();
}

async fn client(addr: &str) -> Client {
    Client::new(channel(addr.parse().unwrap()).await)
}

#[tokio::test]
async fn the_file_store_is_owner_only_and_plaintext_needs_consent_then_a_seal() {
    let dev = dev_upstream().await;
    let upstream = dev.base_url();
    let dir = support::temp_dir("custody-file");
    let path = dir.join("made/by-gateway/tokens.redb");
    let path = path.to_str().unwrap();
    let keys_file = dir.join("keys");
    std::fs::write(&keys_file, format!("{K1}\n")).unwrap();
    let keys_file = keys_file.to_str().unwrap();
    let plain = ["--upstream", &upstream, "--token-store-path", path];

    // No keyring, no consent: one clear line naming the settings, and no file.
    let (ok, _, err) = run(&serve_args(&plain)).await;
    let last = err.lines().last().unwrap_or_default();
    assert!(!ok);
    assert_eq!(
        last,
        format!(
            "dcr-gateway: token store: the file store at {path} has no keyring: configure \
             --token-store-keys-file (or DCR_GATEWAY_TOKEN_STORE_KEYS), or pass --allow-plaintext-store"
        )
    );
    assert!(!Path::new(path).exists());

    // With consent it starts, warns, and creates the folder 0700 and the file 0600.
    let consent = [&plain[..], &["--allow-plaintext-store"]].concat();
    let served = serve_with(&consent, &[]).await;
    assert!(
        served
            .log
            .lock()
            .unwrap()
            .contains("TOKEN STORE IS NOT ENCRYPTED")
    );
    assert_eq!(mode(Path::new(path)), 0o600);
    assert_eq!(mode(&dir.join("made")), 0o700);
    assert_eq!(mode(&dir.join("made/by-gateway")), 0o700);
    let created = register(&mut client(&served.addr).await, "plain").await;
    let (id, rat) = (
        created.client_id,
        created.registration_access_token.unwrap(),
    );
    stop(served).await;
    assert!(contains(&std::fs::read(path).unwrap(), &rat));

    // A keyring now: the plaintext entry is refused, at start, never served.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let keyed = [&plain[..], &["--token-store-keys-file", keys_file]].concat();
    let (ok, _, err) = run(&serve_args(&keyed)).await;
    assert!(!ok);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("stored in plaintext but a keyring is configured")
            && last.contains("tokens seal"),
        "{err}"
    );
    assert_eq!(mode(Path::new(path)), 0o600, "a looser file is tightened");
    assert!(err.contains("was mode 0644"), "{err}");

    let store = ["tokens", "--token-store-path", path];
    let (ok, _, err) = run(&[&store[..], &["--allow-plaintext-store=true", "seal"]].concat()).await;
    assert!(!ok && err.contains("--token-store-keys-file"), "{err}");
    let with_keys = [&store[..], &["--token-store-keys-file", keys_file, "seal"]].concat();
    let (ok, out, err) = run(&with_keys).await;
    assert!(ok, "{err}");
    assert!(out.contains("sealed 1 plaintext entry"), "{out}");
    assert!(!contains(&std::fs::read(path).unwrap(), &rat));
    let (ok, out, _) = run(&with_keys).await;
    assert!(ok && out.contains("sealed 0 plaintext entries"), "{out}");

    let served = serve_with(&keyed, &[]).await;
    assert!(!served.log.lock().unwrap().contains("NOT ENCRYPTED"));
    client(&served.addr)
        .await
        .get_client(get_req(&id, None))
        .await
        .expect("the sealed entry reads, and its token works");
}

#[tokio::test]
async fn a_plaintext_value_planted_in_redis_is_refused_until_tokens_seal() {
    let redis = RedisServer::start().await;
    let dev = dev_upstream().await;
    // The old spelling, with its colon: the same keys as `custody`.
    let raw = support::redis::store_config(&redis.url(), "custody:");
    let gw = TestGateway::start_with(&dev.base_url(), raw).await;
    let mut c = gw.client().await;
    let created = register(&mut c, "planted").await;
    let (id, rat) = (
        created.client_id.clone(),
        created.registration_access_token.clone().unwrap(),
    );

    let mut conn = redis.connection().await;
    let keys = redis.keys("custody:*").await;
    assert_eq!(keys.len(), 1);
    // The untagged form: the PLAIN tag byte, then the record as JSON.
    let record = serde_json::json!({
        "t": rat,
        "u": created.registration_client_uri,
        "l": 0,
    });
    let mut planted = vec![0u8];
    planted.extend(serde_json::to_vec(&record).unwrap());
    let _: () = redis::cmd("HSET")
        .arg(&keys[0])
        .arg("val")
        .arg(&planted)
        .query_async(&mut conn)
        .await
        .unwrap();

    let err = c.get_client(get_req(&id, None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("plaintext"), "{}", err.message());
    assert!(!err.message().contains(&rat));

    let dir = support::temp_dir("custody-redis");
    let keys_file = dir.join("keys");
    std::fs::write(&keys_file, K1).unwrap();
    let (ok, out, err) = run(&[
        "tokens",
        "--token-store",
        "redis",
        "--token-store-redis-url",
        &redis.url(),
        "--token-store-redis-prefix",
        "custody",
        "--token-store-keys-file",
        keys_file.to_str().unwrap(),
        "seal",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("sealed 1 plaintext entry"), "{out}");
    let value: Vec<u8> = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("val")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value.first(), Some(&1), "now tagged sealed");
    assert!(!contains(&value, &rat));
    c.get_client(get_req(&id, None))
        .await
        .expect("the sealed value reads, and its token works");
}

#[tokio::test]
async fn redis_prefixes_name_disjoint_keyspaces_and_an_overlapping_one_is_refused() {
    let redis = RedisServer::start().await;
    let dev = dev_upstream().await;
    let url = redis.url();
    let mut ids = Vec::new();
    let mut gateways = Vec::new();
    for prefix in ["a", "a-b"] {
        let gw =
            TestGateway::start_with(&dev.base_url(), support::redis::store_config(&url, prefix))
                .await;
        ids.push(register(&mut gw.client().await, prefix).await.client_id);
        gateways.push(gw);
    }

    let env = [("DCR_GATEWAY_TOKEN_STORE_KEYS", K1)];
    for (prefix, (mine, theirs)) in [("a", (&ids[0], &ids[1])), ("a-b", (&ids[1], &ids[0]))] {
        let args = [
            "tokens",
            "--token-store",
            "redis",
            "--token-store-redis-url",
            &url,
            "--token-store-redis-prefix",
            prefix,
            "list",
        ];
        let (ok, out, err) = run_with(&args, &env).await;
        assert!(ok, "{err}");
        assert!(out.starts_with("1 token(s)"), "prefix {prefix}: {out}");
        assert!(
            out.contains(mine.as_str()) && !out.contains(theirs.as_str()),
            "{out}"
        );
    }
    let keys = redis.keys("a:*").await;
    assert_eq!(keys.len(), 1, "every key is NAME:...: {keys:?}");

    // The old overlapping style is refused at start, naming the setting.
    let (ok, _, err) = run_with(
        &[
            "serve",
            "--upstream",
            &dev.base_url(),
            "--token-store",
            "redis",
            "--token-store-redis-url",
            &url,
            "--token-store-redis-prefix",
            "dcr-gateway:staging:",
        ],
        &env,
    )
    .await;
    let last = err.lines().last().unwrap_or_default();
    assert!(!ok);
    assert!(
        last.contains("--token-store-redis-prefix: \"dcr-gateway:staging:\" has a `:` inside")
            && last.contains("\"dcr-gateway-staging\""),
        "{err}"
    );
}

#[tokio::test]
async fn tokens_import_refuses_a_bad_key_part_naming_entry_and_field() {
    let dir = support::temp_dir("custody-import");
    let path = dir.join("t.redb");
    let path = path.to_str().unwrap();
    let env = [("DCR_GATEWAY_TOKEN_STORE_KEYS", K1)];
    let entry = |upstream: &str, namespace: &str, client_id: &str| {
        serde_json::json!({
            "upstream": upstream,
            "namespace": namespace,
            "client_id": client_id,
            "registration_client_uri": "",
            "learned_at": 0,
            "registration_access_token": "rat-0123456789",
        })
    };
    let good = entry("http://auth.example", "default", "good-client");
    let cases = [
        (
            entry("http://auth.example", "default", "evil\u{1f}client"),
            "entry 2 (of 2): client_id: must not contain control characters",
        ),
        (
            entry(&format!("http://{}", "x".repeat(3000)), "default", "c"),
            "entry 2 (of 2): upstream: is longer than 2048 bytes",
        ),
        (
            entry("http://auth.example", "", "c"),
            "entry 2 (of 2): namespace: must not be empty",
        ),
        (
            entry("http://auth.example", "default", ".."),
            "entry 2 (of 2): client_id: must not be `.` or `..`",
        ),
    ];
    let file = dir.join("export.json");
    let file = file.to_str().unwrap();
    let import = [
        "tokens",
        "--token-store-path",
        path,
        "import",
        "--file",
        file,
    ];
    for (bad, needle) in cases {
        std::fs::write(file, serde_json::to_vec(&[&good, &bad]).unwrap()).unwrap();
        let (ok, _, err) = run_with(&import, &env).await;
        assert!(!ok, "{needle}");
        assert!(
            err.contains(needle) && err.contains("nothing imported"),
            "{err}"
        );
    }
    // A refused import made no store at all, and `list` says so.
    let list = ["tokens", "--token-store-path", path, "list"];
    let (ok, _, err) = run_with(&list, &env).await;
    assert!(!ok && err.contains("no token store at"), "{err}");
    assert!(!std::path::Path::new(path).exists());

    std::fs::write(file, serde_json::to_vec(&[&good]).unwrap()).unwrap();
    let (ok, out, err) = run_with(&import, &env).await;
    assert!(ok && out.contains("imported 1"), "{out} {err}");
}
