//! The gRPC edge: `dcr.v1.DynamicClientRegistration` over the domain service.
//!
//! Requests are validated and converted to [`crate::dcr::DcrRequest`] here, so
//! nothing malformed reaches the middleware; errors leave as `tonic::Status`
//! with rich details.

mod access;
mod answered;
mod callers;
pub mod codec;
mod convert;
mod deadline;
mod managed;
mod peer;
mod plain;
mod protobuf_struct;
mod redact;
mod service;
mod status;

pub use callers::Callers;
pub use convert::{client_from_proto, metadata_from_proto, metadata_to_proto};
pub use deadline::parse_grpc_timeout;
pub use peer::PeerInfo;
pub use plain::{PlainReply, PlainRpc, RequestFields};
pub use service::{DcrService, EdgeSettings};
