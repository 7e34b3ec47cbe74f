//! Finding the registration endpoint from an issuer URL: RFC 8414
//! authorization server metadata, falling back to OpenID Connect discovery.

use serde_json::Value;
use url::Url;

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

/// The `registration_endpoint` the issuer advertises.
pub async fn discover(http: &reqwest::Client, issuer: &Url) -> Result<Url, String> {
    let mut tried = Vec::new();
    for url in candidates(issuer) {
        match fetch(http, &url).await {
            Ok(endpoint) => return Ok(endpoint),
            Err(e) => tried.push(format!("{url}: {e}")),
        }
    }
    Err(format!(
        "no registration_endpoint discovered ({})",
        tried.join("; ")
    ))
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Url, String> {
    let resp = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if body.len() > MAX_METADATA_BYTES {
        return Err("metadata too large".into());
    }
    let doc: Value =
        serde_json::from_slice(&body).map_err(|_| "metadata is not JSON".to_owned())?;
    let endpoint = doc
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .ok_or("no registration_endpoint")?;
    let endpoint = Url::parse(endpoint).map_err(|e| format!("registration_endpoint: {e}"))?;
    match endpoint.scheme() {
        "http" | "https" => Ok(endpoint),
        _ => Err("registration_endpoint is not http(s)".into()),
    }
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
