//! The six plain RPCs, one [`PlainRpc`] each: the only code at the edge and
//! in `dcr-gateway call` that is particular to one operation. The edge
//! serves them all through one generic path (`DcrService::unary`), and the
//! command line calls them all through one generic client; what each means
//! is the operation table's.

use secrecy::SecretString;

use super::convert::{client_to_proto, initial_access_token, metadata_from_proto, target};
use crate::dcr::{DcrCall, DcrError, DcrResponse, Operation, mask};
use crate::pb::v1 as pb;

/// What the gateway fills in when the caller leaves it out.
#[derive(Clone, Copy, Default)]
pub struct Defaults<'a> {
    /// The deployment's initial access token, for a registration that
    /// carries none.
    pub initial_access_token: Option<&'a SecretString>,
}

/// Every field a plain request may carry, as a client builds it; each
/// request takes the ones it has.
#[derive(Clone, Debug, Default)]
pub struct RequestFields {
    /// The client acted on.
    pub client_id: String,
    /// Its registration access token; unset uses the one the gateway holds.
    pub registration_access_token: Option<String>,
    /// The initial access token of a registration.
    pub initial_access_token: Option<String>,
    /// The metadata a registration or update sends.
    pub metadata: Option<pb::ClientMetadata>,
    /// The fields a partial update changes; empty replaces them all.
    pub update_mask: Vec<String>,
}

/// One plain RPC: its messages, its row of the operation table, and the
/// conversions between its messages and the domain's call and answer.
pub trait PlainRpc: prost::Message + Default + Sized + Send + 'static {
    /// The reply message.
    type Reply: PlainReply;
    /// Its row of the operation table.
    const OPERATION: Operation;

    /// The domain call this request asks for, validated.
    fn into_call(self, defaults: Defaults<'_>) -> Result<DcrCall, DcrError>;

    /// The request a client sends, from the fields it was given.
    fn from_fields(fields: RequestFields) -> Self;
}

/// A plain RPC's reply: the client the answer carries, or nothing.
pub trait PlainReply: prost::Message + Default + Send + 'static {
    /// The reply carrying `client`.
    fn carrying(client: Option<pb::Client>) -> Self;

    /// The client it carries.
    fn client(self) -> Option<pb::Client>;

    /// The reply to a successful domain answer.
    fn answering(answer: DcrResponse) -> Self {
        Self::carrying(match answer {
            DcrResponse::Client(c) => Some(client_to_proto(*c)),
            DcrResponse::Deleted | DcrResponse::AccessToken(_) => None,
        })
    }
}

/// The replies with a `client` field.
macro_rules! client_reply {
    ($($reply:ty),*) => {
        $(impl PlainReply for $reply {
            fn carrying(client: Option<pb::Client>) -> Self {
                Self { client }
            }

            fn client(self) -> Option<pb::Client> {
                self.client
            }
        })*
    };
}

client_reply!(
    pb::RegisterClientResponse,
    pb::GetClientResponse,
    pb::UpdateClientResponse,
    pb::RotateClientSecretResponse,
    pb::RotateRegistrationTokenResponse
);

/// DeleteClient's reply carries nothing.
impl PlainReply for pb::DeleteClientResponse {
    fn carrying(_: Option<pb::Client>) -> Self {
        Self {}
    }

    fn client(self) -> Option<pb::Client> {
        None
    }
}

impl PlainRpc for pb::RegisterClientRequest {
    type Reply = pb::RegisterClientResponse;
    const OPERATION: Operation = Operation::Register;

    fn into_call(self, defaults: Defaults<'_>) -> Result<DcrCall, DcrError> {
        Ok(DcrCall::Register {
            metadata: metadata_from_proto(self.metadata.unwrap_or_default(), "metadata")?,
            initial_access_token: initial_access_token(self.initial_access_token)?
                .or_else(|| defaults.initial_access_token.cloned()),
        })
    }

    fn from_fields(f: RequestFields) -> Self {
        Self {
            metadata: f.metadata,
            initial_access_token: f.initial_access_token,
        }
    }
}

impl PlainRpc for pb::UpdateClientRequest {
    type Reply = pb::UpdateClientResponse;
    const OPERATION: Operation = Operation::Update;

    fn into_call(self, _: Defaults<'_>) -> Result<DcrCall, DcrError> {
        Ok(DcrCall::Update {
            target: target(self.client_id, self.registration_access_token)?,
            metadata: metadata_from_proto(self.metadata.unwrap_or_default(), "metadata")?,
            mask: mask::normalize_mask(&self.update_mask.unwrap_or_default().paths)?,
        })
    }

    fn from_fields(f: RequestFields) -> Self {
        Self {
            client_id: f.client_id,
            registration_access_token: f.registration_access_token,
            metadata: f.metadata,
            update_mask: (!f.update_mask.is_empty()).then_some(prost_types::FieldMask {
                paths: f.update_mask,
            }),
        }
    }
}

impl PlainRpc for pb::DeleteClientRequest {
    type Reply = pb::DeleteClientResponse;
    const OPERATION: Operation = Operation::Delete;

    fn into_call(self, _: Defaults<'_>) -> Result<DcrCall, DcrError> {
        target(self.client_id, self.registration_access_token).map(DcrCall::Delete)
    }

    fn from_fields(f: RequestFields) -> Self {
        Self {
            client_id: f.client_id,
            registration_access_token: f.registration_access_token,
        }
    }
}

/// A [`PlainRpc`] whose request names a client by id and token and whose
/// reply carries the client: GetClient and the rotations.
macro_rules! on_named_client {
    ($request:ty, $reply:ty, $op:expr, $call:path) => {
        impl PlainRpc for $request {
            type Reply = $reply;
            const OPERATION: Operation = $op;

            fn into_call(self, _: Defaults<'_>) -> Result<DcrCall, DcrError> {
                target(self.client_id, self.registration_access_token).map($call)
            }

            fn from_fields(f: RequestFields) -> Self {
                Self {
                    client_id: f.client_id,
                    registration_access_token: f.registration_access_token,
                }
            }
        }
    };
}

on_named_client!(
    pb::GetClientRequest,
    pb::GetClientResponse,
    Operation::Get,
    DcrCall::Get
);
on_named_client!(
    pb::RotateClientSecretRequest,
    pb::RotateClientSecretResponse,
    Operation::RotateSecret,
    DcrCall::RotateSecret
);
on_named_client!(
    pb::RotateRegistrationTokenRequest,
    pb::RotateRegistrationTokenResponse,
    Operation::RotateToken,
    DcrCall::RotateToken
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcr::{Answer, Body, Client, Place};
    use secrecy::ExposeSecret;

    fn fields() -> RequestFields {
        RequestFields {
            client_id: "c1".into(),
            registration_access_token: Some("rat".into()),
            initial_access_token: Some("iat".into()),
            metadata: Some(pb::ClientMetadata {
                client_name: Some("demo".into()),
                ..Default::default()
            }),
            update_mask: vec!["client_name".into()],
        }
    }

    /// A client's request, converted to the domain and back through the
    /// reply, keeps what the operation table says it carries.
    fn round_trip<R: PlainRpc>() {
        let spec = R::OPERATION.spec();
        let call = R::from_fields(fields())
            .into_call(Defaults::default())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.rpc));
        assert_eq!(call.operation(), R::OPERATION, "{}", spec.rpc);
        match spec.path.place {
            Place::Client { .. } => {
                let target = call.target().expect("a client's call names it");
                assert_eq!(target.client_id, "c1");
                assert!(target.registration_access_token.is_some());
            }
            Place::Registration => {
                assert!(call.target().is_none());
                assert!(call.initial_access_token().is_some());
            }
            Place::Token => panic!("{} is no plain RPC", spec.rpc),
        }
        assert_eq!(
            call.metadata().map(|m| m.client_name.clone()),
            (spec.body != Body::Empty).then(|| Some("demo".to_owned())),
            "{}",
            spec.rpc
        );
        let answer = match spec.answer {
            Answer::Client => DcrResponse::Client(Box::new(Client {
                client_id: "c1".into(),
                ..Default::default()
            })),
            Answer::Nothing => DcrResponse::Deleted,
            Answer::AccessToken => panic!("{} is no plain RPC", spec.rpc),
        };
        let client = R::Reply::answering(answer).client();
        assert_eq!(
            client.map(|c| c.client_id),
            (spec.answer == Answer::Client).then(|| "c1".to_owned()),
            "{}",
            spec.rpc
        );
    }

    #[test]
    fn every_plain_rpc_carries_what_its_operation_says() {
        round_trip::<pb::RegisterClientRequest>();
        round_trip::<pb::GetClientRequest>();
        round_trip::<pb::UpdateClientRequest>();
        round_trip::<pb::DeleteClientRequest>();
        round_trip::<pb::RotateClientSecretRequest>();
        round_trip::<pb::RotateRegistrationTokenRequest>();
    }

    #[test]
    fn the_gateway_fills_in_its_initial_access_token_only_when_none_is_given() {
        let token = SecretString::from("deployment");
        let defaults = Defaults {
            initial_access_token: Some(&token),
        };
        let bare = pb::RegisterClientRequest::from_fields(RequestFields {
            initial_access_token: None,
            ..fields()
        });
        let call = bare.into_call(defaults).unwrap();
        assert_eq!(
            call.initial_access_token()
                .map(|t| t.expose_secret().to_owned()),
            Some("deployment".to_owned())
        );
        let own = pb::RegisterClientRequest::from_fields(fields());
        let call = own.into_call(defaults).unwrap();
        assert_eq!(
            call.initial_access_token()
                .map(|t| t.expose_secret().to_owned()),
            Some("iat".to_owned())
        );
    }
}
