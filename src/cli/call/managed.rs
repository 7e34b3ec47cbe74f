//! `dcr-gateway call ensure|watch|list|forget`: the managed-client RPCs from
//! the command line.

use serde_json::{Value, json};

use super::args::{CallArgs, CallError, ManagedRpc, client_json, metadata};
use crate::pb::v1 as pb;
use crate::pb::v1::dynamic_client_registration_client::DynamicClientRegistrationClient;

type Grpc = DynamicClientRegistrationClient<tonic::transport::Channel>;

/// Makes a managed-client call and returns what to print: one JSON object,
/// or for `watch` one line per message until the stream ends.
pub async fn run(client: &mut Grpc, rpc: ManagedRpc, args: &CallArgs) -> Result<String, CallError> {
    let name = || {
        args.name
            .clone()
            .ok_or_else(|| CallError::Usage("--name is required".into()))
    };
    let out = match rpc {
        ManagedRpc::Ensure => {
            let req = pb::EnsureClientRequest {
                name: name()?,
                metadata: Some(metadata(args.metadata.as_deref())?),
                initial_access_token: args.initial_access_token.clone(),
            };
            let r = client.ensure_client(req).await?.into_inner();
            let outcome = r
                .outcome()
                .as_str_name()
                .trim_start_matches("ENSURE_OUTCOME_");
            json!({"outcome": outcome, "client": client_json(r.client)?})
        }
        ManagedRpc::Watch => {
            let req = pb::WatchClientRequest { name: name()? };
            let mut stream = client.watch_client(req).await?.into_inner();
            while let Some(message) = stream.message().await? {
                let change = message
                    .change()
                    .as_str_name()
                    .trim_start_matches("CLIENT_CHANGE_");
                let line = json!({"change": change, "client": client_json(message.client)?});
                println!("{line}");
            }
            return Ok(String::new());
        }
        ManagedRpc::List => {
            // Every page, in order.
            let (mut clients, mut token) = (Vec::new(), String::new());
            let warning = loop {
                let req = pb::ListClientsRequest {
                    page_size: 0,
                    page_token: std::mem::take(&mut token),
                };
                let r = client.list_clients(req).await?.into_inner();
                clients.extend(r.clients.into_iter().map(listed));
                match r.next_page_token.is_empty() {
                    true => break r.credentials_dir_warning,
                    false => token = r.next_page_token,
                }
            };
            match warning.is_empty() {
                true => json!({ "clients": clients }),
                false => json!({ "clients": clients, "credentials_dir_warning": warning }),
            }
        }
        ManagedRpc::Token => {
            let req = pb::GetAccessTokenRequest {
                name: name()?,
                scopes: args.scopes.clone(),
                resource: args.resources.clone(),
            };
            let r = client.get_access_token(req).await?.into_inner();
            json!({
                "access_token": r.access_token,
                "token_type": r.token_type,
                "expires_at": r.expires_at.map(|t| t.seconds),
                "scope": r.scope,
            })
        }
        ManagedRpc::Forget => {
            let req = pb::ForgetClientRequest {
                name: name()?,
                delete_upstream: args.delete_upstream,
            };
            client.forget_client(req).await?;
            json!({})
        }
    };
    Ok(serde_json::to_string_pretty(&out).unwrap_or_default())
}

/// A managed client as `call list` prints it (never a secret).
fn listed(m: pb::ManagedClient) -> Value {
    let outcome = m
        .last_outcome()
        .as_str_name()
        .trim_start_matches("ENSURE_OUTCOME_");
    json!({
        "name": m.name,
        "client_id": m.client_id,
        "last_outcome": outcome,
        "last_ensured_at": m.last_ensured_at.map(|t| t.seconds),
        "secret_issued_at": m.secret_issued_at.map(|t| t.seconds),
        "client_secret_expires_at": m.client_secret_expires_at.map(|t| t.seconds),
        "last_error": m.last_error,
        "declared": m.declared,
        "retired_at": m.retired_at.map(|t| t.seconds),
        "delete_at": m.delete_at.map(|t| t.seconds),
        "credentials_file": m.credentials_file.map(|f| json!({
            "error": f.error,
            "changed_at": f.changed_at.map(|t| t.seconds),
        })),
        "access_tokens": m.access_tokens.map(|t| json!({
            "held": t.held,
            "files": t.files,
            "last_obtained_at": t.last_obtained_at.map(|t| t.seconds),
            "last_error": t.last_error,
        })),
    })
}
