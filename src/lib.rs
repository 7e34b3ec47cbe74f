//! dcr-gateway: a gRPC sidecar for OAuth 2.0 Dynamic Client Registration.
//!
//! Callers speak `dcr.v1.DynamicClientRegistration` over gRPC; the gateway turns
//! each call into the matching RFC 7591/7592 HTTP call against an authorization
//! server and answers in protobuf. The call flows through these modules:
//!
//! ```text
//! api/         gRPC edge: proto ⇄ domain, DcrError ⇄ tonic::Status
//! middleware/  tower layers over Service<DcrRequest> (masked update, tokens)
//! upstream/    the HTTP transport to the authorization server
//! store/       where registration access tokens are kept
//! ```
//!
//! `dev_upstream/` is a SharkAuth-compatible server for demos and tests, `server`
//! assembles the listener, `config` and `cli` hold what an operator sets, and
//! `call` and `tokens_cmd` are the command-line tools.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod call;
pub mod cli;
pub mod config;
pub mod dcr;
pub mod dev_upstream;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod middleware;
pub mod pb;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod tokens_cmd;
pub mod upstream;
