//! Where the upstream's endpoints come from: the registration endpoint
//! (configured, SharkAuth's route under the base URL, or discovered from the
//! issuer's metadata and discovered again now and then), and the token
//! endpoint credentials files name.

use crate::config::Config;
use crate::dcr::Operation;
use crate::upstream::{Profile, RegistrationEndpoint, UpstreamHttp, discover, under_base};

use super::ServeError;

/// The token endpoint a declared client's credentials file names: SharkAuth's
/// route under the base URL, its path kept (`/tenant1/oauth/token`), or the
/// one discovered; otherwise not known here.
pub(super) fn token_endpoint(
    profile: Profile,
    base: &url::Url,
    discovered: Option<url::Url>,
) -> Option<String> {
    match profile {
        Profile::SharkAuth { .. } => under_base(base, Operation::Token, None)
            .ok()
            .map(String::from),
        Profile::Rfc7592 => discovered.map(String::from),
    }
}

/// First wait between discovery attempts at start; doubled up to
/// [`DISCOVERY_BACKOFF_MAX`].
const DISCOVERY_BACKOFF_BASE: std::time::Duration = std::time::Duration::from_millis(500);
/// Longest wait between discovery attempts.
const DISCOVERY_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// The registration endpoint: configured, SharkAuth's route under the base
/// URL, or (rfc7592) discovered from the issuer's metadata through the one
/// upstream client. Discovery is retried with backoff until it succeeds: a
/// sidecar that starts before its mesh proxy, or while the server restarts,
/// must wait, not crash-loop. A document that is wrong (foreign endpoint,
/// other issuer) is retried too, and each attempt's reason is logged.
pub(super) async fn registration_endpoint(
    config: &Config,
    http: &UpstreamHttp,
    base: &url::Url,
) -> Result<(url::Url, bool, Option<url::Url>), ServeError> {
    if let Some(url) = &config.registration_endpoint {
        return Ok((url.clone(), false, None));
    }
    match config.profile {
        Profile::SharkAuth { .. } => {
            let url = under_base(base, Operation::Register, None)
                .map_err(|_| ServeError::Discovery("the base URL cannot carry a path".into()))?;
            Ok((url, false, None))
        }
        Profile::Rfc7592 => {
            let mut wait = DISCOVERY_BACKOFF_BASE;
            loop {
                match discover(http, base, &config.allowed_client_uri_origins).await {
                    Ok(found) => {
                        let endpoint = found.registration;
                        tracing::info!(%endpoint, "discovered the registration endpoint");
                        return Ok((endpoint, true, found.token));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?wait, "discovery failed; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(DISCOVERY_BACKOFF_MAX);
                    }
                }
            }
        }
    }
}

/// Discovers a discovered registration endpoint again every `every`, so a
/// server that moves it needs no restart of its sidecars. A failed refresh
/// keeps the endpoint in use; the same checks as at start apply.
pub(super) struct Refresh {
    pub(super) http: UpstreamHttp,
    pub(super) issuer: url::Url,
    pub(super) allowed: Vec<url::Origin>,
    pub(super) endpoint: RegistrationEndpoint,
    pub(super) every: std::time::Duration,
}

impl Refresh {
    pub(super) async fn run(self) {
        loop {
            tokio::time::sleep(self.every).await;
            match discover(&self.http, &self.issuer, &self.allowed).await {
                Ok(found) => {
                    let shown = found.registration.to_string();
                    if self.endpoint.set(found.registration) {
                        tracing::info!(endpoint = %shown, "the registration endpoint moved");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "discovery refresh failed; keeping the endpoint in use");
                }
            }
        }
    }
}
