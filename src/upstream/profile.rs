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
//! or on the allow-list: a server cannot pull a registration access token to
//! another host.

use reqwest::Method;
use url::{Origin, Url};

use super::route::{Route, client_segment, route_for};
use crate::dcr::{ClientRef, DcrCall, DcrError};

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

/// Where the upstream's endpoints are.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The configured base (issuer) URL.
    pub base: Url,
    /// The registration endpoint (`POST` registers).
    pub registration: Url,
    /// Origins besides the base's and the registration endpoint's that a
    /// `registration_client_uri` may use.
    pub allowed_origins: Vec<Origin>,
}

impl Endpoints {
    /// `uri` parsed, if its origin is allowed; the RAT may be sent there.
    fn checked(&self, uri: &str) -> Result<Url, DcrError> {
        let url = Url::parse(uri)
            .map_err(|_| DcrError::ForeignClientUri(format!("{uri:?} is not a URL")))?;
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
                let root = self.registration.as_str().trim_end_matches('/');
                Url::parse(&format!("{root}/{}", client_segment(&target.client_id))).map_err(|e| {
                    DcrError::invalid("client_id", format!("does not form a valid URL: {e}"))
                })
            }
        }
    }
}

/// Builds the route for `call` under `profile`.
pub fn route(profile: Profile, endpoints: &Endpoints, call: &DcrCall) -> Result<Route, DcrError> {
    let target = match (profile, call.target()) {
        (
            Profile::SharkAuth {
                use_client_uri: false,
            },
            _,
        )
        | (Profile::SharkAuth { .. }, None) => {
            return route_for(&endpoints.base, call);
        }
        (Profile::Rfc7592, None) => {
            let url = endpoints.registration.clone();
            return Ok(Route {
                method: Method::POST,
                url,
                template: "{registration_endpoint}",
            });
        }
        (_, Some(target)) => target,
    };
    let (method, suffix) = match (profile, call) {
        (Profile::Rfc7592, DcrCall::RotateSecret(_) | DcrCall::RotateToken(_)) => {
            return Err(DcrError::Unsupported(
                "the rfc7592 upstream profile has no secret or registration-token rotation \
                 (RFC 7592 servers may rotate on update instead)",
            ));
        }
        (_, DcrCall::Get(_)) => (Method::GET, ""),
        (_, DcrCall::Update { .. }) => (Method::PUT, ""),
        (_, DcrCall::Delete(_)) => (Method::DELETE, ""),
        (_, DcrCall::RotateSecret(_)) => (Method::POST, "/secret"),
        (_, DcrCall::RotateToken(_)) => (Method::DELETE, "/registration-token"),
        (_, DcrCall::Register { .. }) => return route_for(&endpoints.base, call),
    };
    let mut url = endpoints.management_url(target)?;
    if !suffix.is_empty() {
        let joined = format!("{}{suffix}", url.as_str().trim_end_matches('/'));
        url = Url::parse(&joined).map_err(|e| DcrError::ForeignClientUri(e.to_string()))?;
    }
    let template = match suffix {
        "/secret" => "{registration_client_uri}/secret",
        "/registration-token" => "{registration_client_uri}/registration-token",
        _ => "{registration_client_uri}",
    };
    Ok(Route {
        method,
        url,
        template,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            base: Url::parse("http://127.0.0.1:9000").unwrap(),
            registration: Url::parse("http://127.0.0.1:9000/reg").unwrap(),
            allowed_origins: vec![Url::parse("https://mgmt.example").unwrap().origin()],
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
