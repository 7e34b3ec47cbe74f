//! Domain types: what a registration call means, independent of gRPC and HTTP.
//!
//! The middleware works on these types rather than on raw HTTP because whether a
//! call may be retried, and what it does to a stored registration access token,
//! depends on the operation and not on the HTTP verb.

mod capabilities;
pub mod durability;
mod error;
mod failure;
pub mod json;
pub mod limits;
pub mod mask;
mod metadata;
mod name;
mod operation;
mod reason;
mod request;
mod send_gate;
mod token;

pub use capabilities::{Capabilities, LossProof, SecretRotation};
pub use error::{Cause, DcrError, StoreError, UpstreamFailure};
pub use failure::{Delivery, FailureClass, upstream_reason};
pub use metadata::{Client, ClientMetadata};
pub use name::check_name;
pub use operation::{
    Answer, Authority, Body, CLIENT_ID_SEGMENT, Credential, GoneAfterLostAnswer, HttpMethod,
    Operation, OperationSpec, Place, StoreEffect,
};
pub use reason::Reason;
pub use request::{ClientRef, DEFAULT_NAMESPACE, DcrCall, DcrRequest, DcrResponse};
pub use send_gate::{SendGate, SentExchanges};
pub use token::{AccessToken, AssertionSigner, ClientAuth, TokenRequest};

/// Now, in Unix seconds (0 before 1970, which no clock here shows).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
