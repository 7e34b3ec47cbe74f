//! Managed-client helpers: ensure a name, follow it, and a dev upstream that
//! lost every client.

use dcr_dev_upstream::DevUpstream;
use dcr_gateway::pb::v1 as pb;

use super::{Client, machine_client};

/// An EnsureClient request for a client_credentials client.
pub fn ensure_req(name: &str, client_name: &str) -> pb::EnsureClientRequest {
    pb::EnsureClientRequest {
        name: name.into(),
        metadata: Some(machine_client(client_name)),
        initial_access_token: None,
    }
}

/// Ensures `name`, which must succeed.
pub async fn ensure(c: &mut Client, name: &str, client_name: &str) -> pb::EnsureClientResponse {
    c.ensure_client(ensure_req(name, client_name))
        .await
        .expect("ensure succeeds")
        .into_inner()
}

/// A WatchClient stream on `name`.
pub async fn follow(c: &mut Client, name: &str) -> tonic::Streaming<pb::WatchClientResponse> {
    c.watch_client(pb::WatchClientRequest { name: name.into() })
        .await
        .expect("the watch starts")
        .into_inner()
}

/// Restarts the dev upstream on its address with no clients: it lost them all.
pub async fn restart_empty(mut dev: DevUpstream) -> DevUpstream {
    let addr = dev.addr();
    dev.pause().await;
    drop(dev);
    DevUpstream::start(addr, None)
        .await
        .expect("the same address again")
}

/// The caller's managed clients.
pub async fn list(c: &mut Client) -> Vec<pb::ManagedClient> {
    c.list_clients(pb::ListClientsRequest::default())
        .await
        .expect("list succeeds")
        .into_inner()
        .clients
}
