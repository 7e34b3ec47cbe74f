//! `dcr-gateway call`: a gRPC client for people, so every RPC can be tried
//! without other tools. Replies print as RFC 7591 JSON, secrets included (that
//! is what the caller asked for); errors print the gRPC code and message.
//!
//! The flags and errors are in `args`; the six plain RPCs take one generic
//! path (`plain`), the managed-client RPCs theirs (`managed`).

mod args;
mod managed;
mod plain;

use tonic::transport::Endpoint;

use crate::pb::v1 as pb;
use crate::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;
use args::CallRpc;
pub use args::{CallArgs, CallError};

/// Makes the call and returns the reply as pretty JSON.
pub async fn run(args: CallArgs) -> Result<String, CallError> {
    if args.addr.starts_with("unix:") {
        return Err(CallError::Usage(
            "--addr: call speaks TCP only; give the gateway's HOST:PORT, not a Unix socket".into(),
        ));
    }
    // Flags are checked before connecting: a mistake is named even when no
    // gateway runs.
    if let Some(text) = &args.metadata {
        args::metadata(Some(text))?;
    }
    let addr = match args.addr.contains("://") {
        true => args.addr.clone(),
        false => format!("http://{}", args.addr),
    };
    let endpoint = Endpoint::from_shared(addr)
        .map_err(|e| CallError::Usage(format!("--addr: {e}")))?
        .timeout(args.timeout)
        .connect_timeout(args.timeout);
    let channel = endpoint.connect().await.map_err(|e| CallError::Connect {
        addr: args.addr.clone(),
        reason: connect_reason(&e),
    })?;
    match args.rpc {
        CallRpc::Operation(op) => plain::run(channel, op, &args).await,
        CallRpc::Managed(rpc) => {
            let mut client = DynamicClientRegistrationClient::new(channel);
            managed::run(&mut client, rpc, &args).await
        }
        CallRpc::Health => health(channel).await,
    }
}

/// Why a connection failed, by its innermost cause (the outermost, "transport
/// error", says nothing); a refused connection says what it likely means.
fn connect_reason(e: &tonic::transport::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        let refused = next
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused {
            return "connection refused: nothing listens there. Is the gateway running \
                    (dcr-gateway serve), and is --addr (or DCR_GATEWAY_ADDR) its address?"
                .into();
        }
        cause = next;
    }
    cause.to_string()
}

/// `call health`: grpc.health.v1 Check of the gateway's service, so a probe
/// or a `helm test` pod can check a gateway with the image's own binary.
async fn health(channel: tonic::transport::Channel) -> Result<String, CallError> {
    use tonic::server::NamedService as _;
    use tonic_health::pb::health_check_response::ServingStatus;
    type Server = pb::dynamic_client_registration_server::DynamicClientRegistrationServer<()>;
    let service = Server::NAME;
    let reply = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    match reply.status() {
        ServingStatus::Serving => {
            Ok(serde_json::json!({ "service": service, "status": "SERVING" }).to_string())
        }
        status => Err(CallError::NotServing { service, status }),
    }
}
