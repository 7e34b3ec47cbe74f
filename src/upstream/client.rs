//! [`HttpUpstream`]: the innermost service, one pooled HTTP client to SharkAuth.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::Request;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http_body_util::Full;
use secrecy::SecretString;
use tracing::Instrument;
use tracing::field::Empty;
use url::Url;

use super::answer::answer;
use super::failure::{http_failure, transport_error};
use super::http::UpstreamHttp;
use super::outgoing::outgoing;
use super::profile::{Endpoints, Profile, route};
use super::route::Route;
use crate::dcr::{Authority, DcrError, DcrRequest, DcrResponse, UpstreamFailure};
use crate::telemetry::{Metrics, propagation};

/// The SharkAuth HTTP transport as a `tower::Service<DcrRequest>`.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct HttpUpstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: UpstreamHttp,
    profile: Profile,
    endpoints: Endpoints,
    max_response_bytes: usize,
    metrics: Arc<Metrics>,
}

impl HttpUpstream {
    /// The transport for the server at `endpoints`, speaking `profile`, over
    /// `http` (shared with discovery, so both use one pool and one set of
    /// TLS settings), reading at most `max_response_bytes` of an answer.
    pub fn new(
        http: UpstreamHttp,
        profile: Profile,
        endpoints: Endpoints,
        max_response_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                profile,
                endpoints,
                max_response_bytes,
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
        let mut request = Request::builder()
            .method(route.method.clone())
            .uri(route.url.as_str())
            .header(ACCEPT, "application/json");
        if let Some(headers) = request.headers_mut() {
            propagation::inject(&req.trace, headers);
        }
        if let Some(value) = outgoing.authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let body = match outgoing.body {
            Some((content_type, bytes)) => {
                request = request.header(CONTENT_TYPE, content_type);
                Full::from(bytes)
            }
            None => Full::default(),
        };
        let request = request
            .body(body)
            .map_err(|_| DcrError::Internal("a route the HTTP client cannot send"))?;
        if let Some(gate) = &req.gate {
            gate.open().await?;
        }
        let timeout = self.http.request_timeout();
        let mut answered = self
            .http
            .send(request)
            .await
            .map_err(|e| transport_error(e, timeout))?;
        let status = answered.status;
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let bytes = answered
            .read(self.max_response_bytes)
            .await
            .map_err(|e| transport_error(e, timeout))?;
        if !status.is_success() {
            let secrets: Vec<&SecretString> = outgoing.secrets.iter().collect();
            let mut failure = http_failure(status.as_u16(), &answered.headers, &bytes, &secrets);
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
