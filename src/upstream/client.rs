//! [`HttpUpstream`]: the innermost service, one pooled HTTP client to SharkAuth.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use rustls::pki_types::CertificateDer;
use secrecy::SecretString;
use tracing::Instrument;
use tracing::field::Empty;
use url::Url;

use super::answer::answer;
use super::failure::{http_failure, transport_error};
use super::outgoing::outgoing;
use super::profile::{Endpoints, Profile, route};
use super::route::Route;
use crate::dcr::{Authority, DcrError, DcrRequest, DcrResponse, UpstreamFailure};
use crate::telemetry::{Metrics, propagation};
use crate::tls::{Alpn, ClientIdentity, client_config};

/// How the HTTP client reaches the authorization server.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// How long one HTTP attempt may take, connection included.
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

/// The SharkAuth HTTP transport as a `tower::Service<DcrRequest>`.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct HttpUpstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    profile: Profile,
    endpoints: Endpoints,
    config: UpstreamConfig,
    metrics: Arc<Metrics>,
}

/// Builds the one HTTP client to the authorization server, for discovery and
/// every call: the extra CA roots and client certificate, https-only when
/// required, pooled, with timeouts. Redirects are never followed (a redirect
/// could carry a registration access token to another host) and proxy
/// variables are ignored for the same reason. `base` decides whether HTTP/2
/// is prior knowledge (`http://`) or ALPN (`https://`). TLS is configured
/// here, with the gateway's crypto provider (`tls::client_config`).
pub fn http_client(
    config: &UpstreamConfig,
    base: &Url,
) -> Result<reqwest::Client, HttpClientError> {
    let alpn = match config.http2 {
        true => Alpn::Http2OrHttp1,
        false => Alpn::Http1,
    };
    let tls = client_config(&config.extra_roots, config.identity.as_ref(), alpn)
        .map_err(HttpClientError::Tls)?;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .pool_max_idle_per_host(config.pool_max_idle)
        .pool_idle_timeout(config.pool_idle_timeout)
        .tcp_nodelay(true)
        .tcp_keepalive(TCP_KEEPALIVE)
        .no_proxy()
        .user_agent(concat!("dcr-gateway/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(tls);
    builder = builder.https_only(config.require_tls);
    builder = match (config.http2, base.scheme()) {
        (true, "http") => builder.http2_prior_knowledge(),
        (true, _) => builder,
        (false, _) => builder.http1_only(),
    };
    builder.build().map_err(HttpClientError::Build)
}

/// Why the upstream HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    /// The TLS configuration (system roots, extra CA, client certificate).
    #[error("upstream TLS: {0}")]
    Tls(#[source] rustls::Error),
    /// The HTTP client itself.
    #[error("upstream HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

impl HttpUpstream {
    /// The transport for the server at `endpoints`, speaking `profile`, over
    /// `http` (from [`http_client`], shared with discovery so both use one
    /// pool and one set of TLS settings).
    pub fn new(
        http: reqwest::Client,
        profile: Profile,
        endpoints: Endpoints,
        config: UpstreamConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                profile,
                endpoints,
                config,
                metrics,
            }),
        }
    }

    /// The upstream base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.endpoints.base
    }
}

impl tower::Service<DcrRequest> for HttpUpstream {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = BoxFuture<'static, Result<DcrResponse, DcrError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: DcrRequest) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(req).await })
    }
}

impl Inner {
    /// One attempt, inside its client span, counted in the metrics.
    async fn send(&self, req: DcrRequest) -> Result<DcrResponse, DcrError> {
        let route = route(self.profile, &self.endpoints, &req.call)?;
        let span = attempt_span(&route, &req);
        let start = Instant::now();
        let result = self.exchange(&req, &route).instrument(span.clone()).await;
        let outcome: Cow<'static, str> = match &result {
            Ok(_) => "success".into(),
            Err(DcrError::Upstream(f)) => f.status.to_string().into(),
            Err(e) => e.class().label.into(),
        };
        if let Err(e) = &result {
            span.record("error.type", e.class().label);
            span.record("otel.status_code", "ERROR");
        }
        self.metrics
            .upstream_attempt(route.template, outcome, start.elapsed());
        result
    }

    async fn exchange(&self, req: &DcrRequest, route: &Route) -> Result<DcrResponse, DcrError> {
        let spec = req.operation().spec();
        let outgoing = outgoing(req, route.url.as_str())?;
        let mut trace_headers = HeaderMap::new();
        propagation::inject(&req.trace, &mut trace_headers);
        let mut builder = self
            .http
            .request(route.method.clone(), route.url.clone())
            .headers(trace_headers)
            .header(ACCEPT, "application/json");
        if let Some(value) = outgoing.authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some((content_type, bytes)) = outgoing.body {
            builder = builder.header(CONTENT_TYPE, content_type).body(bytes);
        }
        if let Some(gate) = &req.gate {
            gate.open().await?;
        }
        let timeout = self.config.request_timeout;
        let response = builder
            .send()
            .await
            .map_err(|e| transport_error(e, timeout))?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let headers = response.headers().clone();
        let bytes = read_capped(response, self.config.max_response_bytes, timeout).await?;
        if !status.is_success() {
            let secrets: Vec<&SecretString> = outgoing.secrets.iter().collect();
            let mut failure = http_failure(status.as_u16(), &headers, &bytes, &secrets);
            match spec.authority {
                // Only a call on a client carries its token and can prove
                // the token rejected or the client gone.
                Authority::RegistrationAccessToken => {
                    failure.token_rejected = self.profile.proves_token_rejected(&failure);
                    failure.client_gone = self.profile.capabilities().loss_proof.proves(&failure);
                }
                Authority::ClientCredentials => {
                    failure.client_rejected = proves_client_rejected(&failure);
                }
                Authority::InitialAccessToken => {}
            }
            return Err(DcrError::Upstream(failure));
        }
        answer(req, &bytes)
    }
}

/// Whether `f`, the token endpoint's answer, says the client's credentials
/// were refused (RFC 6749 §5.2 `invalid_client`, or a 401): a secret
/// rotated by another replica, or a key the server no longer has.
fn proves_client_rejected(f: &UpstreamFailure) -> bool {
    f.status == 401 || f.error.as_deref() == Some("invalid_client")
}

/// The client span of one upstream attempt, with the HTTP conventions.
///
/// At `debug`: exported whenever traces are (the exporter takes the gateway's
/// debug spans), in log lines only under `RUST_LOG=debug`. At the default
/// level with export off no layer wants it, so it is never built: a log line
/// inside an attempt still carries the call's span and its trace id.
fn attempt_span(route: &Route, req: &DcrRequest) -> tracing::Span {
    let client_id = req
        .target()
        .map(|t| t.client_id.as_str())
        .unwrap_or_default();
    let span = tracing::debug_span!(
        "upstream",
        otel.name = format!("{} {}", route.method, route.template),
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = %route.method,
        url.template = route.template,
        server.address = route.url.host_str().unwrap_or_default(),
        server.port = route.url.port_or_known_default().unwrap_or_default(),
        http.response.status_code = Empty,
        http.request.resend_count = Empty,
        error.type = Empty,
        dcr.client_id = client_id,
    );
    if req.attempt > 0 {
        span.record("http.request.resend_count", req.attempt);
    }
    span
}

/// Reads the body, failing as soon as it passes `max` bytes.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, DcrError> {
    let too_big = || DcrError::MalformedResponse(format!("the body is larger than {max} bytes"));
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(e, timeout))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
