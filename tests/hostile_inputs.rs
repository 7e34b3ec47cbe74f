//! Hostile input from both sides, over real sockets, against the gateway as its
//! own process: each gets a clear gRPC status in bounded time, memory stays
//! bounded, and the gateway keeps serving.

mod support;

use std::time::Duration;

use dcr_gateway::pb::v1 as pb;
use prost_types::{Struct, Value, value::Kind};
use support::process::serve;
use support::scripted::{Answer, Scripted};
use support::{Client, channel, dev_upstream, get_req, machine_client};
use tonic::Code;

/// Longest any single hostile call may take before the gateway counts as hung
/// (the upstream timeout in these tests is 1 s).
const HUNG: Duration = Duration::from_secs(30);
/// Peak resident memory allowed after the whole suite, 10 MB bodies included.
const MAX_PEAK_RSS_KIB: u64 = 128 * 1024;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A valid SharkAuth client body for `id`, with `extra` members spliced in.
fn client_json(id: &str, extra: &str) -> String {
    format!(
        r#"{{"client_id":"{id}","client_name":"x","grant_types":["client_credentials"],"registration_client_uri":"http://127.0.0.1/oauth/register/{id}"{extra}}}"#
    )
}

fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{status}\r\n{headers}\r\n").into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn a_hostile_upstream_gets_clear_statuses_and_the_gateway_keeps_serving() {
    let huge = vec![b'a'; 10 << 20];
    let mut huge_json = b"{\"client_id\":\"".to_vec();
    huge_json.extend_from_slice(&huge);
    huge_json.extend_from_slice(b"\"}");
    let ok_body = client_json("c1", "");
    let cases: Vec<(&str, Answer, &[Code])> = vec![
        (
            "invalid UTF-8",
            Answer::raw(
                200,
                "application/json",
                b"{\"client_id\":\"\xff\xfe\"}".to_vec(),
            ),
            &[Code::Internal],
        ),
        (
            "10 MB body",
            Answer::raw(200, "application/json", huge_json),
            &[Code::Internal],
        ),
        (
            "10 MB body without Content-Length",
            Answer::bytes(&response(
                "HTTP/1.1 200 OK",
                "Content-Type: application/json\r\nConnection: close\r\n",
                &huge,
            )),
            &[Code::Internal],
        ),
        (
            "a body that stalls",
            Answer::stalled(&response(
                "HTTP/1.1 200 OK",
                "Content-Type: application/json\r\nContent-Length: 500\r\n",
                b"{\"client_id\":",
            )),
            &[Code::Unavailable, Code::DeadlineExceeded],
        ),
        (
            "headers that stall",
            Answer::stalled(b"HTTP/1.1 200 OK\r\nContent-Type: appl"),
            &[Code::Unavailable, Code::DeadlineExceeded],
        ),
        (
            "closed mid-body",
            Answer::bytes(&response(
                "HTTP/1.1 200 OK",
                "Content-Type: application/json\r\nContent-Length: 1000\r\n",
                b"{\"client_id\":\"c1\"",
            )),
            &[Code::Unavailable, Code::Internal],
        ),
        (
            "closed before a byte",
            Answer::bytes(b""),
            &[Code::Unavailable],
        ),
        (
            "HTTP/1.0, close-delimited",
            Answer::bytes(&response(
                "HTTP/1.0 200 OK",
                "Content-Type: application/json\r\n",
                ok_body.as_bytes(),
            )),
            &[Code::Ok],
        ),
        (
            "HTML instead of JSON",
            Answer::raw(
                200,
                "text/html",
                b"<html><body>login</body></html>".to_vec(),
            ),
            &[Code::Internal],
        ),
        (
            "a JSON array",
            Answer::json(200, "[1,2,3]"),
            &[Code::Internal],
        ),
        (
            "deeply nested JSON",
            Answer::json(
                200,
                &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            ),
            &[Code::Internal],
        ),
        (
            "a redirect, never followed with the token",
            Answer::json(302, "").header("Location", "http://127.0.0.1:9/steal"),
            &[Code::FailedPrecondition],
        ),
        (
            "negative timestamps",
            Answer::json(
                200,
                &client_json(
                    "c1",
                    r#","client_id_issued_at":-5,"client_secret_expires_at":-1"#,
                ),
            ),
            &[Code::Ok, Code::Internal],
        ),
        (
            "huge timestamps",
            Answer::json(
                200,
                &client_json(
                    "c1",
                    r#","client_id_issued_at":1e300,"client_secret_expires_at":18446744073709551616"#,
                ),
            ),
            &[Code::Internal],
        ),
        (
            "duplicate keys",
            Answer::json(
                200,
                &client_json("c1", r#","client_name":"y","client_name":"z""#),
            ),
            &[Code::Ok, Code::Internal],
        ),
        (
            "a 200 with an empty body",
            Answer::json(200, ""),
            &[Code::Internal],
        ),
        (
            "a status line of garbage",
            Answer::bytes(b"HTTP/9.9 abc\r\n\r\n"),
            &[Code::Unavailable, Code::Internal],
        ),
        (
            "an answer for another client, carrying a token",
            Answer::json(
                200,
                &client_json(
                    "c2",
                    r#","registration_access_token":"planted-rat-0123456789""#,
                ),
            ),
            &[Code::Internal],
        ),
        (
            "an HTML 401 from a proxy",
            Answer::raw(401, "text/html", b"<html>401 Unauthorized</html>".to_vec()),
            &[Code::Unauthenticated],
        ),
        (
            "a description echoing the token, forging a log line",
            Answer::json(
                400,
                r#"{"error":"invalid_request","error_description":"rat-hostile-123456\n2026-01-01T00:00:00Z  INFO forged \u001b[2J"}"#,
            ),
            &[Code::InvalidArgument],
        ),
    ];
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let expected: Vec<&[Code]> = cases.iter().map(|c| c.2).collect();
    let mut answers: Vec<Answer> = cases.into_iter().map(|c| c.1).collect();
    answers.push(Answer::json(200, &ok_body));
    let upstream = Scripted::start(answers).await;
    let url = upstream.url();
    let (child, addr) = serve(&[
        "--upstream",
        &url,
        "--token-store",
        "memory",
        "--max-attempts",
        "1",
        "--upstream-timeout",
        "1s",
    ])
    .await;
    let pid = child.id().unwrap();
    let mut client = Client::new(channel(addr.parse().unwrap()).await);

    for (name, codes) in names.iter().zip(expected) {
        let call = client.get_client(get_req("c1", Some("rat-hostile-123456")));
        let result = tokio::time::timeout(HUNG, call)
            .await
            .unwrap_or_else(|_| panic!("{name}: the gateway hung"));
        let (code, message) = match result {
            Ok(_) => (Code::Ok, String::new()),
            Err(s) => (s.code(), s.message().to_owned()),
        };
        assert!(codes.contains(&code), "{name}: {code:?} {message}");
        assert!(
            !message.contains("rat-hostile-123456"),
            "{name}: the token leaked: {message}"
        );
        assert!(
            message.len() < 2048,
            "{name}: a {} byte message",
            message.len()
        );
    }
    // Still serving, and memory stayed bounded through 10 MB bodies.
    client
        .get_client(get_req("c1", Some("rat-hostile-123456")))
        .await
        .expect("the gateway still serves");
    let peak = peak_rss_kib(pid);
    assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");
    for r in upstream.requests() {
        assert_ne!(r.path, "/steal", "a redirect was followed");
    }
}

fn nested(depth: usize) -> Struct {
    let mut value = Value {
        kind: Some(Kind::StringValue("leaf".into())),
    };
    for _ in 0..depth {
        let mut s = Struct::default();
        s.fields.insert("n".into(), value);
        value = Value {
            kind: Some(Kind::StructValue(s)),
        };
    }
    let mut top = Struct::default();
    top.fields.insert("deep".into(), value);
    top
}

#[tokio::test]
async fn hostile_callers_get_clear_statuses_and_the_gateway_keeps_serving() {
    let dev = dev_upstream().await;
    let (child, addr) = serve(&["--upstream", &dev.base_url(), "--token-store", "memory"]).await;
    let pid = child.id().unwrap();
    let mut client = Client::new(channel(addr.parse().unwrap()).await);
    let register = |metadata: pb::ClientMetadata| pb::RegisterClientRequest {
        metadata: Some(metadata),
        initial_access_token: None,
    };
    let with = |f: &dyn Fn(&mut pb::ClientMetadata)| {
        let mut m = machine_client("hostile");
        f(&mut m);
        register(m)
    };
    let cases: Vec<(&str, pb::RegisterClientRequest, Code, &str)> = vec![
        (
            "a 2 MiB name",
            with(&|m| m.client_name = Some("n".repeat(2 << 20))),
            Code::OutOfRange,
            "",
        ),
        (
            "a 100 KiB name",
            with(&|m| m.client_name = Some("n".repeat(100 << 10))),
            Code::InvalidArgument,
            "client_name",
        ),
        (
            "10,000 redirect URIs",
            with(&|m| {
                m.redirect_uris = (0..10_000)
                    .map(|i| format!("https://app.example/cb/{i}"))
                    .collect()
            }),
            Code::InvalidArgument,
            "redirect_uris",
        ),
        (
            "Struct nesting past the limit",
            with(&|m| m.additional_metadata = Some(nested(20))),
            Code::InvalidArgument,
            "additional_metadata",
        ),
        (
            "Struct nesting past the decoder's limit",
            with(&|m| m.additional_metadata = Some(nested(500))),
            Code::InvalidArgument,
            "not a valid protobuf message",
        ),
        (
            "a NUL in a name",
            with(&|m| m.client_name = Some("a\0b".into())),
            Code::InvalidArgument,
            "client_name",
        ),
        (
            "odd unicode",
            with(&|m| m.client_name = Some("\u{202e}\u{fffd}\u{1f980}\u{0301}".repeat(100))),
            Code::Ok,
            "",
        ),
    ];
    for (name, req, code, field) in cases {
        let result = tokio::time::timeout(HUNG, client.register_client(req))
            .await
            .unwrap_or_else(|_| panic!("{name}: the gateway hung"));
        let (got, message) = match result {
            Ok(_) => (Code::Ok, String::new()),
            Err(s) => (s.code(), s.message().to_owned()),
        };
        assert_eq!(got, code, "{name}: {message}");
        assert!(
            message.contains(field),
            "{name}: the message does not name {field}: {message}"
        );
        assert!(
            message.len() < 2048,
            "{name}: a {} byte message",
            message.len()
        );
    }
    for (name, id) in [
        ("an empty client id", String::new()),
        ("a 100 KiB client id", "c".repeat(100 << 10)),
        ("a client id with a slash", "a/../b".into()),
    ] {
        let status = client
            .get_client(get_req(&id, Some("rat-hostile-123456")))
            .await
            .expect_err(name);
        assert!(
            matches!(
                status.code(),
                Code::InvalidArgument | Code::NotFound | Code::Unauthenticated
            ),
            "{name}: {status:?}"
        );
        assert!(status.message().len() < 2048, "{name}");
    }
    support::register(&mut client, "still-serving").await;
    let peak = peak_rss_kib(pid);
    assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");
}
