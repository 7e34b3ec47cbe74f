//! GetAccessToken at the gRPC edge: an access token for a managed client of
//! the caller's namespace, which the caller asks for by name.

use tonic::{Request, Response, Status};

use super::managed::timestamp;
use super::service::{DcrService, Rpc};
use crate::dcr::Operation;
use crate::managed::TokenAsk;
use crate::pb::v1 as pb;

/// GetAccessToken, for spans, metrics and error wording (the operation
/// table's row).
const TOKEN: Rpc = Rpc {
    method: Operation::Token.spec().rpc,
    span: Operation::Token.spec().span,
    op: Some(Operation::Token),
};

impl DcrService {
    pub(super) async fn access_token(
        &self,
        request: Request<pb::GetAccessTokenRequest>,
    ) -> Result<Response<pb::GetAccessTokenResponse>, Status> {
        let (metadata, ext, r) = request.into_parts();
        let issued = self
            .serve(&metadata, &ext, TOKEN, "", |cx| async move {
                let ask = TokenAsk::new(r.scopes, r.resource)?;
                self.managed
                    .access_token(&cx.namespace, &r.name, ask, cx.deadline)
                    .await
            })
            .await?;
        use secrecy::ExposeSecret;
        Ok(issued.respond(|issued| pb::GetAccessTokenResponse {
            access_token: issued.token.expose_secret().to_owned(),
            token_type: issued.token_type,
            expires_at: timestamp(issued.expires_at),
            scope: issued.scope,
        }))
    }
}
