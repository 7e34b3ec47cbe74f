//! SharkAuth's registration routes, read from the operation table, and the
//! one safe way to put a client id into a URL.

use http::Method;
use url::Url;

use crate::dcr::{CLIENT_ID_SEGMENT, DcrCall, DcrError, HttpMethod, Operation};

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

/// Builds the SharkAuth route for `req` under `base`, the server's base
/// URL, from the operation table: its method, and its path under the base
/// with the client's id in place of [`CLIENT_ID_SEGMENT`].
pub fn route_for(base: &Url, req: &DcrCall) -> Result<Route, DcrError> {
    let spec = req.operation().spec();
    let client_id = req.target().map(|t| t.client_id.as_str());
    let url = under_base(base, req.operation(), client_id)?;
    Ok(Route {
        method: method(spec.method),
        url,
        template: spec.path.under_base,
    })
}

/// SharkAuth's URL of `op` under `base` (its registration endpoint, its
/// token endpoint, or `client_id`'s routes), from the operation table.
pub fn under_base(base: &Url, op: Operation, client_id: Option<&str>) -> Result<Url, DcrError> {
    // Segments are appended to the already-parsed base URL, so the host is not
    // parsed again on every call; `push` percent-encodes `/`, `%`, `?`, `#` and
    // spaces, so an id is always exactly one segment.
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| DcrError::invalid("client_id", "the upstream URL cannot carry a path"))?;
        path.pop_if_empty();
        for segment in op
            .spec()
            .path
            .under_base
            .split('/')
            .filter(|s| !s.is_empty())
        {
            match segment {
                CLIENT_ID_SEGMENT => {
                    let id = client_id.ok_or(DcrError::Internal(
                        "the operation table routes a call that names no client to a client",
                    ))?;
                    path.push(id);
                }
                segment => {
                    path.push(segment);
                }
            }
        }
    }
    Ok(url)
}

/// The HTTP method the operation table names.
pub fn method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
    }
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
