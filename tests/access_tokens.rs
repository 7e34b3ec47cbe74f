//! GetAccessToken: a service asks for a token by its managed client's name
//! and never holds the secret. Against the dev upstream, whose token
//! endpoint keeps what it issued (introspection says which token is active,
//! with which scope) and whose token lifetime a test can shorten.

mod support;

use std::time::{Duration, SystemTime};

use dcr_dev_upstream::{DevUpstream, Fault, FaultKind, Route};
use dcr_gateway::config::RawConfig;
use dcr_gateway::pb::v1 as pb;
use support::managed::{listed, requests};
use support::{Client, TestGateway, reason};
use tonic::Code;

/// A gateway with its admin listener on (metrics).
async fn gateway(dev: &DevUpstream) -> TestGateway {
    let raw = RawConfig {
        admin_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    TestGateway::start_with(&dev.base_url(), raw).await
}

/// Ensures `name` as a client_credentials client allowed `scope`.
async fn ensure_machine(c: &mut Client, name: &str, scope: &str) -> pb::Client {
    let req = pb::EnsureClientRequest {
        name: name.into(),
        metadata: Some(pb::ClientMetadata {
            scope: Some(scope.into()),
            ..support::machine_client(name)
        }),
        initial_access_token: None,
    };
    let r = c.ensure_client(req).await.expect("ensure").into_inner();
    r.client.expect("a client")
}

fn token_req(name: &str, scopes: &[&str]) -> pb::GetAccessTokenRequest {
    pb::GetAccessTokenRequest {
        name: name.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        resource: Vec::new(),
    }
}

async fn token(c: &mut Client, name: &str, scopes: &[&str]) -> pb::GetAccessTokenResponse {
    c.get_access_token(token_req(name, scopes))
        .await
        .expect("a token")
        .into_inner()
}

/// What the dev upstream's introspection says of `token`.
async fn introspect(dev: &DevUpstream, token: &str) -> serde_json::Value {
    support::install_crypto_provider();
    let body = format!("token={token}");
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/introspect", dev.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("introspection answers");
    serde_json::from_slice(&resp.bytes().await.expect("a body")).expect("JSON")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_token_is_active_with_its_scope_and_the_next_comes_from_the_cache() {
    let dev = support::dev_upstream().await;
    let gw = gateway(&dev).await;
    let mut c = gw.client().await;
    let client = ensure_machine(&mut c, "billing-api", "api:read api:write").await;

    let narrow = token(&mut c, "billing-api", &["api:read"]).await;
    assert_eq!(narrow.token_type.to_lowercase(), "bearer");
    assert_eq!(narrow.scope, "api:read");
    let about = introspect(&dev, &narrow.access_token).await;
    assert_eq!(about["active"], true, "{about}");
    assert_eq!(about["client_id"], client.client_id.as_str());
    assert_eq!(about["scope"], "api:read");
    let expires = narrow.expires_at.expect("an expiry").seconds;
    assert!(expires > unix_now() + 3000, "an hour's token: {expires}");

    // No scope asked: the client's registered scope, stated to the server.
    let full = token(&mut c, "billing-api", &[]).await;
    assert_eq!(
        introspect(&dev, &full.access_token).await["scope"],
        "api:read api:write"
    );
    assert_ne!(full.access_token, narrow.access_token);

    let asked = requests(&dev, Route::Token);
    assert_eq!(asked, 2);
    for _ in 0..5 {
        let again = token(&mut c, "billing-api", &["api:read", "api:read"]).await;
        assert_eq!(again.access_token, narrow.access_token, "from the cache");
    }
    assert_eq!(
        requests(&dev, Route::Token),
        asked,
        "no request for a held token"
    );

    let shown = listed(&mut c, "billing-api").await.expect("listed");
    let tokens = shown.access_tokens.expect("its tokens are shown");
    assert_eq!(tokens.held, 2);
    assert!(tokens.last_error.is_empty());
    let metrics = gw
        .metric("dcr_access_token_cache_lookups_total{result=\"hit\"}")
        .await;
    assert!(metrics >= 5.0, "{metrics}");
}

#[tokio::test]
async fn thirty_callers_at_once_make_one_token_request() {
    let dev = support::dev_upstream().await;
    let gw = gateway(&dev).await;
    let mut c = gw.client().await;
    ensure_machine(&mut c, "jobs", "queue").await;
    // Each request takes a while, so the callers surely overlap it.
    dev.inject(Fault {
        route: Route::Token,
        times: Some(1),
        kind: FaultKind::Delay { ms: 300 },
    });
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move { token(&mut c, "jobs", &[]).await.access_token })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every caller got the one token");
    assert_eq!(requests(&dev, Route::Token), 1);
}

#[tokio::test]
async fn tokens_are_refreshed_ahead_and_callers_never_get_an_expired_one() {
    let dev = support::dev_upstream().await;
    dev.set_token_lifetime(Duration::from_secs(3));
    let gw = gateway(&dev).await;
    let mut c = gw.client().await;
    ensure_machine(&mut c, "short", "s").await;
    let first = token(&mut c, "short", &[]).await.access_token;
    let mut seen = vec![first.clone()];
    // Ask every 100 ms until two refreshes happened (at most 12 s): every
    // token handed out is active at the server when it arrives.
    let limit = tokio::time::Instant::now() + Duration::from_secs(12);
    while seen.len() < 3 {
        assert!(
            tokio::time::Instant::now() < limit,
            "no two refreshes in 12 s"
        );
        let t = token(&mut c, "short", &[]).await;
        let about = introspect(&dev, &t.access_token).await;
        assert_eq!(about["active"], true, "handed out an inactive token");
        assert!(
            t.expires_at.unwrap().seconds >= unix_now(),
            "handed out a token past its expiry"
        );
        if seen.last() != Some(&t.access_token) {
            seen.push(t.access_token);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two refreshes, each ahead of expiry (no caller waited for one).
    assert!(requests(&dev, Route::Token) >= 3);
    let lag = gw
        .metric("dcr_access_token_refresh_lag_seconds_count")
        .await;
    assert!(lag >= 2.0, "refreshes ran in the background: {lag}");
}

#[tokio::test]
async fn new_tokens_still_come_after_the_secret_rotates() {
    let dev = support::dev_upstream().await;
    let gw = gateway(&dev).await;
    let mut c = gw.client().await;
    let client = ensure_machine(&mut c, "rotating", "a b c").await;
    let before = token(&mut c, "rotating", &["a"]).await;
    support::rotate_secret(&mut c, &client.client_id).await;
    // The old token stays in use until its refresh.
    assert_eq!(
        token(&mut c, "rotating", &["a"]).await.access_token,
        before.access_token
    );
    // A new request uses the new secret, even once the old one is dead.
    dev.advance_clock(Duration::from_secs(3601));
    let after = token(&mut c, "rotating", &["b"]).await;
    assert_eq!(introspect(&dev, &after.access_token).await["active"], true);
}

#[tokio::test]
async fn names_are_per_namespace_and_errors_say_why() {
    let dev = support::dev_upstream().await;
    let gw = gateway(&dev).await;
    let mut c = gw.client().await;
    let err = c
        .get_access_token(token_req("nobody", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "MANAGED_CLIENT_NOT_FOUND");

    ensure_machine(&mut c, "narrow", "only").await;
    let err = c
        .get_access_token(token_req("narrow", &["other"]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "INVALID_SCOPE")
    );
    let err = c
        .get_access_token(token_req("narrow", &["bad scope"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("scopes[0]"), "{}", err.message());

    // A client without the grant.
    let req = pb::EnsureClientRequest {
        name: "browser".into(),
        metadata: Some(pb::ClientMetadata {
            client_name: Some("browser".into()),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..Default::default()
        }),
        initial_access_token: None,
    };
    c.ensure_client(req).await.unwrap();
    let err = c
        .get_access_token(token_req("browser", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "UNAUTHORIZED_CLIENT")
    );
    let shown = listed(&mut c, "browser").await.unwrap();
    assert!(
        shown
            .access_tokens
            .unwrap()
            .last_error
            .contains("UNAUTHORIZED_CLIENT"),
        "ListClients says why"
    );

    // The token endpoint refusing the credentials, with no newer ones held.
    dev.inject(Fault {
        route: Route::Token,
        times: Some(1),
        kind: FaultKind::Status {
            status: 401,
            retry_after: None,
            body: Some(r#"{"error":"invalid_client"}"#.into()),
        },
    });
    let err = c
        .get_access_token(token_req("narrow", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "UPSTREAM_CLIENT_REJECTED")
    );
    assert!(!err.message().contains("secret"), "{}", err.message());
}

#[tokio::test]
async fn no_token_or_secret_reaches_a_trace_log() {
    let served = support::process::serve_with(
        &["--dev-upstream", "--token-store", "memory"],
        &[("RUST_LOG", "trace")],
    )
    .await;
    let addr = served.addr.parse().unwrap();
    let mut c = Client::new(support::channel(addr).await);
    let client = ensure_machine(&mut c, "quiet", "q").await;
    let secret = client.client_secret.expect("a secret");
    let first = token(&mut c, "quiet", &[]).await;
    let cached = token(&mut c, "quiet", &[]).await;
    assert_eq!(first.access_token, cached.access_token);
    // The upstream token request's lines are in the log before it is read.
    support::eventually(Duration::from_secs(10), || async {
        let log = served.log.lock().unwrap();
        log.contains("/oauth/token").then_some(())
    })
    .await;
    let log = served.log.lock().unwrap().clone();
    assert!(
        !log.contains(&first.access_token),
        "an access token reached the log"
    );
    assert!(!log.contains(&secret), "a client secret reached the log");
}

#[tokio::test]
async fn private_key_jwt_on_sharkauth_is_refused_clearly_and_registers_nothing() {
    let dev = support::dev_upstream().await;
    let gw = gateway(&dev).await;
    let mut c = gw.client().await;
    let req = pb::EnsureClientRequest {
        name: "keyed".into(),
        metadata: Some(pb::ClientMetadata {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            ..support::machine_client("keyed")
        }),
        initial_access_token: None,
    };
    let err = c.ensure_client(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "INVALID_FIELD");
    assert!(
        err.message()
            .contains("metadata.token_endpoint_auth_method")
            && err.message().contains("SharkAuth drops jwks"),
        "{}",
        err.message()
    );
    assert_eq!(dev.clients_created(), 0, "nothing was registered");
}
