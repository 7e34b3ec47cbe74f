use super::*;

fn raw() -> RawConfig {
    RawConfig {
        dev_upstream: Some(true),
        ..Default::default()
    }
}

#[test]
fn defaults_apply() {
    let c = raw().validate().unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.upstream, UpstreamChoice::Dev);
    assert_eq!(c.http.request_timeout, DEFAULT_UPSTREAM_TIMEOUT);
    assert_eq!(c.retry.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(c.shed.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    assert_eq!(c.worker_threads, DEFAULT_WORKER_THREADS);
    assert_eq!(c.http.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
    // Only the loopback admin listener is on unless a scraper is asked for.
    assert_eq!(
        c.admin_listen.map(|a| a.to_string()).as_deref(),
        Some(DEFAULT_ADMIN_LISTEN)
    );
    assert_eq!(c.metrics_listen, None);
}

#[test]
fn higher_sources_win() {
    let file = RawConfig {
        upstream_timeout: Some("5s".into()),
        listen: Some("127.0.0.1:1".into()),
        ..raw()
    };
    let flags = RawConfig {
        upstream_timeout: Some("7s".into()),
        ..Default::default()
    };
    let c = flags.over(file).validate().unwrap();
    assert_eq!(c.http.request_timeout, Duration::from_secs(7));
    assert_eq!(c.listen.to_string(), "127.0.0.1:1");
}

#[test]
fn each_problem_names_its_setting() {
    let cases = [
        (RawConfig::default(), "--upstream"),
        (
            RawConfig {
                upstream: Some("https://a".into()),
                ..raw()
            },
            "--upstream",
        ),
        (
            RawConfig {
                upstream: Some("https://a?x=1".into()),
                dev_upstream: None,
                ..raw()
            },
            "--upstream",
        ),
        (
            RawConfig {
                listen: Some("x".into()),
                ..raw()
            },
            "--listen",
        ),
        (
            RawConfig {
                metrics_listen: Some("0.0.0.0".into()),
                ..raw()
            },
            "--metrics-listen",
        ),
        (
            RawConfig {
                upstream_timeout: Some("0s".into()),
                ..raw()
            },
            "--upstream-timeout",
        ),
        (
            RawConfig {
                connect_timeout: Some("11m".into()),
                ..raw()
            },
            "--connect-timeout",
        ),
        (
            RawConfig {
                worker_threads: Some(0),
                ..raw()
            },
            "--worker-threads",
        ),
        (
            RawConfig {
                worker_threads: Some(MAX_WORKER_THREADS + 1),
                ..raw()
            },
            "--worker-threads",
        ),
        (
            RawConfig {
                max_response_bytes: Some(10),
                ..raw()
            },
            "--max-response-bytes",
        ),
        (
            RawConfig {
                max_request_bytes: Some(1 << 40),
                ..raw()
            },
            "--max-request-bytes",
        ),
        (
            RawConfig {
                token_store: RawStoreConfig {
                    max_entries: Some(0),
                    ..Default::default()
                },
                ..raw()
            },
            "--token-store-max-entries",
        ),
        (
            RawConfig {
                token_store: RawStoreConfig {
                    backend: Some("disk".into()),
                    ..Default::default()
                },
                ..raw()
            },
            "--token-store",
        ),
        (
            RawConfig {
                token_store: RawStoreConfig {
                    backend: Some("redis".into()),
                    ..Default::default()
                },
                ..raw()
            },
            "--token-store-redis-url",
        ),
        (
            RawConfig {
                token_store: RawStoreConfig {
                    keys: Some("k1=short".parse().unwrap()),
                    ..Default::default()
                },
                ..raw()
            },
            "DCR_GATEWAY_TOKEN_STORE_KEYS",
        ),
        (
            RawConfig {
                callers: Some("a=b".parse().unwrap()),
                ..raw()
            },
            "DCR_GATEWAY_CALLERS",
        ),
    ];
    for (raw, setting) in cases {
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.starts_with(setting), "{err}");
    }
}

#[test]
fn a_durable_store_without_a_keyring_needs_consent_outside_the_dev_upstream() {
    let store = |backend: &str, allow: Option<bool>| RawStoreConfig {
        backend: Some(backend.into()),
        path: Some("/var/lib/t.redb".into()),
        redis_url: Some("redis://127.0.0.1:1".parse().unwrap()),
        allow_plaintext_store: allow,
        ..Default::default()
    };
    let real = |token_store| RawConfig {
        upstream: Some("https://auth.example".into()),
        token_store,
        ..Default::default()
    };
    let err = real(store("file", None))
        .validate()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "token store: the file store at /var/lib/t.redb has no keyring: configure \
         --token-store-keys-file (or DCR_GATEWAY_TOKEN_STORE_KEYS), or pass --allow-plaintext-store"
    );
    let err = real(store("redis", Some(false))).validate().unwrap_err();
    assert!(err.to_string().contains("the redis store"), "{err}");
    real(store("file", Some(true))).validate().unwrap();
    real(store("memory", None)).validate().unwrap();
    let keyed = RawStoreConfig {
        keys: Some(
            "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
                .parse()
                .unwrap(),
        ),
        ..store("redis", None)
    };
    real(keyed).validate().unwrap();
    RawConfig {
        token_store: store("file", None),
        ..raw()
    }
    .validate()
    .expect("with the dev upstream a file store may go without a keyring");
}

#[test]
fn file_rejects_unknown_keys_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "upstream = \"https://a\"\nlisten_addr = \"x\"\n").unwrap();
    let err = RawConfig::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("listen_addr"), "{err}");
    let text = "upstream = \"https://a\"\nshutdown_grace = \"3s\"\n\n[token_store]\nbackend = \"memory\"\n";
    std::fs::write(&path, text).unwrap();
    let c = RawConfig::from_file(&path).unwrap().validate().unwrap();
    assert_eq!(c.shutdown_grace, Duration::from_secs(3));
}

#[test]
fn tls_and_listener_problems_name_their_setting() {
    let missing = Some("/nonexistent/dcr-test.pem".to_owned());
    let cases = [
        (
            RawConfig {
                tls_cert: missing.clone(),
                ..raw()
            },
            "--tls-key",
        ),
        (
            RawConfig {
                tls_key: missing.clone(),
                ..raw()
            },
            "--tls-cert",
        ),
        (
            RawConfig {
                tls_client_ca: missing.clone(),
                ..raw()
            },
            "--tls-client-ca",
        ),
        (
            RawConfig {
                tls_cert: missing.clone(),
                tls_key: missing.clone(),
                ..raw()
            },
            "--tls-cert",
        ),
        (
            RawConfig {
                tls_cert: missing.clone(),
                tls_key: missing.clone(),
                listen: Some("unix:/tmp/dcr.sock".into()),
                ..raw()
            },
            "--tls-cert",
        ),
        (
            RawConfig {
                health_listen: Some("nowhere".into()),
                ..raw()
            },
            "--health-listen",
        ),
        (
            RawConfig {
                upstream_ca_file: missing.clone(),
                ..raw()
            },
            "--upstream-ca-file",
        ),
        (
            RawConfig {
                upstream_client_cert: missing.clone(),
                ..raw()
            },
            "--upstream-client-key",
        ),
        (
            RawConfig {
                require_upstream_tls: Some(true),
                ..raw()
            },
            "--require-upstream-tls",
        ),
        (
            RawConfig {
                require_upstream_tls: Some(true),
                upstream: Some("http://auth.example".into()),
                dev_upstream: None,
                ..raw()
            },
            "--require-upstream-tls",
        ),
        (
            RawConfig {
                initial_access_token: Some(Secret(secrecy::SecretString::from("has space"))),
                ..raw()
            },
            "DCR_GATEWAY_INITIAL_ACCESS_TOKEN",
        ),
        (
            RawConfig {
                initial_access_token_file: missing.clone(),
                ..raw()
            },
            "--initial-access-token-file",
        ),
    ];
    for (raw, setting) in cases {
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.starts_with(setting), "expected {setting}: {err}");
        assert!(!err.contains("has space"), "a token leaked into {err}");
    }
}

#[test]
fn initial_access_token_file_ignores_surrounding_whitespace() {
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iat");
    std::fs::write(&path, "iat-value\n").unwrap();
    let c = RawConfig {
        initial_access_token_file: Some(path.display().to_string()),
        ..raw()
    }
    .validate()
    .unwrap();
    assert_eq!(c.initial_access_token.unwrap().expose_secret(), "iat-value");
}

#[test]
fn the_redis_url_comes_from_a_file_and_errors_name_the_file_setting() {
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Some(path.display().to_string())
    };
    let redis = |store: RawStoreConfig| RawConfig {
        token_store: RawStoreConfig {
            backend: Some("redis".into()),
            keys: Some(crate::config::Secret(secrecy::SecretString::from(
                "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ))),
            ..store
        },
        ..raw()
    };
    let c = redis(RawStoreConfig {
        redis_url_file: file("url", "redis://:pw@127.0.0.1:6379/0\n"),
        ..Default::default()
    })
    .validate()
    .unwrap();
    match c.store.backend {
        crate::store::Backend::Redis { url, .. } => {
            assert_eq!(url.expose_secret(), "redis://:pw@127.0.0.1:6379/0")
        }
        _ => panic!("not the redis backend"),
    }
    let err = redis(RawStoreConfig {
        redis_url_file: file("bad", "http://:pw@127.0.0.1\n"),
        ..Default::default()
    })
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("--token-store-redis-url-file"), "{err}");
    assert!(!err.contains("pw"), "the URL reached the error: {err}");
    let err = redis(RawStoreConfig {
        redis_url: Some("redis://127.0.0.1".parse().unwrap()),
        redis_url_file: file("both", "redis://127.0.0.1\n"),
        ..Default::default()
    })
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("not both"), "{err}");
    let missing = dir.path().join("missing").display().to_string();
    let err = redis(RawStoreConfig {
        redis_url_file: Some(missing.clone()),
        ..Default::default()
    })
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--token-store-redis-url-file") && err.contains(&missing),
        "{err}"
    );
}

#[test]
fn an_endless_settings_file_is_refused_not_read_whole() {
    for raw in [
        RawConfig {
            callers_file: Some("/dev/zero".into()),
            ..raw()
        },
        RawConfig {
            tls_cert: Some("/dev/zero".into()),
            tls_key: Some("/dev/zero".into()),
            ..raw()
        },
        RawConfig {
            upstream_ca_file: Some("/dev/zero".into()),
            ..raw()
        },
    ] {
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}

#[test]
fn redis_topologies_are_checked_and_errors_name_the_setting_never_the_url() {
    use crate::store::{Backend, RedisTopology};
    let store = |backend: &str, url: &str, more: RawStoreConfig| RawConfig {
        token_store: RawStoreConfig {
            backend: Some(backend.into()),
            redis_url: Some(url.parse().unwrap()),
            keys: Some(crate::config::Secret(secrecy::SecretString::from(
                "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ))),
            ..more
        },
        ..raw()
    };
    let seeds = "redis://:pw@127.0.0.1:7000, redis://:pw@127.0.0.1:7001";
    let c = store("redis-cluster", seeds, RawStoreConfig::default())
        .validate()
        .unwrap();
    let Backend::Redis { topology, wait, .. } = c.store.backend else {
        panic!("not a redis backend")
    };
    assert_eq!(topology, RedisTopology::Cluster);
    assert_eq!(wait.min_replicas, None, "decided by what the servers have");
    let sentinel = RawStoreConfig {
        redis_sentinel_master: Some("tokens".into()),
        redis_min_replicas: Some(2),
        redis_replica_wait: Some("250ms".into()),
        ..Default::default()
    };
    let c = store("redis-sentinel", seeds, sentinel).validate().unwrap();
    let Backend::Redis { topology, wait, .. } = c.store.backend else {
        panic!("not a redis backend")
    };
    assert_eq!(
        topology,
        RedisTopology::Sentinel {
            master: "tokens".into()
        }
    );
    assert_eq!(wait.min_replicas, Some(2));
    assert_eq!(wait.max_wait, Duration::from_millis(250));
    let refused = |raw: RawConfig, setting: &str| {
        let err = raw.validate().unwrap_err().to_string();
        assert!(err.contains(setting), "{err}");
        assert!(!err.contains("pw"), "the URL reached the error: {err}");
    };
    let none = RawStoreConfig::default;
    refused(store("redis", seeds, none()), "--token-store-redis-url");
    refused(
        store("redis-sentinel", seeds, none()),
        "--token-store-redis-sentinel-master",
    );
    let master = RawStoreConfig {
        redis_sentinel_master: Some("m".into()),
        ..none()
    };
    refused(
        store("redis-cluster", seeds, master),
        "--token-store-redis-sentinel-master",
    );
    let bad_seed = "redis://:pw@127.0.0.1:7000,http://:pw@127.0.0.1:7001";
    refused(store("redis-cluster", bad_seed, none()), "URL 2 of 2");
    let replicas = RawStoreConfig {
        redis_min_replicas: Some(17),
        ..none()
    };
    refused(
        store("redis", "redis://:pw@127.0.0.1", replicas),
        "--token-store-redis-min-replicas",
    );
    let wait = RawStoreConfig {
        redis_replica_wait: Some("2s".into()),
        ..none()
    };
    refused(
        store("redis", "redis://:pw@127.0.0.1", wait),
        "--token-store-redis-replica-wait",
    );
}
