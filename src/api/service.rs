//! The tonic service: validate, convert, call the domain stack, convert back.

use std::time::Instant;

use tonic::{Request, Response, Status};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use super::convert::{client_to_proto, initial_access_token, metadata_from_proto, target};
use super::status::to_status;
use crate::dcr::{DcrError, DcrRequest, DcrResponse, Operation, mask};
use crate::pb::v1 as pb;
use crate::pb::v1::dynamic_client_registration_server::DynamicClientRegistration;

/// The domain stack behind the gRPC edge: every middleware layer over the HTTP
/// transport, boxed so the edge does not depend on which layers are configured.
pub type GatewayService = BoxCloneSyncService<DcrRequest, DcrResponse, DcrError>;

/// Implements `dcr.v1.DynamicClientRegistration` over a [`GatewayService`].
#[derive(Clone)]
pub struct DcrService {
    stack: GatewayService,
}

impl DcrService {
    /// Serves RPCs through `stack`.
    pub fn new(stack: GatewayService) -> Self {
        Self { stack }
    }

    /// Runs one validated request through the stack and logs its outcome.
    async fn run(
        &self,
        req: Result<DcrRequest, DcrError>,
        op: Operation,
    ) -> Result<DcrResponse, Status> {
        let start = Instant::now();
        let (client_id, result) = match req {
            Ok(req) => {
                let client_id = req
                    .target()
                    .map(|t| t.client_id.clone())
                    .unwrap_or_default();
                (client_id, self.stack.clone().oneshot(req).await)
            }
            Err(e) => (String::new(), Err(e)),
        };
        let result = result.map_err(|e| to_status(&e, op));
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        };
        tracing::info!(rpc = op.rpc_name(), client_id, code = ?code, elapsed_ms = start.elapsed().as_millis() as u64, "rpc");
        result
    }
}

/// The client out of a reply that must carry one.
fn client(resp: DcrResponse) -> Option<pb::Client> {
    match resp {
        DcrResponse::Client(c) => Some(client_to_proto(*c)),
        DcrResponse::Deleted => None,
    }
}

#[tonic::async_trait]
impl DynamicClientRegistration for DcrService {
    async fn register_client(
        &self,
        request: Request<pb::RegisterClientRequest>,
    ) -> Result<Response<pb::RegisterClientResponse>, Status> {
        let r = request.into_inner();
        let req = (|| {
            Ok(DcrRequest::Register {
                metadata: metadata_from_proto(r.metadata.unwrap_or_default(), "metadata")?,
                initial_access_token: initial_access_token(r.initial_access_token)?,
            })
        })();
        let resp = self.run(req, Operation::Register).await?;
        Ok(Response::new(pb::RegisterClientResponse {
            client: client(resp),
        }))
    }

    async fn get_client(
        &self,
        request: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::GetClientResponse>, Status> {
        let r = request.into_inner();
        let req = target(r.client_id, r.registration_access_token).map(DcrRequest::Get);
        let resp = self.run(req, Operation::Get).await?;
        Ok(Response::new(pb::GetClientResponse {
            client: client(resp),
        }))
    }

    async fn update_client(
        &self,
        request: Request<pb::UpdateClientRequest>,
    ) -> Result<Response<pb::UpdateClientResponse>, Status> {
        let r = request.into_inner();
        let req = (|| {
            Ok(DcrRequest::Update {
                target: target(r.client_id, r.registration_access_token)?,
                metadata: metadata_from_proto(r.metadata.unwrap_or_default(), "metadata")?,
                mask: mask::normalize_mask(&r.update_mask.unwrap_or_default().paths)?,
            })
        })();
        let resp = self.run(req, Operation::Update).await?;
        Ok(Response::new(pb::UpdateClientResponse {
            client: client(resp),
        }))
    }

    async fn delete_client(
        &self,
        request: Request<pb::DeleteClientRequest>,
    ) -> Result<Response<pb::DeleteClientResponse>, Status> {
        let r = request.into_inner();
        let req = target(r.client_id, r.registration_access_token).map(DcrRequest::Delete);
        self.run(req, Operation::Delete).await?;
        Ok(Response::new(pb::DeleteClientResponse {}))
    }

    async fn rotate_client_secret(
        &self,
        request: Request<pb::RotateClientSecretRequest>,
    ) -> Result<Response<pb::RotateClientSecretResponse>, Status> {
        let r = request.into_inner();
        let req = target(r.client_id, r.registration_access_token).map(DcrRequest::RotateSecret);
        let resp = self.run(req, Operation::RotateSecret).await?;
        Ok(Response::new(pb::RotateClientSecretResponse {
            client: client(resp),
        }))
    }

    async fn rotate_registration_token(
        &self,
        request: Request<pb::RotateRegistrationTokenRequest>,
    ) -> Result<Response<pb::RotateRegistrationTokenResponse>, Status> {
        let r = request.into_inner();
        let req = target(r.client_id, r.registration_access_token).map(DcrRequest::RotateToken);
        let resp = self.run(req, Operation::RotateToken).await?;
        Ok(Response::new(pb::RotateRegistrationTokenResponse {
            client: client(resp),
        }))
    }
}
