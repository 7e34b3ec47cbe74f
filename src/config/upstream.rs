//! The upstream section: which authorization server, how it lays out its
//! API, and how the one HTTP client reaches it.

use std::time::Duration;

use url::Url;

use super::check::{bytes, count, duration, invalid, upstream_url};
use super::{
    ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DISCOVERY_REFRESH_INTERVAL,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_UPSTREAM_HTTP2, DEFAULT_UPSTREAM_POOL_IDLE_TIMEOUT,
    DEFAULT_UPSTREAM_POOL_MAX_IDLE, DEFAULT_UPSTREAM_TIMEOUT, MIN_DURATION, UpstreamChoice,
};
use crate::upstream::{Profile, UpstreamConfig};

/// The upstream settings as given (see `RawConfig` for each one's meaning).
pub(super) struct RawUpstream {
    pub(super) upstream: Option<String>,
    pub(super) dev_upstream: Option<bool>,
    pub(super) require_upstream_tls: Option<bool>,
    pub(super) registration_endpoint: Option<String>,
    pub(super) upstream_profile: Option<String>,
    pub(super) sharkauth_use_client_uri: Option<bool>,
    pub(super) discovery_refresh_interval: Option<String>,
    pub(super) allowed_client_uri_origins: Option<String>,
    pub(super) upstream_timeout: Option<String>,
    pub(super) connect_timeout: Option<String>,
    pub(super) upstream_http2: Option<bool>,
    pub(super) upstream_pool_max_idle: Option<usize>,
    pub(super) upstream_pool_idle_timeout: Option<String>,
    pub(super) max_response_bytes: Option<usize>,
    pub(super) upstream_ca_file: Option<String>,
    pub(super) upstream_client_cert: Option<String>,
    pub(super) upstream_client_key: Option<String>,
}

/// Whether this build has the stand-in server (the default `dev-upstream`
/// feature); the release image is built without it.
const DEV_UPSTREAM_BUILT: bool = cfg!(feature = "dev-upstream");

/// The upstream: `--upstream`'s URL or the dev upstream, exactly one of them.
/// Without the dev upstream in the build (`built`), asking for it is a start
/// error naming the flag, never a silent fallback.
fn choice(upstream: Option<String>, dev: bool, built: bool) -> Result<UpstreamChoice, ConfigError> {
    match (upstream, dev) {
        (Some(_), true) => Err(invalid(
            "--upstream",
            "give --upstream or --dev-upstream, not both",
        )),
        (None, false) => Err(invalid(
            "--upstream",
            "required: the authorization server's base URL (or --dev-upstream for the built-in dev server)",
        )),
        (None, true) if !built => Err(invalid(
            "--dev-upstream",
            "this build has no dev upstream (built without the `dev-upstream` feature, \
             as the release image is): give --upstream",
        )),
        (None, true) => Ok(UpstreamChoice::Dev),
        (Some(url), false) => Ok(UpstreamChoice::Url(upstream_url(&url)?)),
    }
}

/// The upstream settings, checked.
pub(super) struct UpstreamSection {
    pub(super) upstream: UpstreamChoice,
    pub(super) http: UpstreamConfig,
    pub(super) profile: Profile,
    pub(super) registration_endpoint: Option<Url>,
    pub(super) discovery_refresh_interval: Duration,
    pub(super) allowed_client_uri_origins: Vec<url::Origin>,
}

impl RawUpstream {
    pub(super) fn validate(self) -> Result<UpstreamSection, ConfigError> {
        let upstream = choice(
            self.upstream,
            self.dev_upstream.unwrap_or(false),
            DEV_UPSTREAM_BUILT,
        )?;
        let require_tls = self.require_upstream_tls.unwrap_or(false);
        if require_tls {
            let plain = match &upstream {
                UpstreamChoice::Dev => true,
                UpstreamChoice::Url(url) => url.scheme() != "https",
            };
            let plain_endpoint = self
                .registration_endpoint
                .as_deref()
                .is_some_and(|u| !u.starts_with("https://"));
            if plain || plain_endpoint {
                return Err(invalid(
                    "--require-upstream-tls",
                    "the upstream and registration endpoint must be https:// URLs (the dev upstream is plain HTTP)",
                ));
            }
        }
        let (extra_roots, identity) = super::tls::upstream_tls(
            self.upstream_ca_file,
            self.upstream_client_cert,
            self.upstream_client_key,
        )?;
        let http = UpstreamConfig {
            request_timeout: duration(
                "--upstream-timeout",
                self.upstream_timeout,
                DEFAULT_UPSTREAM_TIMEOUT,
                MIN_DURATION,
            )?,
            connect_timeout: duration(
                "--connect-timeout",
                self.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
                MIN_DURATION,
            )?,
            http2: self.upstream_http2.unwrap_or(DEFAULT_UPSTREAM_HTTP2),
            pool_max_idle: count(
                "--upstream-pool-max-idle",
                self.upstream_pool_max_idle,
                DEFAULT_UPSTREAM_POOL_MAX_IDLE,
                0..=4096,
            )?,
            pool_idle_timeout: duration(
                "--upstream-pool-idle-timeout",
                self.upstream_pool_idle_timeout,
                DEFAULT_UPSTREAM_POOL_IDLE_TIMEOUT,
                MIN_DURATION,
            )?,
            max_response_bytes: bytes(
                "--max-response-bytes",
                self.max_response_bytes,
                DEFAULT_MAX_RESPONSE_BYTES,
            )?,
            extra_roots,
            identity,
            require_tls,
        };
        Ok(UpstreamSection {
            upstream,
            http,
            profile: profile(self.upstream_profile, self.sharkauth_use_client_uri)?,
            registration_endpoint: self
                .registration_endpoint
                .map(|u| {
                    upstream_url(&u).map_err(|_| {
                        invalid(
                            "--registration-endpoint",
                            "must be an http(s) URL without credentials, query or fragment",
                        )
                    })
                })
                .transpose()?,
            discovery_refresh_interval: duration(
                "--discovery-refresh-interval",
                self.discovery_refresh_interval,
                DEFAULT_DISCOVERY_REFRESH_INTERVAL,
                Duration::from_secs(1),
            )?,
            allowed_client_uri_origins: origins(self.allowed_client_uri_origins.as_deref())?,
        })
    }
}

/// `--upstream-profile`, with SharkAuth's `--sharkauth-use-client-uri`.
fn profile(name: Option<String>, use_client_uri: Option<bool>) -> Result<Profile, ConfigError> {
    match name.as_deref().unwrap_or("sharkauth") {
        "sharkauth" => Ok(Profile::SharkAuth {
            use_client_uri: use_client_uri.unwrap_or(false),
        }),
        "rfc7592" => Ok(Profile::Rfc7592),
        other => Err(invalid(
            "--upstream-profile",
            format!("{other:?} is not sharkauth or rfc7592"),
        )),
    }
}

/// The allowed origins, from a comma-separated list of URLs.
fn origins(list: Option<&str>) -> Result<Vec<url::Origin>, ConfigError> {
    let items = list
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty());
    items
        .map(|item| {
            let url = Url::parse(item).map_err(|_| {
                invalid(
                    "--allowed-client-uri-origins",
                    format!("{item:?} is not a URL"),
                )
            })?;
            match url.scheme() {
                "http" | "https" => Ok(url.origin()),
                _ => Err(invalid(
                    "--allowed-client-uri-origins",
                    format!("{item:?} is not http(s)"),
                )),
            }
        })
        .collect()
}

impl super::RawConfig {
    /// Takes the upstream settings out, for checking.
    pub(super) fn take_upstream(&mut self) -> RawUpstream {
        RawUpstream {
            upstream: self.upstream.take(),
            dev_upstream: self.dev_upstream.take(),
            require_upstream_tls: self.require_upstream_tls.take(),
            registration_endpoint: self.registration_endpoint.take(),
            upstream_profile: self.upstream_profile.take(),
            sharkauth_use_client_uri: self.sharkauth_use_client_uri.take(),
            discovery_refresh_interval: self.discovery_refresh_interval.take(),
            allowed_client_uri_origins: self.allowed_client_uri_origins.take(),
            upstream_timeout: self.upstream_timeout.take(),
            connect_timeout: self.connect_timeout.take(),
            upstream_http2: self.upstream_http2.take(),
            upstream_pool_max_idle: self.upstream_pool_max_idle.take(),
            upstream_pool_idle_timeout: self.upstream_pool_idle_timeout.take(),
            max_response_bytes: self.max_response_bytes.take(),
            upstream_ca_file: self.upstream_ca_file.take(),
            upstream_client_cert: self.upstream_client_cert.take(),
            upstream_client_key: self.upstream_client_key.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_upstream_is_a_start_error_in_a_build_without_it() {
        let err = choice(None, true, false).unwrap_err().to_string();
        assert!(err.starts_with("--dev-upstream"), "{err}");
        assert!(err.contains("give --upstream"), "{err}");
        assert!(matches!(choice(None, true, true), Ok(UpstreamChoice::Dev)));
        // A real upstream is chosen the same either way.
        for built in [false, true] {
            assert!(matches!(
                choice(Some("https://auth.invalid".into()), false, built),
                Ok(UpstreamChoice::Url(_))
            ));
            let both = choice(Some("https://auth.invalid".into()), true, built);
            assert!(both.unwrap_err().to_string().starts_with("--upstream"));
        }
    }
}
