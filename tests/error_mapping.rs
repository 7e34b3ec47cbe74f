//! Each row of the error table: an upstream answer (from a scripted HTTP server
//! or the dev upstream, over real sockets) and the gRPC status it becomes.

mod support;

use std::time::Duration;

use dcr_gateway::config::{RawConfig, Secret};
use dcr_gateway::pb::v1 as pb;
use prost_types::FieldMask;
use support::scripted::{Answer, Scripted};
use support::{TestGateway, get_req, machine_client, stack};
use tonic::{Code, Status};
use tonic_types::StatusExt;

const RAT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Sends GetClient through a gateway (with retries off, so each answer maps
/// directly) whose upstream always gives `answer`.
async fn get_with(answer: Answer) -> (Status, Scripted) {
    let upstream = Scripted::start(vec![answer]).await;
    let raw = RawConfig {
        max_attempts: Some(1),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&upstream.url(), raw).await;
    let mut client = gw.client().await;
    let status = client
        .get_client(get_req("c1", Some(RAT)))
        .await
        .unwrap_err();
    (status, upstream)
}

/// The ErrorInfo reason, checked to be AIP-193's UPPER_SNAKE form.
fn reason(status: &Status) -> String {
    let reason = status
        .get_error_details()
        .error_info()
        .expect("ErrorInfo on every error")
        .reason
        .clone();
    assert!(
        reason.len() <= 63
            && reason.starts_with(|c: char| c.is_ascii_uppercase())
            && !reason.ends_with('_')
            && reason
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
        "reason {reason:?} is not UPPER_SNAKE"
    );
    reason
}

fn meta(status: &Status, key: &str) -> Option<String> {
    status
        .get_error_details()
        .error_info()?
        .metadata
        .get(key)
        .cloned()
}

#[tokio::test]
async fn http_statuses_map_to_grpc_codes() {
    let rows: &[(u16, &str, Code, &str)] = &[
        (
            400,
            r#"{"error":"invalid_client_metadata","error_description":"client_name is required"}"#,
            Code::InvalidArgument,
            "INVALID_CLIENT_METADATA",
        ),
        (
            400,
            r#"{"error":"invalid_software_statement","error_description":"bad jwt"}"#,
            Code::InvalidArgument,
            "INVALID_SOFTWARE_STATEMENT",
        ),
        (
            400,
            r#"{"error":"unapproved_software_statement","error_description":"no"}"#,
            Code::PermissionDenied,
            "UNAPPROVED_SOFTWARE_STATEMENT",
        ),
        (
            400,
            r#"{"error":"access_denied","error_description":"no"}"#,
            Code::PermissionDenied,
            "UPSTREAM_ACCESS_DENIED",
        ),
        (
            401,
            r#"{"error":"invalid_token","error_description":"client not found"}"#,
            Code::Unauthenticated,
            "UPSTREAM_TOKEN_REJECTED",
        ),
        (
            401,
            r#"{"error":"invalid_client"}"#,
            Code::Unauthenticated,
            "UPSTREAM_TOKEN_REJECTED",
        ),
        (
            403,
            r#"{"error":"forbidden"}"#,
            Code::PermissionDenied,
            "UPSTREAM_ACCESS_DENIED",
        ),
        (
            404,
            "404 page not found\n",
            Code::NotFound,
            "CLIENT_NOT_FOUND",
        ),
        (405, "", Code::Unimplemented, "UNSUPPORTED_BY_UPSTREAM"),
        (
            409,
            r#"{"error":"conflict","error_description":"exists"}"#,
            Code::AlreadyExists,
            "UPSTREAM_CONFLICT",
        ),
        (
            500,
            r#"{"error":"server_error","error_description":"failed to read client metadata"}"#,
            Code::Internal,
            "UPSTREAM_SERVER_ERROR",
        ),
        (
            502,
            "<html>bad gateway</html>",
            Code::Unavailable,
            "UPSTREAM_UNAVAILABLE",
        ),
        (
            503,
            r#"{"error":"service_unavailable","message":"Server is reloading"}"#,
            Code::Unavailable,
            "UPSTREAM_UNAVAILABLE",
        ),
        (504, "", Code::Unavailable, "UPSTREAM_UNAVAILABLE"),
    ];
    for (http, body, code, want_reason) in rows {
        let (status, _) = get_with(Answer::json(*http, body)).await;
        assert_eq!(status.code(), *code, "HTTP {http}: {status:?}");
        assert_eq!(reason(&status), *want_reason, "HTTP {http}");
        // The server's own code travels in metadata, never as the reason.
        let rfc = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned));
        assert_eq!(meta(&status, "error"), rfc, "HTTP {http}");
        assert_eq!(
            meta(&status, "http_status").as_deref(),
            Some(http.to_string().as_str())
        );
        assert!(
            !status.message().contains(RAT),
            "HTTP {http} leaked the RAT"
        );
    }
}

#[tokio::test]
async fn error_description_reaches_the_caller_without_the_token() {
    let body = format!(r#"{{"error":"invalid_token","error_description":"token {RAT} is wrong"}}"#);
    let (status, _) = get_with(Answer::json(401, &body)).await;
    assert!(
        status.message().contains("[redacted] is wrong"),
        "{}",
        status.message()
    );
    assert!(!format!("{status:?}").contains(RAT));
    assert_eq!(
        meta(&status, "error_description").as_deref(),
        Some("token [redacted] is wrong")
    );
}

#[tokio::test]
async fn too_many_requests_carries_retry_info() {
    let answer = Answer::json(
        429,
        r#"{"error":"rate_limited","message":"Too many requests"}"#,
    )
    .header("Retry-After", "7");
    let (status, _) = get_with(answer).await;
    assert_eq!(status.code(), Code::ResourceExhausted);
    let retry = status
        .get_error_details()
        .retry_info()
        .cloned()
        .expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(7)));
    assert!(status.message().contains("Too many requests"));
}

#[tokio::test]
async fn non_json_error_body_is_a_clean_status() {
    let (status, _) = get_with(Answer::raw(
        502,
        "text/html",
        b"<html><body>Bad Gateway</body></html>".to_vec(),
    ))
    .await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("non-JSON"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains("<html>"));
}

#[tokio::test]
async fn malformed_and_oversized_success_bodies_are_internal() {
    let (status, _) = get_with(Answer::raw(200, "application/json", b"{not json".to_vec())).await;
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("malformed"),
        "{}",
        status.message()
    );
    assert_eq!(reason(&status), "UPSTREAM_MALFORMED_RESPONSE");

    let (status, _) = get_with(Answer::json(200, r#"{"client_id":5}"#)).await;
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("client_id"),
        "{}",
        status.message()
    );

    let huge = format!(
        r#"{{"client_id":"c1","client_name":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let (status, _) = get_with(Answer::json(200, &huge)).await;
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("larger than 1048576 bytes"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let (status, upstream) =
        get_with(Answer::json(307, "").header("Location", "http://127.0.0.1:9/steal")).await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn connect_failure_is_unavailable() {
    // Bind, note the port, and close it: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let raw = RawConfig {
        max_attempts: Some(1),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&format!("http://127.0.0.1:{port}"), raw).await;
    let status = gw
        .client()
        .await
        .get_client(get_req("c1", Some(RAT)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason(&status), "UPSTREAM_UNREACHABLE");
}

#[tokio::test]
async fn slow_upstream_is_deadline_exceeded() {
    let upstream = Scripted::start(vec![
        Answer::json(200, "{}").delayed(Duration::from_secs(5)),
    ])
    .await;
    let raw = RawConfig {
        upstream_timeout: Some("300ms".into()),
        max_attempts: Some(1),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&upstream.url(), raw).await;
    let status = gw
        .client()
        .await
        .get_client(get_req("c1", Some(RAT)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn register_failure_after_sending_says_it_may_have_taken_effect() {
    let upstream = Scripted::start(vec![Answer::json(500, r#"{"error":"server_error"}"#)]).await;
    let gw = TestGateway::start(&upstream.url()).await;
    let req = pb::RegisterClientRequest {
        metadata: Some(machine_client("x")),
        initial_access_token: Some("iat-123".into()),
    };
    let status = gw.client().await.register_client(req).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("may have taken effect"),
        "{}",
        status.message()
    );
    let sent = &upstream.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer iat-123"),
        "initial access token sent as Bearer"
    );
}

#[tokio::test]
async fn sharkauth_validation_errors_name_the_field() {
    let (_dev, _gw, mut client) = stack().await;
    let bad = pb::ClientMetadata {
        redirect_uris: vec!["http://evil.com/steal".into()],
        ..machine_client("x")
    };
    let req = pb::RegisterClientRequest {
        metadata: Some(bad),
        initial_access_token: None,
    };
    let status = client.register_client(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "INVALID_REDIRECT_URI");
    assert_eq!(
        meta(&status, "error").as_deref(),
        Some("invalid_redirect_uri")
    );
    let violations = status
        .get_error_details()
        .bad_request()
        .cloned()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "metadata.redirect_uris");
    assert!(
        violations[0]
            .description
            .contains("http is only allowed for localhost")
    );

    let bad = pb::ClientMetadata {
        grant_types: vec!["magic_unicorn".into()],
        ..machine_client("x")
    };
    let req = pb::RegisterClientRequest {
        metadata: Some(bad),
        initial_access_token: None,
    };
    let status = client.register_client(req).await.unwrap_err();
    assert_eq!(reason(&status), "INVALID_CLIENT_METADATA");
    assert_eq!(
        meta(&status, "error").as_deref(),
        Some("invalid_client_metadata")
    );
    let violations = status
        .get_error_details()
        .bad_request()
        .cloned()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "metadata.grant_types");
}

#[tokio::test]
async fn invalid_input_is_caught_before_the_upstream() {
    let upstream = Scripted::start(vec![Answer::json(200, "{}")]).await;
    let gw = TestGateway::start(&upstream.url()).await;
    let mut client = gw.client().await;
    let field = |s: &Status| {
        s.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field
            .clone()
    };

    let s = client.get_client(get_req("", Some(RAT))).await.unwrap_err();
    assert_eq!(
        (s.code(), field(&s)),
        (Code::InvalidArgument, "client_id".to_string())
    );
    let s = client
        .get_client(get_req(&"x".repeat(600), Some(RAT)))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), field(&s)),
        (Code::InvalidArgument, "client_id".to_string())
    );
    let s = client
        .get_client(get_req("c1", Some("has space")))
        .await
        .unwrap_err();
    assert_eq!(field(&s), "registration_access_token");
    assert!(
        !s.message().contains("has space"),
        "the token is never echoed"
    );

    let update = pb::UpdateClientRequest {
        client_id: "c1".into(),
        registration_access_token: Some(RAT.into()),
        metadata: Some(machine_client("x")),
        update_mask: Some(FieldMask {
            paths: vec!["client_name".into(), "favourite_colour".into()],
        }),
    };
    let s = client.update_client(update).await.unwrap_err();
    assert_eq!(
        (s.code(), field(&s)),
        (Code::InvalidArgument, "update_mask.paths".to_string())
    );
    assert!(s.message().contains("favourite_colour"));

    let mut shadow = prost_types::Struct::default();
    shadow.fields.insert(
        "client_id".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::BoolValue(true)),
        },
    );
    let m = pb::ClientMetadata {
        additional_metadata: Some(shadow),
        ..machine_client("x")
    };
    let s = client
        .register_client(pb::RegisterClientRequest {
            metadata: Some(m),
            initial_access_token: None,
        })
        .await
        .unwrap_err();
    assert_eq!(field(&s), "metadata.additional_metadata.client_id");

    let many = pb::ClientMetadata {
        redirect_uris: vec!["https://a/cb".into(); 300],
        ..machine_client("x")
    };
    let s = client
        .register_client(pb::RegisterClientRequest {
            metadata: Some(many),
            initial_access_token: None,
        })
        .await
        .unwrap_err();
    assert_eq!(field(&s), "metadata.redirect_uris");

    assert!(
        upstream.requests().is_empty(),
        "nothing invalid reached the upstream"
    );
}

#[tokio::test]
async fn the_configured_initial_access_token_is_sent_when_the_caller_gives_none() {
    let failure = || Answer::json(500, r#"{"error":"server_error"}"#);
    let upstream = Scripted::start(vec![failure(), failure()]).await;
    let raw = RawConfig {
        initial_access_token: Some(Secret(secrecy::SecretString::from("iat-from-config"))),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&upstream.url(), raw).await;
    let mut client = gw.client().await;
    for iat in [None, Some("iat-from-caller")] {
        let req = pb::RegisterClientRequest {
            metadata: Some(machine_client("x")),
            initial_access_token: iat.map(Into::into),
        };
        client.register_client(req).await.unwrap_err();
    }
    let sent = upstream.requests();
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer iat-from-config")
    );
    assert_eq!(
        sent[1].header("authorization"),
        Some("Bearer iat-from-caller"),
        "the caller's own token wins"
    );
}
