//! dcr-gateway: a gRPC sidecar for OAuth 2.0 Dynamic Client Registration.
//!
//! Callers speak `dcr.v1.DynamicClientRegistration` over gRPC; the gateway turns
//! each call into the matching RFC 7591/7592 HTTP call against an authorization
//! server and answers in protobuf. A call flows through these modules:
//!
//! ```text
//! api/         the gRPC edge: proto ⇄ domain, DcrError ⇄ tonic::Status
//! middleware/  tower layers over Service<DcrRequest>, one per file or folder
//! upstream/    the HTTP boundary: the one client, profiles, discovery
//! store/       where registration access tokens are kept
//! dcr/         the domain model: the operation table, clients, errors
//! managed/     managed clients: ensure, watch, list, forget, over the stack
//! ```
//!
//! `server` assembles the listeners (its `admin` serves metrics and health), `config`
//! and `cli` hold what an operator sets and the commands people run,
//! `telemetry` sets up traces, metrics and logs, and `tls` the listener's TLS.
//!
//! The public surface is small on purpose: the command line ([`cli::Cli`]), a
//! gateway built from a [`config::Config`] ([`Gateway`]), the generated
//! protobuf types ([`pb`]), the token store ([`store`]) that `dcr-gateway
//! tokens` and embedders read, and the operation table ([`Operation`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
pub mod cli;
pub mod config;
mod coord;
mod dcr;
mod duration;
mod files;
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod managed;
mod middleware;
pub mod pb;
#[cfg(feature = "reference-servers")]
pub mod reference;
mod server;
pub mod store;
mod telemetry;
mod tls;
mod upstream;

pub use dcr::{
    Answer, Authority, Body, CLIENT_ID_SEGMENT, Credential, GoneAfterLostAnswer, HttpMethod,
    Operation, OperationSpec, Place, StoreEffect,
};
pub use server::{CREDENTIALS_HEALTH, Gateway, ServeError, shutdown_signal};
