//! SharkAuth's six registration routes, and the one safe way to put a client id
//! into a URL.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use url::Url;

use crate::dcr::{DcrCall, DcrError};

/// Bytes escaped in a client-id path segment: everything but RFC 3986's
/// unreserved characters, so `/`, `?`, `#`, `%` and spaces can never change the
/// route. (The ids `.` and `..` are refused before they get here.)
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Where and how one request is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The full URL.
    pub url: Url,
    /// The route with the client id left as a placeholder, for logs and traces.
    pub template: &'static str,
}

/// Builds the SharkAuth route for `req` under `base`, the server's base URL.
pub fn route_for(base: &Url, req: &DcrCall) -> Result<Route, DcrError> {
    let root = base.as_str().trim_end_matches('/');
    let (method, suffix, template) = match req {
        DcrCall::Register { .. } => {
            let url = parse(&format!("{root}/oauth/register"))?;
            let template = "/oauth/register";
            return Ok(Route {
                method: Method::POST,
                url,
                template,
            });
        }
        DcrCall::Get(_) => (Method::GET, "", "/oauth/register/{client_id}"),
        DcrCall::Update { .. } => (Method::PUT, "", "/oauth/register/{client_id}"),
        DcrCall::Delete(_) => (Method::DELETE, "", "/oauth/register/{client_id}"),
        DcrCall::RotateSecret(_) => (
            Method::POST,
            "/secret",
            "/oauth/register/{client_id}/secret",
        ),
        DcrCall::RotateToken(_) => (
            Method::DELETE,
            "/registration-token",
            "/oauth/register/{client_id}/registration-token",
        ),
    };
    let id = req
        .target()
        .map(|t| t.client_id.as_str())
        .unwrap_or_default();
    let segment = client_segment(id);
    let url = parse(&format!("{root}/oauth/register/{segment}{suffix}"))?;
    Ok(Route {
        method,
        url,
        template,
    })
}

/// A client id as one percent-encoded path segment.
pub fn client_segment(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

fn parse(s: &str) -> Result<Url, DcrError> {
    Url::parse(s)
        .map_err(|e| DcrError::invalid("client_id", format!("does not form a valid URL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcr::ClientRef;

    fn get(id: &str) -> DcrCall {
        DcrCall::Get(ClientRef {
            client_id: id.into(),
            registration_access_token: None,
            registration_client_uri: None,
        })
    }

    #[test]
    fn hostile_ids_stay_one_segment() {
        let base = Url::parse("http://127.0.0.1:9/auth/").unwrap();
        for (id, path) in [
            ("a/b", "/auth/oauth/register/a%2Fb"),
            ("../x", "/auth/oauth/register/..%2Fx"),
            ("50%", "/auth/oauth/register/50%25"),
            ("a b?c#d", "/auth/oauth/register/a%20b%3Fc%23d"),
            ("é", "/auth/oauth/register/%C3%A9"),
        ] {
            let route = route_for(&base, &get(id)).unwrap();
            assert_eq!(route.url.path(), path, "id {id:?}");
            assert_eq!(route.url.query(), None);
        }
    }

    #[test]
    fn rotations_use_sharkauth_verbs() {
        let base = Url::parse("http://127.0.0.1:9").unwrap();
        let t = ClientRef {
            client_id: "c".into(),
            registration_access_token: None,
            registration_client_uri: None,
        };
        let secret = route_for(&base, &DcrCall::RotateSecret(t.clone())).unwrap();
        assert_eq!(
            (secret.method, secret.url.path()),
            (Method::POST, "/oauth/register/c/secret")
        );
        let rat = route_for(&base, &DcrCall::RotateToken(t)).unwrap();
        assert_eq!(
            (rat.method, rat.url.path()),
            (Method::DELETE, "/oauth/register/c/registration-token")
        );
    }
}
