//! Finding the registration endpoint from an issuer URL: RFC 8414
//! authorization server metadata, falling back to OpenID Connect discovery.

use http::Request;
use http::header::ACCEPT;
use serde_json::Value;
use url::{Origin, Url};

use super::failure::transport_error;
use super::http::UpstreamHttp;

/// Largest metadata document read.
const MAX_METADATA_BYTES: usize = 256 * 1024;

/// The metadata URLs to try for `issuer`, in order: RFC 8414 (the well-known
/// segment inserted before the issuer's path), then OpenID Connect (appended).
fn candidates(issuer: &Url) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    let root = issuer.as_str().trim_end_matches('/');
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{root}/.well-known/openid-configuration"),
    ]
}

/// Why discovery found no usable registration endpoint. Server text never
/// appears: only statuses, and what was wrong with the document.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No candidate URL gave a usable document; one reason per URL tried.
    #[error("no registration_endpoint discovered ({})", .0.join("; "))]
    NotFound(Vec<String>),
}

/// What discovery found.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// The registration endpoint.
    pub registration: Url,
    /// The token endpoint, when the document names one on an origin the
    /// registration endpoint could be on (credentials files name it).
    pub token: Option<Url>,
}

/// The `registration_endpoint` the issuer advertises, fetched through the
/// upstream's one HTTP client (its CA roots, client certificate, https-only
/// and no proxy), with the body capped while it is read. The document's
/// `issuer` must be the configured one (RFC 8414 section 3.3), and the
/// endpoint must be on the issuer's origin or one of `allowed`: a document
/// that names another host would send the initial access token and every
/// registration access token there.
pub async fn discover(
    http: &UpstreamHttp,
    issuer: &Url,
    allowed: &[Origin],
) -> Result<Discovered, DiscoveryError> {
    let mut tried = Vec::new();
    for url in candidates(issuer) {
        match fetch(http, &url, issuer, allowed).await {
            Ok(endpoint) => return Ok(endpoint),
            Err(e) => tried.push(format!("{url}: {e}")),
        }
    }
    Err(DiscoveryError::NotFound(tried))
}

async fn fetch(
    http: &UpstreamHttp,
    url: &str,
    issuer: &Url,
    allowed: &[Origin],
) -> Result<Discovered, String> {
    let timeout = http.request_timeout();
    let request = Request::get(url)
        .header(ACCEPT, "application/json")
        .body(Default::default())
        .map_err(|_| "not a URL the HTTP client can send".to_owned())?;
    let mut resp = http
        .send(request)
        .await
        .map_err(|e| transport_error(e, timeout).log_label())?;
    if !resp.status.is_success() {
        return Err(format!("HTTP {}", resp.status.as_u16()));
    }
    let body = resp
        .read(MAX_METADATA_BYTES)
        .await
        .map_err(|e| transport_error(e, timeout).to_string())?;
    let doc: Value =
        serde_json::from_slice(&body).map_err(|_| "metadata is not JSON".to_owned())?;
    let named = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if named.trim_end_matches('/') != issuer.as_str().trim_end_matches('/') {
        return Err("the document's issuer is not the configured --upstream".into());
    }
    let registration = endpoint(&doc, "registration_endpoint", issuer, allowed)?
        .ok_or("no registration_endpoint")?;
    let token = endpoint(&doc, "token_endpoint", issuer, allowed).unwrap_or_else(|e| {
        tracing::warn!(reason = e, "ignoring the discovered token_endpoint");
        None
    });
    Ok(Discovered {
        registration,
        token,
    })
}

/// The URL under `member` in the document, if any: http(s), on the issuer's
/// origin or one of `allowed`.
fn endpoint(
    doc: &Value,
    member: &str,
    issuer: &Url,
    allowed: &[Origin],
) -> Result<Option<Url>, String> {
    let Some(text) = doc.get(member).and_then(Value::as_str) else {
        return Ok(None);
    };
    let endpoint = Url::parse(text).map_err(|e| format!("{member}: {e}"))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(format!("{member} is not http(s)"));
    }
    let origin = endpoint.origin();
    if origin != issuer.origin() && !allowed.contains(&origin) {
        return Err(format!(
            "{member} is on {}, neither the issuer's origin nor on --allowed-client-uri-origins",
            origin.ascii_serialization()
        ));
    }
    Ok(Some(endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_inserts_and_oidc_appends() {
        let c = candidates(&Url::parse("https://auth.example/tenant1/").unwrap());
        assert_eq!(
            c[0],
            "https://auth.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            c[1],
            "https://auth.example/tenant1/.well-known/openid-configuration"
        );
    }
}
