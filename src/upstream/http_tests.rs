//! The boundary's rules, each against a raw loopback server that answers
//! with exactly the bytes a test gives it and counts its connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A client for `base` with the defaults' timeouts, 1 KiB body cap.
pub(in crate::upstream) fn client(base: &Url, require_tls: bool) -> UpstreamHttp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = UpstreamConfig {
        request_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        http2: false,
        pool_max_idle: 4,
        pool_idle_timeout: Duration::from_secs(60),
        max_response_bytes: 1024,
        extra_roots: Vec::new(),
        identity: None,
        require_tls,
    };
    UpstreamHttp::new(&config, base).expect("client")
}

/// A GET of `url`.
pub(in crate::upstream) fn get(url: &Url) -> Request<Full<Bytes>> {
    Request::get(url.as_str())
        .body(Full::default())
        .expect("request")
}

/// A loopback server that reads each request head and answers `answer` on
/// the same connection, for as many requests as come; counts connections.
async fn server(answer: &'static [u8]) -> (Url, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn plain_http_is_refused_before_connecting_when_tls_is_required() {
    let (url, connections) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let err = client(&url, true).send(get(&url)).await.err();
    assert!(matches!(err, Some(HttpError::NotHttps)), "{err:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn connections_are_kept_alive_and_bodies_read_whole() {
    let (url, connections) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
    let http = client(&url, false);
    for _ in 0..3 {
        let mut answered = http.send(get(&url)).await.expect("answer");
        assert_eq!(answered.status, StatusCode::OK);
        assert_eq!(answered.read(1024).await.expect("body"), b"{}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_redirect_is_returned_not_followed() {
    let (elsewhere, visits) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let answer: &'static [u8] = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}\r\ncontent-length: 0\r\n\r\n"
    )
    .into_bytes()
    .leak();
    let (url, _) = server(answer).await;
    let answered = client(&url, false).send(get(&url)).await.expect("answer");
    assert_eq!(answered.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(visits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_declared_or_streamed() {
    let (declared, _) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 2048\r\n\r\n").await;
    let answered = client(&declared, false).send(get(&declared)).await;
    let err = answered.expect("head").read(1024).await.err();
    assert!(matches!(err, Some(HttpError::TooLarge(1024))), "{err:?}");

    let chunk = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
    let answer: &'static [u8] =
        format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n")
            .into_bytes()
            .leak();
    let (streamed, _) = server(answer).await;
    let answered = client(&streamed, false).send(get(&streamed)).await;
    let err = answered.expect("head").read(1024).await.err();
    assert!(matches!(err, Some(HttpError::TooLarge(1024))), "{err:?}");
}

#[tokio::test]
async fn the_deadline_bounds_the_body_too() {
    // The head arrives; the promised body never does.
    let (url, _) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{").await;
    let mut answered = client(&url, false).send(get(&url)).await.expect("head");
    let err = answered.read(1024).await.err();
    assert!(matches!(err, Some(HttpError::Timeout)), "{err:?}");
}
