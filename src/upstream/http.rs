//! The one HTTP client to the authorization server, built in one place and
//! used by every call and by discovery: hyper's pooled client with the
//! gateway's TLS.
//!
//! On hyper directly rather than through a general-purpose client, because
//! per request it then does only what this boundary needs (no redirect
//! policy, no proxy matching, no second URL parse, no client clone), and
//! that work was most of what a call cost beside the gRPC edge. The
//! boundary's rules, each kept here:
//! - TLS: the system's roots plus the extra CA, the client certificate, ALPN
//!   (`tls::client_config`);
//! - https-only when required: checked before anything is sent, and again by
//!   the connector, so a token never crosses the network unencrypted whatever
//!   URL a response names;
//! - no proxy (hyper reads no proxy variable) and no redirect followed (hyper
//!   follows none): either could carry a token to another host;
//! - the response body capped while it is read;
//! - one deadline for the whole exchange, body included, and one for
//!   connecting; TCP keep-alive and no Nagle delay on every connection.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderValue, USER_AGENT};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::time::{Instant, timeout_at};
use url::Url;

use crate::tls::{Alpn, ClientIdentity, client_config};

/// How the HTTP client reaches the authorization server.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// How long one HTTP attempt may take, connection and body included.
    pub request_timeout: Duration,
    /// How long establishing a connection may take.
    pub connect_timeout: Duration,
    /// Speak HTTP/2: prior knowledge on `http://`, ALPN on `https://`.
    pub http2: bool,
    /// Idle connections kept per host.
    pub pool_max_idle: usize,
    /// How long an idle connection is kept.
    pub pool_idle_timeout: Duration,
    /// Largest response body read, in bytes; a larger one is an error.
    pub max_response_bytes: usize,
    /// CAs trusted besides the system's (a private PKI's root).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Client certificate and key presented to the upstream (mutual TLS).
    pub identity: Option<ClientIdentity>,
    /// Refuse every plain-HTTP request, so a token never crosses the network
    /// unencrypted whatever URL a response names.
    pub require_tls: bool,
}

/// TCP keep-alive probes on upstream connections, so a dead peer behind a NAT or
/// load balancer is noticed before a request is sent on it.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// The `User-Agent` of every request.
const USER_AGENT_VALUE: &str = concat!("dcr-gateway/", env!("CARGO_PKG_VERSION"));

/// The pooled client and the rules it is used under. Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct UpstreamHttp {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request_timeout: Duration,
    require_tls: bool,
}

/// Why the upstream HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    /// The TLS configuration (system roots, extra CA, client certificate).
    #[error("upstream TLS: {0}")]
    Tls(#[source] rustls::Error),
}

/// Why an exchange failed. Nothing here names a URL or a header: the
/// message is shown to callers and logged.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A plain-HTTP URL while https is required; nothing was sent.
    #[error("a plain-HTTP URL, while the upstream must be reached over https")]
    NotHttps,
    /// The exchange did not end within the request timeout.
    #[error("no complete answer within the request timeout")]
    Timeout,
    /// No connection could be made: the request never left.
    #[error("could not connect")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// The exchange failed after a connection was made; the request may have
    /// been sent.
    #[error("the exchange failed")]
    Exchange(#[source] hyper_util::client::legacy::Error),
    /// Reading the response body failed.
    #[error("reading the answer failed")]
    Body(#[source] hyper::Error),
    /// The body is larger than the cap (declared, or as read).
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
}

/// A response whose head has arrived; its body is read under the same
/// deadline.
pub struct Answered {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    body: Incoming,
    deadline: Instant,
}

impl UpstreamHttp {
    /// Builds the client for the server at `base`: `base` decides whether
    /// HTTP/2 is prior knowledge (`http://`) or offered by ALPN (`https://`).
    pub fn new(config: &UpstreamConfig, base: &Url) -> Result<Self, HttpClientError> {
        let alpn = match config.http2 {
            true => Alpn::Http2OrHttp1,
            false => Alpn::Http1,
        };
        let tls = client_config(&config.extra_roots, config.identity.as_ref(), alpn)
            .map_err(HttpClientError::Tls)?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(TCP_KEEPALIVE));
        tcp.set_connect_timeout(Some(config.connect_timeout));
        let mut connector = HttpsConnector::from((tcp, tls));
        if config.require_tls {
            connector.enforce_https();
        }
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(config.pool_max_idle)
            .pool_idle_timeout(config.pool_idle_timeout)
            .http2_only(config.http2 && base.scheme() == "http");
        Ok(Self {
            client: builder.build(connector),
            request_timeout: config.request_timeout,
            require_tls: config.require_tls,
        })
    }

    /// Sends `request` and waits for the head of its answer. The deadline
    /// (the request timeout) starts now and also bounds reading the body.
    pub async fn send(&self, mut request: Request<Full<Bytes>>) -> Result<Answered, HttpError> {
        if self.require_tls && request.uri().scheme_str() != Some("https") {
            return Err(HttpError::NotHttps);
        }
        request
            .headers_mut()
            .insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        let deadline = Instant::now() + self.request_timeout;
        let response = timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| HttpError::Timeout)?
            .map_err(|e| match e.is_connect() {
                true => HttpError::Connect(e),
                false => HttpError::Exchange(e),
            })?;
        let (head, body) = response.into_parts();
        Ok(Answered {
            status: head.status,
            headers: head.headers,
            body,
            deadline,
        })
    }

    /// How long an exchange may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

impl Answered {
    /// Reads the body, failing as soon as it is known to pass `max` bytes
    /// (a declared length, or what has arrived), or when the deadline passes.
    pub async fn read(&mut self, max: usize) -> Result<Vec<u8>, HttpError> {
        let declared = self
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(HttpError::TooLarge(max));
        }
        let body = &mut self.body;
        let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        timeout_at(self.deadline, async {
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map_err(HttpError::Body)?.into_data() else {
                    continue;
                };
                if bytes.len() + data.len() > max {
                    return Err(HttpError::TooLarge(max));
                }
                bytes.extend_from_slice(&data);
            }
            Ok(())
        })
        .await
        .map_err(|_| HttpError::Timeout)??;
        Ok(bytes)
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
pub(super) mod tests;
