//! `dcr-gateway call`: a gRPC client for people, so every RPC can be tried
//! without other tools. Replies print as RFC 7591 JSON, secrets included (that
//! is what the caller asked for); errors print the gRPC code and message.

use std::time::Duration;

use clap::Args;
use clap::builder::TypedValueParser as _;
use serde_json::{Map, Value};
use tonic::transport::Endpoint;

use super::call_managed::ManagedRpc;
use crate::api::client_from_proto;
use crate::config::parse_duration;
use crate::dcr::{Operation, json};
use crate::pb::v1 as pb;
use crate::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;

/// Flags of `call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The RPC to call (the operation table's names, the managed-client RPCs,
    /// then health: grpc.health.v1 Check of the service, failing unless
    /// SERVING): register needs --metadata; get, update, delete, rotate-secret and
    /// rotate-token need --client-id; update needs --metadata too, and takes
    /// --mask for a partial update. ensure needs --name and --metadata; watch
    /// and forget need --name; watch prints a JSON line per message.
    #[arg(value_parser = rpc_parser(), value_name = "RPC")]
    pub rpc: CallRpc,
    /// The gateway's address; `HOST:PORT` means `http://HOST:PORT`, as the
    /// manifests set it for the app.
    #[arg(
        long,
        env = "DCR_GATEWAY_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// The client to act on.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The managed client to act on (ensure, watch, forget).
    #[arg(long)]
    pub name: Option<String>,
    /// With forget: delete the client at the server too.
    #[arg(long)]
    pub delete_upstream: bool,
    /// Registration access token; unset uses the one the gateway holds. Prefer the
    /// environment variable: flags are visible to other users in `ps`.
    #[arg(
        long,
        env = "DCR_GATEWAY_REGISTRATION_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub registration_access_token: Option<String>,
    /// Initial access token for register, if the server requires one.
    #[arg(long, env = "DCR_GATEWAY_INITIAL_ACCESS_TOKEN", hide_env_values = true)]
    pub initial_access_token: Option<String>,
    /// Client metadata as an RFC 7591 JSON object, e.g. '{"client_name":"demo"}'.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// Fields to change in a partial update, comma-separated, e.g. client_name,contacts.
    #[arg(long, value_delimiter = ',')]
    pub mask: Vec<String>,
    /// Deadline for the call.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What `call` calls: an operation of the table, or a managed-client RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRpc {
    /// One of the operation table's RPCs.
    Operation(Operation),
    /// EnsureClient, WatchClient, ListClients or ForgetClient.
    Managed(ManagedRpc),
    /// grpc.health.v1 Check of dcr.v1.DynamicClientRegistration.
    Health,
}

/// `call health`'s command-line name.
const HEALTH: &str = "health";

/// Parses an RPC by its command-line name, listing every name in `--help`.
fn rpc_parser() -> impl clap::builder::TypedValueParser<Value = CallRpc> {
    let names = Operation::ALL
        .map(|op| op.spec().cli)
        .into_iter()
        .chain(ManagedRpc::ALL.map(|(_, name)| name))
        .chain([HEALTH]);
    clap::builder::PossibleValuesParser::new(names).map(|name| {
        let op = Operation::ALL.into_iter().find(|op| op.spec().cli == name);
        let managed = ManagedRpc::ALL.into_iter().find(|(_, n)| *n == name);
        match (op, managed) {
            (Some(op), _) => CallRpc::Operation(op),
            (None, Some((rpc, _))) => CallRpc::Managed(rpc),
            (None, None) if name == HEALTH => CallRpc::Health,
            (None, None) => unreachable!("the parser accepts only the tables' names"),
        }
    })
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The flags do not make a request.
    #[error("{0}")]
    Usage(String),
    /// The gateway could not be reached.
    #[error("cannot reach the gateway at {addr}: {reason}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// The gateway answered with an error.
    #[error("{:?}: {}", .0.code(), .0.message())]
    Status(Box<tonic::Status>),
    /// The health check answered, but not SERVING (starting or draining).
    #[error("{service} is {status:?}")]
    NotServing {
        /// The service checked.
        service: &'static str,
        /// What the gateway reported.
        status: tonic_health::pb::health_check_response::ServingStatus,
    },
}

impl From<tonic::Status> for CallError {
    fn from(s: tonic::Status) -> Self {
        Self::Status(Box::new(s))
    }
}

/// Makes the call and returns the reply as pretty JSON.
pub async fn run(args: CallArgs) -> Result<String, CallError> {
    if args.addr.starts_with("unix:") {
        return Err(CallError::Usage(
            "--addr: call speaks TCP only; give the gateway's HOST:PORT, not a Unix socket".into(),
        ));
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
        reason: e.to_string(),
    })?;
    let op = match args.rpc {
        CallRpc::Operation(op) => op,
        CallRpc::Managed(rpc) => {
            let mut client = DynamicClientRegistrationClient::new(channel);
            return super::call_managed::run(&mut client, rpc, &args).await;
        }
        CallRpc::Health => return health(channel).await,
    };
    let mut client = DynamicClientRegistrationClient::new(channel);
    let id = || {
        args.client_id
            .clone()
            .ok_or_else(|| CallError::Usage("--client-id is required".into()))
    };
    let rat = args.registration_access_token.clone();
    let reply = match op {
        Operation::Register => {
            let req = pb::RegisterClientRequest {
                metadata: Some(metadata(args.metadata.as_deref())?),
                initial_access_token: args.initial_access_token.clone(),
            };
            client.register_client(req).await?.into_inner().client
        }
        Operation::Get => {
            let req = pb::GetClientRequest {
                client_id: id()?,
                registration_access_token: rat,
            };
            client.get_client(req).await?.into_inner().client
        }
        Operation::Update => {
            let req = pb::UpdateClientRequest {
                client_id: id()?,
                registration_access_token: rat,
                metadata: Some(metadata(args.metadata.as_deref())?),
                update_mask: (!args.mask.is_empty()).then(|| prost_types::FieldMask {
                    paths: args.mask.clone(),
                }),
            };
            client.update_client(req).await?.into_inner().client
        }
        Operation::Delete => {
            let req = pb::DeleteClientRequest {
                client_id: id()?,
                registration_access_token: rat,
            };
            client.delete_client(req).await?;
            None
        }
        Operation::RotateSecret => {
            let req = pb::RotateClientSecretRequest {
                client_id: id()?,
                registration_access_token: rat,
            };
            client.rotate_client_secret(req).await?.into_inner().client
        }
        Operation::RotateToken => {
            let req = pb::RotateRegistrationTokenRequest {
                client_id: id()?,
                registration_access_token: rat,
            };
            client
                .rotate_registration_token(req)
                .await?
                .into_inner()
                .client
        }
    };
    let obj = match reply {
        Some(c) => {
            let c = client_from_proto(c)
                .map_err(|e| CallError::Usage(format!("unreadable reply: {e}")))?;
            json::client_to_json_exposing_secrets(&c)
        }
        None => Map::new(),
    };
    Ok(serde_json::to_string_pretty(&Value::Object(obj)).unwrap_or_default())
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

/// Parses `--metadata` (RFC 7591 JSON) into the protobuf form.
pub(super) fn metadata(text: Option<&str>) -> Result<pb::ClientMetadata, CallError> {
    let text = text.ok_or_else(|| CallError::Usage("--metadata is required".into()))?;
    let obj = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => obj,
        _ => return Err(CallError::Usage("--metadata must be a JSON object".into())),
    };
    let m =
        json::metadata_from_json(obj).map_err(|e| CallError::Usage(format!("--metadata: {e}")))?;
    Ok(crate::api::metadata_to_proto(m))
}
