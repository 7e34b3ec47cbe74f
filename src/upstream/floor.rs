//! The benchmark's floor (`reference-servers` only): the simplest
//! translation a user could write, on reqwest, a general-purpose HTTP client,
//! with no middleware. It reads the same operation table, sends the same
//! headers, continues the trace and counts each attempt as the gateway does,
//! so what it costs beside the gateway is the HTTP client and the layers.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::HeaderMap;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use super::answer::answer;
use super::failure::http_failure;
use super::http::UpstreamConfig;
use super::outgoing::outgoing;
use super::profile::{Endpoints, Profile, route};
use crate::dcr::{Cause, DcrError, DcrRequest, DcrResponse};
use crate::telemetry::{Metrics, propagation};
use crate::tls::{Alpn, client_config};

/// A SharkAuth translation over reqwest, as a `tower::Service<DcrRequest>`.
#[derive(Clone)]
pub struct Floor {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    profile: Profile,
    endpoints: Endpoints,
    metrics: Arc<Metrics>,
}

impl Floor {
    /// The floor to `endpoints`, with `config`'s timeouts and pool. Panics
    /// when the client cannot be built: it is a benchmark fixture.
    pub fn new(profile: Profile, endpoints: Endpoints, config: &UpstreamConfig) -> Self {
        let tls = client_config(&[], None, Alpn::Http1).expect("TLS configuration");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.pool_max_idle)
            .pool_idle_timeout(config.pool_idle_timeout)
            .tcp_nodelay(true)
            .no_proxy()
            .http1_only()
            .tls_backend_preconfigured(tls)
            .build()
            .expect("HTTP client");
        Self {
            inner: Arc::new(Inner {
                http,
                profile,
                endpoints,
                metrics: Metrics::local(),
            }),
        }
    }
}

impl tower::Service<DcrRequest> for Floor {
    type Response = DcrResponse;
    type Error = DcrError;
    type Future = BoxFuture<'static, Result<DcrResponse, DcrError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DcrError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: DcrRequest) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let start = Instant::now();
            let route = route(inner.profile, &inner.endpoints, &req.call)?;
            let result = inner.exchange(&req, route.method, route.url).await;
            let outcome = Cow::Borrowed(if result.is_ok() { "success" } else { "error" });
            inner
                .metrics
                .upstream_attempt(route.template, outcome, start.elapsed());
            result
        })
    }
}

impl Inner {
    async fn exchange(
        &self,
        req: &DcrRequest,
        method: http::Method,
        url: url::Url,
    ) -> Result<DcrResponse, DcrError> {
        let outgoing = outgoing(req, url.as_str())?;
        let mut trace = HeaderMap::new();
        propagation::inject(&req.trace, &mut trace);
        let mut request = self
            .http
            .request(method, url)
            .headers(trace)
            .header(ACCEPT, "application/json");
        if let Some(value) = outgoing.authorization {
            request = request.header(AUTHORIZATION, value);
        }
        if let Some((content_type, bytes)) = outgoing.body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let failed = |e: reqwest::Error| DcrError::Transport(Cause::from_error(e));
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(failed)?;
        if !status.is_success() {
            let failure = http_failure(status.as_u16(), &headers, &bytes, &[]);
            return Err(DcrError::Upstream(failure));
        }
        answer(req, &bytes)
    }
}
