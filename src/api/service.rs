//! The tonic service: validate, convert, call the domain stack, convert
//! back. The six plain RPCs take one generic path ([`PlainRpc`]); the
//! managed-client RPCs are served in `managed`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Semaphore;
use tonic::metadata::MetadataMap;
use tonic::{Extensions, Request, Response, Status};
use tower::ServiceExt;
use tracing::Instrument;

use super::answered::Answered;
use super::callers::Callers;
use super::deadline::deadline;
use super::peer::PeerInfo;
use super::plain::{Defaults, PlainReply, PlainRpc};
use super::status::to_status;
use crate::dcr::durability::{self, WriteReport};
use crate::dcr::{
    Capabilities, DEFAULT_NAMESPACE, DcrError, DcrRequest, DcrResponse, Operation, SendGate,
    SentExchanges,
};
use crate::managed::Managed;
use crate::middleware::GatewayService;
use crate::pb::v1 as pb;
use crate::pb::v1::dynamic_client_registration_server::DynamicClientRegistration;
use crate::telemetry::{Metrics, propagation, rpc_span};

/// The WatchClient stream (served in `managed`).
pub type WatchStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<pb::WatchClientResponse, Status>> + Send>,
>;

/// Implements `dcr.v1.DynamicClientRegistration` over a [`GatewayService`].
#[derive(Clone)]
pub struct DcrService {
    stack: GatewayService,
    pub(super) managed: Managed,
    metrics: Arc<Metrics>,
    initial_access_token: Option<SecretString>,
    edge: EdgeSettings,
}

/// Which RPC is being served, for spans, metrics and error wording.
#[derive(Clone, Copy)]
pub(super) struct Rpc {
    /// The gRPC method name.
    pub method: &'static str,
    /// The server span's name.
    pub span: &'static str,
    /// The operation, for the plain RPCs (its table decides the wording of
    /// an error that may have taken effect).
    pub op: Option<Operation>,
}

/// What a served RPC runs with.
pub(super) struct CallContext {
    /// The caller's namespace.
    pub namespace: String,
    /// The caller's deadline.
    pub deadline: Instant,
    /// The caller's trace context.
    pub parent: opentelemetry::Context,
    /// The server span.
    pub span: tracing::Span,
}

/// How the edge serves calls: who may call, how many at once, for how long,
/// and how a sent call that may bring back a credential is carried to the
/// store.
#[derive(Clone)]
pub struct EdgeSettings {
    /// The deadline of a call without `grpc-timeout` (`--default-deadline`).
    pub default_deadline: Duration,
    /// The longest deadline honoured (`--max-deadline`).
    pub max_deadline: Duration,
    /// One permit per RPC being served (`--max-concurrent-calls`); a call
    /// that finds none is answered RESOURCE_EXHAUSTED at once, never queued.
    pub calls: Arc<Semaphore>,
    /// With callers configured, every call must authenticate and runs in
    /// its caller's namespace.
    pub callers: Option<Arc<Callers>>,
    /// Places for sent credential-bearing calls, which finish detached if
    /// their caller leaves (`--max-detached`).
    pub exchanges: SentExchanges,
    /// What the server can do (whether its reads and updates bring back a
    /// credential too).
    pub server: Capabilities,
}

impl DcrService {
    /// Serves RPCs through `stack` and `managed`, as `edge` says.
    pub fn new(
        stack: GatewayService,
        managed: Managed,
        metrics: Arc<Metrics>,
        edge: EdgeSettings,
    ) -> Self {
        Self {
            stack,
            managed,
            metrics,
            initial_access_token: None,
            edge,
        }
    }

    /// Sends `token` as the initial access token of every RegisterClient that
    /// carries none, so callers need not hold the deployment's token.
    pub fn with_initial_access_token(mut self, token: Option<SecretString>) -> Self {
        self.initial_access_token = token;
        self
    }

    /// Serves one plain RPC: converts its request to a domain call, runs it
    /// through the stack bounded by the caller's deadline, and converts the
    /// answer to its reply.
    async fn unary<R: PlainRpc>(&self, request: Request<R>) -> Result<Response<R::Reply>, Status> {
        let (metadata, ext, r) = request.into_parts();
        let defaults = Defaults {
            initial_access_token: self.initial_access_token.as_ref(),
        };
        let call = r.into_call(defaults);
        let op = R::OPERATION;
        let client_id = call
            .as_ref()
            .ok()
            .and_then(|c| c.target())
            .map(|t| t.client_id.clone())
            .unwrap_or_default();
        let rpc = Rpc {
            method: op.rpc_name(),
            span: op.span_name(),
            op: Some(op),
        };
        let named = !client_id.is_empty();
        let answer = self
            .serve(&metadata, &ext, rpc, &client_id, |cx| async move {
                let mut req = DcrRequest::new(call?);
                req.deadline = Some(cx.deadline);
                req.namespace = cx.namespace.clone();
                req.trace = cx.parent;
                let result = self.dispatch(req).instrument(cx.span.clone()).await;
                if let (false, Ok(DcrResponse::Client(c))) = (named, &result) {
                    cx.span.record("dcr.client_id", c.client_id.as_str());
                }
                result
            })
            .await?;
        Ok(answer.respond(R::Reply::answering))
    }

    /// Serves one RPC: its deadline, the caller's namespace, admission, the
    /// server span, metrics, one log line when it fails, and the status.
    pub(super) async fn serve<T, F, Fut>(
        &self,
        metadata: &MetadataMap,
        ext: &Extensions,
        rpc: Rpc,
        client_id: &str,
        work: F,
    ) -> Result<Answered<T>, Status>
    where
        F: FnOnce(CallContext) -> Fut,
        Fut: std::future::Future<Output = Result<T, DcrError>>,
    {
        let start = Instant::now();
        let method = rpc.method;
        let _in_flight = self.metrics.rpc_started(method);
        let deadline = deadline(
            metadata,
            self.edge.default_deadline,
            self.edge.max_deadline,
            start,
        );
        let parent = propagation::extract(metadata);
        let span = rpc_span(rpc.method, rpc.span, client_id, &parent);
        // Bearer callers when configured; else the mutual-TLS identity; else
        // one shared namespace.
        let identity = ext.get::<PeerInfo>().and_then(|p| p.identity.as_deref());
        let namespace = match (&self.edge.callers, identity) {
            (Some(callers), _) => callers.authenticate(metadata),
            (None, Some(identity)) => Ok(identity.to_owned()),
            (None, None) => Ok(DEFAULT_NAMESPACE.to_owned()),
        };
        let admitted = self.edge.calls.clone().try_acquire_owned();
        let report = WriteReport::new(Some(deadline));
        let result = match (namespace, admitted) {
            (_, Err(_)) => {
                self.metrics.shed();
                Err(DcrError::TooManyCalls)
            }
            (Ok(namespace), Ok(_admitted)) => {
                let cx = CallContext {
                    namespace,
                    deadline,
                    parent,
                    span: span.clone(),
                };
                report.clone().around(work(cx)).await
            }
            (Err(e), _) => Err(e),
        };
        let result = result.map_err(|e| to_status(&e, rpc.op));
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        };
        let elapsed = start.elapsed();
        span.record("rpc.grpc.status_code", code as i64);
        if code != tonic::Code::Ok {
            span.record("otel.status_code", "ERROR");
        }
        self.metrics.rpc_finished(method, code_name(code), elapsed);
        // One line per failed call at `info`; successes only at `debug`, as in
        // most proxies: the metrics count them, and a line formatted and
        // written to stderr on every call costs a syscall per call.
        span.in_scope(|| match code {
            tonic::Code::Ok => {
                tracing::debug!(rpc = method, client_id, code = ?code, elapsed_ms = elapsed.as_millis() as u64, "rpc");
            }
            _ => {
                tracing::info!(rpc = method, client_id, code = ?code, elapsed_ms = elapsed.as_millis() as u64, "rpc");
            }
        });
        result.map(|value| Answered {
            value,
            short: report.short(),
        })
    }

    /// Sends `req` down the stack, bounded by its deadline.
    ///
    /// A call that may bring back a credential runs in its own task behind a
    /// [`SendGate`]: it takes its client lock, upstream slot and its place among the sent exchanges
    /// under the caller's deadline, and if the deadline passes before the
    /// request is sent, the task is dropped and nothing was sent. Once sent,
    /// the task runs on, detached, until the answer is read and its
    /// credential stored (bounded by the upstream timeout), while the caller
    /// is told by its deadline that the call may have taken effect.
    async fn dispatch(&self, mut req: DcrRequest) -> Result<DcrResponse, DcrError> {
        let Some(deadline) = req.deadline else {
            return self.stack.clone().oneshot(req).await;
        };
        if !req.operation().may_bring_back_credential(&self.edge.server) {
            return tokio::time::timeout_at(deadline.into(), self.stack.clone().oneshot(req))
                .await
                .unwrap_or(Err(DcrError::DeadlineExceeded));
        }
        let gate = Arc::new(SendGate::new(self.edge.exchanges.clone()));
        req.gate = Some(gate.clone());
        let mut call = SentCall {
            task: tokio::spawn(durability::carried(
                self.stack.clone().oneshot(req).in_current_span(),
            )),
            gate,
            metrics: self.metrics.clone(),
            settled: false,
        };
        match tokio::time::timeout_at(deadline.into(), &mut call.task).await {
            Ok(Ok(result)) => {
                call.settled = true;
                result
            }
            Ok(Err(_)) => {
                call.settled = true;
                Err(DcrError::Internal("the call's task panicked"))
            }
            Err(_) if call.abandon() => Err(DcrError::DeadlineExceeded),
            Err(_) => Err(DcrError::DeadlinePassedAfterSend),
        }
    }
}

/// A credential-bearing call's task, as the edge waits for it. However the
/// wait ends (the deadline, or the caller cancelling, which drops this), an
/// unfinished task is either dropped, when nothing was sent, or left to run
/// detached, when its request may be on the wire.
struct SentCall {
    task: tokio::task::JoinHandle<Result<DcrResponse, DcrError>>,
    gate: Arc<SendGate>,
    metrics: Arc<Metrics>,
    settled: bool,
}

impl SentCall {
    /// Gives up on the task; `true` when nothing was sent (and the task is
    /// dropped), `false` when it runs on detached.
    fn abandon(&mut self) -> bool {
        self.settled = true;
        if self.gate.give_up(|| self.metrics.detached()) {
            self.task.abort();
            return true;
        }
        tracing::warn!(
            event = "detached",
            "the caller left after the request was sent: finishing the call without it"
        );
        false
    }
}

impl Drop for SentCall {
    fn drop(&mut self) {
        if !self.settled && !self.task.is_finished() {
            self.abandon();
        }
    }
}

/// The gRPC code's canonical name, as metrics label it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[tonic::async_trait]
impl DynamicClientRegistration for DcrService {
    async fn register_client(
        &self,
        request: Request<pb::RegisterClientRequest>,
    ) -> Result<Response<pb::RegisterClientResponse>, Status> {
        self.unary(request).await
    }

    async fn get_client(
        &self,
        request: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::GetClientResponse>, Status> {
        self.unary(request).await
    }

    async fn update_client(
        &self,
        request: Request<pb::UpdateClientRequest>,
    ) -> Result<Response<pb::UpdateClientResponse>, Status> {
        self.unary(request).await
    }

    async fn delete_client(
        &self,
        request: Request<pb::DeleteClientRequest>,
    ) -> Result<Response<pb::DeleteClientResponse>, Status> {
        self.unary(request).await
    }

    async fn rotate_client_secret(
        &self,
        request: Request<pb::RotateClientSecretRequest>,
    ) -> Result<Response<pb::RotateClientSecretResponse>, Status> {
        self.unary(request).await
    }

    async fn rotate_registration_token(
        &self,
        request: Request<pb::RotateRegistrationTokenRequest>,
    ) -> Result<Response<pb::RotateRegistrationTokenResponse>, Status> {
        self.unary(request).await
    }

    async fn ensure_client(
        &self,
        request: Request<pb::EnsureClientRequest>,
    ) -> Result<Response<pb::EnsureClientResponse>, Status> {
        self.ensure(request).await
    }

    type WatchClientStream = WatchStream;

    async fn watch_client(
        &self,
        request: Request<pb::WatchClientRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        self.watch(request).await
    }

    async fn list_clients(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        self.list(request).await
    }

    async fn forget_client(
        &self,
        request: Request<pb::ForgetClientRequest>,
    ) -> Result<Response<pb::ForgetClientResponse>, Status> {
        self.forget(request).await
    }

    async fn get_access_token(
        &self,
        request: Request<pb::GetAccessTokenRequest>,
    ) -> Result<Response<pb::GetAccessTokenResponse>, Status> {
        self.access_token(request).await
    }
}
