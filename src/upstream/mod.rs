//! The HTTP transport to the authorization server.
//!
//! [`HttpUpstream`] is the innermost `Service<DcrRequest>`: it turns a domain
//! request into the profile's route, method, credential and body, as the
//! operation table says, sends it on one pooled HTTP client, and turns the
//! answer back into a [`DcrResponse`] or a [`DcrError`]. Everything above it
//! in the tower stack is protocol-agnostic.

mod answer;
mod client;
mod discovery;
mod failure;
mod outgoing;
mod profile;
mod route;

pub use client::{HttpClientError, HttpUpstream, UpstreamConfig, http_client};
pub use discovery::discover;
pub use failure::parse_retry_after;
pub use profile::{Endpoints, Profile, RegistrationEndpoint};
pub use route::under_base;
