//! The six plain RPCs from the command line, through one generic client:
//! which flags a call needs is read from the operation table (a client's
//! route needs `--client-id`, a body needs `--metadata`), and the request
//! and reply are each RPC's [`PlainRpc`] conversions.

use serde_json::Value;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use super::args::{CallArgs, CallError, client_json, metadata};
use crate::api::{PlainReply, PlainRpc, RequestFields};
use crate::dcr::{Body, Operation, Place};
use crate::pb::v1 as pb;

/// Makes the plain call `op` and returns the reply as pretty JSON (the
/// client, or `{}` when the reply carries none).
pub(super) async fn run(
    channel: Channel,
    op: Operation,
    args: &CallArgs,
) -> Result<String, CallError> {
    let fields = fields(op, args)?;
    let client = match op {
        Operation::Register => send::<pb::RegisterClientRequest>(channel, fields).await?,
        Operation::Get => send::<pb::GetClientRequest>(channel, fields).await?,
        Operation::Update => send::<pb::UpdateClientRequest>(channel, fields).await?,
        Operation::Delete => send::<pb::DeleteClientRequest>(channel, fields).await?,
        Operation::RotateSecret => send::<pb::RotateClientSecretRequest>(channel, fields).await?,
        Operation::RotateToken => {
            send::<pb::RotateRegistrationTokenRequest>(channel, fields).await?
        }
        // Asked by a managed client's name, not a client id.
        Operation::Token => {
            return Err(CallError::Usage(
                "token is asked for a managed client: call token --name NAME".into(),
            ));
        }
    };
    let obj = client_json(client)?;
    Ok(serde_json::to_string_pretty(&Value::Object(obj)).unwrap_or_default())
}

/// The request's fields from the flags, with the flags `op` needs required.
fn fields(op: Operation, args: &CallArgs) -> Result<RequestFields, CallError> {
    let spec = op.spec();
    let client_id = match spec.path.place {
        Place::Client { .. } => args
            .client_id
            .clone()
            .ok_or_else(|| CallError::Usage("--client-id is required".into()))?,
        Place::Registration | Place::Token => String::new(),
    };
    let metadata = match spec.body {
        Body::Empty | Body::TokenForm => None,
        Body::Metadata | Body::MetadataWithClientId => Some(metadata(args.metadata.as_deref())?),
    };
    Ok(RequestFields {
        client_id,
        registration_access_token: args.registration_access_token.clone(),
        initial_access_token: args.initial_access_token.clone(),
        metadata,
        update_mask: args.mask.clone(),
    })
}

/// Sends `R` built from `fields` and returns the client its reply carries.
async fn send<R: PlainRpc>(
    channel: Channel,
    fields: RequestFields,
) -> Result<Option<pb::Client>, CallError> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("the gateway is not ready: {e}")))?;
    let path = PathAndQuery::try_from(format!("/{}", R::OPERATION.span_name()))
        .map_err(|e| CallError::Usage(format!("{}: {e}", R::OPERATION.rpc_name())))?;
    let codec = tonic_prost::ProstCodec::<R, R::Reply>::default();
    let reply = grpc
        .unary(tonic::Request::new(R::from_fields(fields)), path, codec)
        .await?;
    Ok(reply.into_inner().client())
}
