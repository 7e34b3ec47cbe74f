//! The managed-client RPCs at the gRPC edge: EnsureClient, WatchClient,
//! ListClients and ForgetClient, each in the caller's namespace.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::convert::{client_to_proto, initial_access_token, metadata_from_proto};
use super::service::{DcrService, Rpc, WatchStream};
use super::status::to_status;
use crate::dcr::DcrError;
use crate::managed::{
    Change, Managed, Outcome, Published, Status as ClientStatus, Watch, WatchSlot, check_name,
};
use crate::pb::v1 as pb;

/// How often a watch reads its client's record again, to see what another
/// replica changed.
const WATCH_REFRESH: Duration = Duration::from_secs(5);
/// ListClients' page size when the caller sets none.
const DEFAULT_PAGE_SIZE: usize = 500;
/// ListClients' largest page (about 100 KiB).
const MAX_PAGE_SIZE: usize = 1000;

const fn rpc(method: &'static str, span: &'static str) -> Rpc {
    Rpc {
        method,
        span,
        op: None,
    }
}

const ENSURE: Rpc = rpc(
    "EnsureClient",
    "dcr.v1.DynamicClientRegistration/EnsureClient",
);
const WATCH: Rpc = rpc(
    "WatchClient",
    "dcr.v1.DynamicClientRegistration/WatchClient",
);
const LIST: Rpc = rpc(
    "ListClients",
    "dcr.v1.DynamicClientRegistration/ListClients",
);
const FORGET: Rpc = rpc(
    "ForgetClient",
    "dcr.v1.DynamicClientRegistration/ForgetClient",
);

fn outcome(o: Outcome) -> pb::EnsureOutcome {
    match o {
        Outcome::Created => pb::EnsureOutcome::Created,
        Outcome::Unchanged => pb::EnsureOutcome::Unchanged,
        Outcome::Updated => pb::EnsureOutcome::Updated,
        Outcome::Recreated => pb::EnsureOutcome::Recreated,
    }
}

fn change(c: Change) -> pb::ClientChange {
    match c {
        Change::Current => pb::ClientChange::Current,
        Change::SecretRotated => pb::ClientChange::SecretRotated,
        Change::Updated => pb::ClientChange::Updated,
        Change::Recreated => pb::ClientChange::Recreated,
    }
}

pub(super) fn timestamp(unix: u64) -> Option<prost_types::Timestamp> {
    (unix > 0).then(|| prost_types::Timestamp {
        seconds: i64::try_from(unix).unwrap_or(i64::MAX),
        nanos: 0,
    })
}

fn watched(state: &Published, first: bool) -> pb::WatchClientResponse {
    pb::WatchClientResponse {
        client: Some(client_to_proto(state.client.clone())),
        change: change(if first { Change::Current } else { state.change }).into(),
    }
}

impl DcrService {
    fn managed(&self) -> &Managed {
        &self.managed
    }

    pub(super) async fn ensure(
        &self,
        request: Request<pb::EnsureClientRequest>,
    ) -> Result<Response<pb::EnsureClientResponse>, Status> {
        let (metadata, ext, r) = request.into_parts();
        let ensured = self
            .serve(&metadata, &ext, ENSURE, "", |cx| async move {
                check_name("name", &r.name)?;
                let desired = metadata_from_proto(r.metadata.unwrap_or_default(), "metadata")?;
                let iat = initial_access_token(r.initial_access_token)?;
                self.managed()
                    .ensure(&cx.namespace, &r.name, desired, iat, cx.deadline)
                    .await
            })
            .await?;
        Ok(ensured.respond(|ensured| pb::EnsureClientResponse {
            client: Some(client_to_proto(ensured.client)),
            outcome: outcome(ensured.outcome).into(),
        }))
    }

    pub(super) async fn watch(
        &self,
        request: Request<pb::WatchClientRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let (metadata, ext, r) = request.into_parts();
        let name = r.name;
        let (namespace, slot, (current, rx)) = self
            .serve(&metadata, &ext, WATCH, "", |cx| async {
                check_name("name", &name)?;
                if self.managed().is_stopping() {
                    return Err(DcrError::ShuttingDown);
                }
                let slot = self.managed().watch_slot(&cx.namespace)?;
                let watch = self.managed().watch(&cx.namespace, &name).await?;
                Ok((cx.namespace, slot, watch))
            })
            .await?
            .value;
        let follow = Follow {
            managed: self.managed().clone(),
            namespace,
            name,
            rx,
            first: Some(current),
            seen: None,
            slot: Some(slot),
        };
        Ok(Response::new(Box::pin(futures_util::stream::unfold(
            follow,
            Follow::next,
        ))))
    }

    pub(super) async fn list(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        let (metadata, ext, r) = request.into_parts();
        let page = self
            .serve(&metadata, &ext, LIST, "", |cx| async move {
                let limit = match usize::try_from(r.page_size) {
                    Ok(0) => DEFAULT_PAGE_SIZE,
                    Ok(n) => n.min(MAX_PAGE_SIZE),
                    Err(_) => return Err(DcrError::invalid("page_size", "must not be negative")),
                };
                let after = match r.page_token.as_str() {
                    "" => None,
                    token => {
                        check_name("page_token", token)?;
                        Some(token)
                    }
                };
                self.managed().list(&cx.namespace, after, limit).await
            })
            .await?;
        Ok(page.respond(|page| pb::ListClientsResponse {
            clients: page.clients.into_iter().map(managed_client).collect(),
            next_page_token: page.next.unwrap_or_default(),
            credentials_dir_warning: page.folder_warning.unwrap_or_default(),
        }))
    }

    pub(super) async fn forget(
        &self,
        request: Request<pb::ForgetClientRequest>,
    ) -> Result<Response<pb::ForgetClientResponse>, Status> {
        let (metadata, ext, r) = request.into_parts();
        let forgot = self
            .serve(&metadata, &ext, FORGET, "", |cx| async move {
                check_name("name", &r.name)?;
                self.managed()
                    .forget(&cx.namespace, &r.name, r.delete_upstream, cx.deadline)
                    .await
            })
            .await?;
        Ok(forgot.respond(|()| pb::ForgetClientResponse {}))
    }
}

/// A managed client's state as ListClients shows it.
fn managed_client(s: ClientStatus) -> pb::ManagedClient {
    pb::ManagedClient {
        name: s.name,
        client_id: s.client_id,
        last_outcome: outcome(s.outcome).into(),
        last_ensured_at: timestamp(s.ensured_at),
        secret_issued_at: timestamp(s.secret_issued_at),
        client_secret_expires_at: s
            .secret_expires_at
            .and_then(|t| timestamp(u64::try_from(t).unwrap_or(0))),
        next_rotation_at: s.next_rotation_at.and_then(timestamp),
        last_error: s.last_error.unwrap_or_default(),
        replaced: s
            .replaced
            .into_iter()
            .map(|r| pb::ReplacedClient {
                client_id: r.client_id,
                replaced_at: timestamp(r.at),
            })
            .collect(),
        declared: s.declared,
        retired_at: s.retired_at.and_then(timestamp),
        delete_at: s.delete_at.and_then(timestamp),
        credentials_file: s.file.map(|f| pb::CredentialsFile {
            error: f.error.unwrap_or_default(),
            changed_at: timestamp(f.changed_at),
        }),
        access_tokens: s.tokens.map(|t| pb::AccessTokens {
            held: i32::try_from(t.held).unwrap_or(i32::MAX),
            files: t.files,
            last_obtained_at: timestamp(t.last_obtained_at),
            last_error: t.last_error.unwrap_or_default(),
        }),
    }
}

/// A WatchClient stream's state.
struct Follow {
    managed: Managed,
    namespace: String,
    name: String,
    rx: Watch,
    /// The state when the watch began, sent first.
    first: Option<Published>,
    /// The last state sent.
    seen: Option<Arc<Published>>,
    /// Counts the stream against its namespace's limit while it is open;
    /// `None` once it has ended.
    slot: Option<WatchSlot>,
}

impl Follow {
    /// The next message: the current state first, then each change, reading
    /// the record again every [`WATCH_REFRESH`] for other replicas' changes.
    /// The stream ends when the client is no longer managed, and with
    /// UNAVAILABLE when the gateway shuts down.
    async fn next(mut self) -> Option<(Result<pb::WatchClientResponse, Status>, Self)> {
        self.slot.as_ref()?;
        if let Some(first) = self.first.take() {
            let message = watched(&first, true);
            self.seen = Some(Arc::new(first));
            return Some((Ok(message), self));
        }
        loop {
            let current = self.rx.borrow_and_update().clone();
            let state = current?;
            let fresh = self
                .seen
                .as_ref()
                .is_none_or(|seen| seen.generation < state.generation);
            if fresh {
                let message = watched(&state, false);
                self.seen = Some(state);
                return Some((Ok(message), self));
            }
            tokio::select! {
                () = self.managed.stopped() => {
                    self.slot = None;
                    return Some((Err(to_status(&DcrError::ShuttingDown, None)), self));
                }
                changed = self.rx.changed() => changed.ok()?,
                () = tokio::time::sleep(WATCH_REFRESH) => {
                    let seen = self.seen.clone()?;
                    match self.managed.refresh(&self.namespace, &self.name, &seen).await {
                        Ok(true) => {}
                        Ok(false) => return None,
                        Err(e) => tracing::warn!(error = %e, name = self.name, "a watch could not read its client again"),
                    }
                }
            }
        }
    }
}
