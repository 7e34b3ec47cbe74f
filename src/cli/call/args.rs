//! What `dcr-gateway call` is given (the RPC, by its command-line name, and
//! its flags), how it fails, and the conversions every RPC shares: the
//! `--metadata` flag in, a client out as JSON.

use std::time::Duration;

use clap::Args;
use clap::builder::TypedValueParser as _;
use serde_json::{Map, Value};

use crate::api::client_from_proto;
use crate::config::parse_duration;
use crate::dcr::{Operation, Place, json};
use crate::pb::v1 as pb;

/// Flags of `call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The RPC to call (the operation table's names, the managed-client RPCs,
    /// then health: grpc.health.v1 Check of the service, failing unless
    /// SERVING): register needs --metadata; get, update, delete, rotate-secret and
    /// rotate-token need --client-id; update needs --metadata too, and takes
    /// --mask for a partial update. ensure needs --name and --metadata; watch,
    /// forget and token need --name; watch prints a JSON line per message;
    /// token takes --scope and --resource, each as often as needed.
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
    /// With token: a scope to ask for (repeat for more); none asks for the
    /// client's registered scope.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// With token: a resource the token is for (RFC 8707; repeat for more).
    #[arg(long = "resource", value_name = "URI")]
    pub resources: Vec<String>,
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
    let names = plain()
        .map(|op| op.spec().cli)
        .chain(ManagedRpc::ALL.map(|(_, name)| name))
        .chain([HEALTH]);
    clap::builder::PossibleValuesParser::new(names).map(|name| {
        let op = plain().find(|op| op.spec().cli == name);
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

/// The managed-client RPCs, by their command-line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagedRpc {
    /// EnsureClient.
    Ensure,
    /// WatchClient.
    Watch,
    /// ListClients.
    List,
    /// ForgetClient.
    Forget,
    /// GetAccessToken.
    Token,
}

impl ManagedRpc {
    /// Every one, with its command-line name.
    pub const ALL: [(ManagedRpc, &'static str); 5] = [
        (Self::Ensure, "ensure"),
        (Self::Watch, "watch"),
        (Self::List, "list"),
        (Self::Forget, "forget"),
        (Self::Token, Operation::Token.spec().cli),
    ];
}

/// The operations asked for by client id; the token endpoint's is asked
/// for by a managed client's name, with the managed-client RPCs.
fn plain() -> impl Iterator<Item = Operation> {
    Operation::ALL
        .into_iter()
        .filter(|op| op.spec().path.place != Place::Token)
}

/// A client as JSON, its secret included (the user asked for it).
pub(super) fn client_json(client: Option<pb::Client>) -> Result<Map<String, Value>, CallError> {
    match client {
        Some(c) => {
            let c = client_from_proto(c)
                .map_err(|e| CallError::Usage(format!("unreadable reply: {e}")))?;
            Ok(json::client_to_json_exposing_secrets(&c))
        }
        None => Ok(Map::new()),
    }
}

/// Parses `--metadata` (RFC 7591 JSON) into the protobuf form.
pub(super) fn metadata(text: Option<&str>) -> Result<pb::ClientMetadata, CallError> {
    let text = text.ok_or_else(|| CallError::Usage("--metadata is required".into()))?;
    // serde_json's syntax errors say what was expected, at which line and
    // column; they quote no value (metadata holds no secret anyway).
    let obj = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => {
            return Err(CallError::Usage(
                r#"--metadata must be a JSON object, e.g. '{"client_name":"demo"}'"#.into(),
            ));
        }
        Err(e) => return Err(CallError::Usage(format!("--metadata is not JSON: {e}"))),
    };
    let m =
        json::metadata_from_json(obj).map_err(|e| CallError::Usage(format!("--metadata: {e}")))?;
    Ok(crate::api::metadata_to_proto(m))
}
