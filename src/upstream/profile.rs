//! Upstream profiles: which routes a server has, and where management calls go.
//!
//! - `sharkauth`: the six routes under the base URL (rotations included); with
//!   `use_client_uri`, management calls go to the stored
//!   `registration_client_uri` instead (off by default: SharkAuth's issuer is
//!   often a public address the sidecar cannot reach).
//! - `rfc7592`: register at the registration endpoint (configured or
//!   discovered); manage at the `registration_client_uri` the server returned
//!   (RFC 7592 section 3), or `<registration endpoint>/<client id>` when none is
//!   stored; no rotation extensions.
//!
//! A `registration_client_uri` is used only when its origin is the upstream's
//! or on the allow-list, and only when it has neither query nor fragment: a
//! server cannot pull a registration access token to another host, nor turn a
//! rotation into a delete by a suffix that lands in a query or fragment.
//!
//! What proves that the server rejected a registration access token (the only
//! answer after which a stored token is forgotten), per profile:
//!
//! | profile | proof |
//! |---|---|
//! | both | HTTP 401 with a JSON `error` of `invalid_token`, or with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750) |
//! | `rfc7592` | also HTTP 400 with a JSON `error` of `access_denied` (Authlib's answer to a bad token) |
//!
//! Anything else (an HTML 401 from an ingress or WAF, `invalid_client`, a
//! 403) proves nothing about the token, and the stored entry stays as it was.

use std::sync::{Arc, RwLock};

use url::{Origin, Url};

use super::route::{Route, method, route_for};
use crate::dcr::{
    Capabilities, ClientRef, DcrCall, DcrError, LossProof, Place, SecretRotation, UpstreamFailure,
};

/// How the upstream lays out its registration API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// SharkAuth's routes and rotation extensions.
    SharkAuth {
        /// Manage at the stored `registration_client_uri` rather than the base URL.
        use_client_uri: bool,
    },
    /// Any RFC 7591/7592 server.
    Rfc7592,
}

/// How long SharkAuth keeps accepting a secret after rotating it (only the
/// last previous one: a second rotation ends the first one's grace).
const SHARKAUTH_SECRET_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

impl Profile {
    /// What a server of this profile can do. SharkAuth rotates secrets with
    /// its own call, never on a read or an update, keeps the previous secret
    /// an hour, and proves a loss by its text; a generic RFC 7592 server may
    /// rotate on read or update, is rotated by an update, keeps no previous
    /// secret that is known, and proves a loss by 404 or 410.
    pub fn capabilities(self) -> Capabilities {
        match self {
            Self::SharkAuth { .. } => Capabilities {
                secret_rotation: SecretRotation::Call,
                reads_may_rotate: false,
                secret_grace: Some(SHARKAUTH_SECRET_GRACE),
                loss_proof: LossProof::NotFoundText,
                // Unknown and extension metadata, jwks included, are
                // silently dropped (sharkauth-dcr.md).
                keeps_jwks: false,
            },
            Self::Rfc7592 => Capabilities {
                secret_rotation: SecretRotation::Update,
                reads_may_rotate: true,
                secret_grace: None,
                loss_proof: LossProof::GoneStatus,
                keeps_jwks: true,
            },
        }
    }

    /// Whether `f`, the answer to a request that carried a registration access
    /// token, proves the server rejected that token (the table above).
    pub fn proves_token_rejected(self, f: &UpstreamFailure) -> bool {
        let code = |c: &str| f.json_body && f.error.as_deref() == Some(c);
        let invalid_token = f.status == 401
            && (code("invalid_token") || f.bearer_error.as_deref() == Some("invalid_token"));
        match self {
            Self::SharkAuth { .. } => invalid_token,
            Self::Rfc7592 => invalid_token || (f.status == 400 && code("access_denied")),
        }
    }
}

/// Where the upstream's endpoints are.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The configured base (issuer) URL.
    pub base: Url,
    /// The registration endpoint (`POST` registers); replaced when a
    /// periodic re-discovery finds it moved.
    pub registration: RegistrationEndpoint,
    /// Origins besides the base's and the registration endpoint's that a
    /// `registration_client_uri` may use.
    pub allowed_origins: Vec<Origin>,
    /// The token endpoint discovery found (`rfc7592`); SharkAuth's is its
    /// route under the base URL.
    pub token: Option<Url>,
}

/// The registration endpoint, shared by the transport and the discovery
/// refresh, which may replace it while the gateway runs.
#[derive(Clone, Debug)]
pub struct RegistrationEndpoint(Arc<RwLock<Url>>);

impl RegistrationEndpoint {
    /// An endpoint at `url`.
    pub fn new(url: Url) -> Self {
        Self(Arc::new(RwLock::new(url)))
    }

    /// The current endpoint.
    pub fn get(&self) -> Url {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current endpoint's origin, without copying the URL.
    pub fn origin(&self) -> Origin {
        self.0.read().unwrap_or_else(|e| e.into_inner()).origin()
    }

    /// Replaces the endpoint; `true` when it changed.
    pub fn set(&self, url: Url) -> bool {
        let mut current = self.0.write().unwrap_or_else(|e| e.into_inner());
        let changed = *current != url;
        *current = url;
        changed
    }
}

impl Endpoints {
    /// `uri` parsed, if its origin is allowed; the RAT may be sent there.
    fn checked(&self, uri: &str) -> Result<Url, DcrError> {
        let url =
            Url::parse(uri).map_err(|_| DcrError::ForeignClientUri("it is not a URL".into()))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(DcrError::ForeignClientUri(
                "it has a query or fragment, so no path can be appended to it safely".into(),
            ));
        }
        if url.cannot_be_a_base() {
            return Err(DcrError::ForeignClientUri("it cannot carry a path".into()));
        }
        let origin = url.origin();
        let allowed = origin == self.base.origin()
            || origin == self.registration.origin()
            || self.allowed_origins.contains(&origin);
        match allowed {
            true => Ok(url),
            false => Err(DcrError::ForeignClientUri(format!(
                "its origin {} is neither the upstream's nor on --allowed-client-uri-origins",
                origin.ascii_serialization()
            ))),
        }
    }

    /// The stored `registration_client_uri` of `target`, or the conventional
    /// `<registration endpoint>/<client id>`.
    fn management_url(&self, target: &ClientRef) -> Result<Url, DcrError> {
        match target
            .registration_client_uri
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            Some(uri) => self.checked(uri),
            None => {
                let mut url = self.registration.get();
                url.path_segments_mut()
                    .map_err(|_| {
                        DcrError::invalid(
                            "client_id",
                            "the registration endpoint cannot carry a path",
                        )
                    })?
                    .pop_if_empty()
                    .push(&target.client_id);
                Ok(url)
            }
        }
    }
}

/// Builds the route for `call` under `profile` from the operation table:
/// its method, and its path under SharkAuth's base URL, or at the
/// registration endpoint or the client's configuration endpoint.
pub fn route(profile: Profile, endpoints: &Endpoints, call: &DcrCall) -> Result<Route, DcrError> {
    let spec = call.operation().spec();
    let url = match (profile, spec.path.place, call.target()) {
        (
            Profile::SharkAuth {
                use_client_uri: false,
            },
            _,
            _,
        )
        | (Profile::SharkAuth { .. }, Place::Registration, _) => {
            return route_for(&endpoints.base, call);
        }
        (Profile::Rfc7592, _, _) if !spec.path.in_rfc7592 => {
            return Err(DcrError::Unsupported(
                "the rfc7592 upstream profile has no secret or registration-token rotation \
                 (RFC 7592 servers may rotate on update instead)",
            ));
        }
        (Profile::Rfc7592, Place::Registration, _) => endpoints.registration.get(),
        (Profile::SharkAuth { .. }, Place::Token, _) => return route_for(&endpoints.base, call),
        (Profile::Rfc7592, Place::Token, _) => {
            endpoints.token.clone().ok_or(DcrError::Unsupported(
                "no token endpoint is known: the rfc7592 profile learns it by discovery \
                 (leave --registration-endpoint unset so the server's metadata is read)",
            ))?
        }
        (_, Place::Client { suffix }, Some(target)) => {
            let mut url = endpoints.management_url(target)?;
            if let Some(suffix) = suffix {
                // By path segment, never by string: `checked` made sure the
                // URI has no query or fragment the suffix could land in.
                url.path_segments_mut()
                    .map_err(|_| DcrError::ForeignClientUri("it cannot carry a path".into()))?
                    .pop_if_empty()
                    .push(suffix);
            }
            url
        }
        (_, Place::Client { .. }, None) => {
            return Err(DcrError::Internal(
                "the operation table routes a call that names no client to a client",
            ));
        }
    };
    Ok(Route {
        method: method(spec.method),
        url,
        template: spec.path.at_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            base: Url::parse("http://127.0.0.1:9000").unwrap(),
            registration: RegistrationEndpoint::new(
                Url::parse("http://127.0.0.1:9000/reg").unwrap(),
            ),
            allowed_origins: vec![Url::parse("https://mgmt.example").unwrap().origin()],
            token: None,
        }
    }

    fn get(uri: Option<&str>) -> DcrCall {
        DcrCall::Get(ClientRef {
            client_id: "a/b".into(),
            registration_access_token: None,
            registration_client_uri: uri.map(Into::into),
        })
    }

    #[test]
    fn generic_profile_uses_the_returned_uri_only_on_allowed_origins() {
        let e = endpoints();
        let r = route(
            Profile::Rfc7592,
            &e,
            &get(Some("http://127.0.0.1:9000/reg/xyz")),
        )
        .unwrap();
        assert_eq!(r.url.as_str(), "http://127.0.0.1:9000/reg/xyz");
        let r = route(Profile::Rfc7592, &e, &get(Some("https://mgmt.example/c/1"))).unwrap();
        assert_eq!(r.url.host_str(), Some("mgmt.example"));
        let err = route(
            Profile::Rfc7592,
            &e,
            &get(Some("http://127.0.0.1:9001/steal")),
        )
        .unwrap_err();
        assert!(matches!(err, DcrError::ForeignClientUri(_)), "{err}");
        let r = route(Profile::Rfc7592, &e, &get(None)).unwrap();
        assert_eq!(r.url.path(), "/reg/a%2Fb");
        let rotate = DcrCall::RotateToken(ClientRef {
            client_id: "c".into(),
            registration_access_token: None,
            registration_client_uri: None,
        });
        assert!(matches!(
            route(Profile::Rfc7592, &e, &rotate),
            Err(DcrError::Unsupported(_))
        ));
    }

    #[test]
    fn sharkauth_follows_the_client_uri_only_when_asked() {
        let e = endpoints();
        let call = get(Some("http://127.0.0.1:9000/oauth/register/a%2Fb"));
        let r = route(
            Profile::SharkAuth {
                use_client_uri: false,
            },
            &e,
            &call,
        )
        .unwrap();
        assert_eq!(r.url.path(), "/oauth/register/a%2Fb");
        let call = get(Some("http://127.0.0.1:9001/oauth/register/x"));
        let err = route(
            Profile::SharkAuth {
                use_client_uri: true,
            },
            &e,
            &call,
        )
        .unwrap_err();
        assert!(matches!(err, DcrError::ForeignClientUri(_)));
    }
}
