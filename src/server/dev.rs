//! `--dev-upstream`: the stand-in server started in the gateway's own process,
//! when the build has it (the default `dev-upstream` feature).

use url::Url;

use super::ServeError;

/// Keeps the in-process dev upstream running for as long as the gateway.
#[cfg(feature = "dev-upstream")]
pub(super) type DevGuard = dcr_dev_upstream::DevUpstream;
/// A build without the dev upstream has nothing to keep.
#[cfg(not(feature = "dev-upstream"))]
pub(super) type DevGuard = std::convert::Infallible;

/// Starts the dev upstream on an ephemeral loopback port; its base URL is the
/// gateway's upstream.
#[cfg(feature = "dev-upstream")]
pub(super) async fn start() -> Result<(Url, DevGuard), ServeError> {
    let dev = DevGuard::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .map_err(ServeError::DevUpstream)?;
    tracing::warn!(
        "using the built-in dev upstream at {}: it is NOT a real authorization server, \
         and forgets every client when the gateway stops",
        dev.base_url()
    );
    let url = dev.base_url().parse().map_err(|_| {
        ServeError::DevUpstream(std::io::Error::other("dev upstream address is not a URL"))
    })?;
    Ok((url, dev))
}

/// Unreachable in a build without the `dev-upstream` feature: the
/// configuration refuses `--dev-upstream` there (`config/upstream.rs`), so
/// getting here is a broken invariant, reported as one.
#[cfg(not(feature = "dev-upstream"))]
pub(super) async fn start() -> Result<(Url, DevGuard), ServeError> {
    Err(ServeError::DevUpstream(std::io::Error::other(
        "the configuration let --dev-upstream through in a build without the dev upstream",
    )))
}
