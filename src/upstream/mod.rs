//! The HTTP transport to the authorization server.
//!
//! [`HttpUpstream`] is the innermost `Service<DcrRequest>`: it turns a domain
//! request into the profile's route, method, credential and body, as the
//! operation table says, sends it on the one pooled HTTP client ([`UpstreamHttp`]), and turns the
//! answer back into a [`DcrResponse`] or a [`DcrError`]. Everything above it
//! in the tower stack is protocol-agnostic.

mod answer;
mod client;
mod discovery;
mod failure;
#[cfg(feature = "reference-servers")]
mod floor;
mod http;
mod outgoing;
mod profile;
mod route;

pub use client::HttpUpstream;
pub use discovery::discover;
pub use failure::parse_retry_after;
#[cfg(feature = "reference-servers")]
pub use floor::Floor;
pub use http::{HttpClientError, UpstreamConfig, UpstreamHttp};
pub use profile::{Endpoints, Profile, RegistrationEndpoint};
pub use route::under_base;
