//! What one attempt sends besides its route, as the operation table says:
//! the credential that authorises it (a bearer token, HTTP Basic, or the
//! client's credentials in the form) and its body (JSON metadata, or a
//! token request's form).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::dcr::{Authority, Body, ClientAuth, DcrCall, DcrError, DcrRequest, TokenRequest, json};

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The parts of a request that depend on its operation.
pub(super) struct Outgoing {
    /// The `Authorization` header, marked sensitive.
    pub authorization: Option<HeaderValue>,
    /// The body and its content type.
    pub body: Option<(&'static str, Vec<u8>)>,
    /// Every secret the request carries, to scrub from an error answer.
    pub secrets: Vec<SecretString>,
}

/// What `req` sends to `audience` (the URL it goes to, which a client
/// assertion names).
pub(super) fn outgoing(req: &DcrRequest, audience: &str) -> Result<Outgoing, DcrError> {
    let spec = req.operation().spec();
    let mut out = Outgoing {
        authorization: None,
        body: None,
        secrets: Vec::new(),
    };
    match spec.authority {
        Authority::InitialAccessToken => {
            if let Some(token) = req.call.initial_access_token() {
                out.bearer(token.clone())?;
            }
        }
        Authority::RegistrationAccessToken => {
            let target = req.target().ok_or(DcrError::Internal(
                "the operation table authorises a call that names no client by its token",
            ))?;
            let token =
                target
                    .registration_access_token
                    .clone()
                    .ok_or_else(|| DcrError::MissingToken {
                        client_id: target.client_id.clone(),
                    })?;
            out.bearer(token)?;
        }
        // Sent with the form, below.
        Authority::ClientCredentials => {}
    }
    out.body = match spec.body {
        Body::Empty => None,
        Body::Metadata | Body::MetadataWithClientId => {
            let metadata = req.call.metadata().ok_or(DcrError::Internal(
                "the operation table sends metadata the call does not have",
            ))?;
            let mut obj = json::metadata_to_json(metadata);
            if let (Body::MetadataWithClientId, Some(target)) = (spec.body, req.target()) {
                obj.insert("client_id".into(), target.client_id.clone().into());
            }
            let bytes = serde_json::to_vec(&Value::Object(obj))
                .map_err(|e| DcrError::invalid("metadata", e.to_string()))?;
            Some(("application/json", bytes))
        }
        Body::TokenForm => {
            let DcrCall::Token(token) = &req.call else {
                return Err(DcrError::Internal(
                    "the operation table sends a token form for a call that is no token request",
                ));
            };
            Some((
                "application/x-www-form-urlencoded",
                out.token_form(token, audience)?,
            ))
        }
    };
    Ok(out)
}

impl Outgoing {
    /// `Authorization: Bearer <token>`.
    fn bearer(&mut self, token: SecretString) -> Result<(), DcrError> {
        let value = format!("Bearer {}", token.expose_secret());
        self.authorization = Some(sensitive(value, "registration_access_token")?);
        self.secrets.push(token);
        Ok(())
    }

    /// The client credentials grant's form, with the client's credentials
    /// where its method puts them (HTTP Basic goes in the header).
    fn token_form(&mut self, token: &TokenRequest, audience: &str) -> Result<Vec<u8>, DcrError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if !token.scopes.is_empty() {
            form.append_pair("scope", &token.scopes.join(" "));
        }
        for resource in &token.resources {
            form.append_pair("resource", resource);
        }
        match &token.auth {
            ClientAuth::SecretBasic(secret) => {
                // RFC 6749 §2.3.1: each part form-encoded, then Basic.
                let pair = format!(
                    "{}:{}",
                    form_encoded(&token.client_id),
                    form_encoded(secret.expose_secret())
                );
                let value = format!("Basic {}", STANDARD.encode(pair));
                self.authorization = Some(sensitive(value, "client_secret")?);
                self.secrets.push(secret.clone());
            }
            ClientAuth::SecretPost(secret) => {
                form.append_pair("client_id", &token.client_id);
                form.append_pair("client_secret", secret.expose_secret());
                self.secrets.push(secret.clone());
            }
            ClientAuth::PrivateKeyJwt(signer) => {
                let assertion = signer.assertion(&token.client_id, audience)?;
                form.append_pair("client_id", &token.client_id);
                form.append_pair("client_assertion_type", JWT_BEARER);
                form.append_pair("client_assertion", assertion.expose_secret());
                self.secrets.push(assertion);
            }
        }
        Ok(form.finish().into_bytes())
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A header value marked sensitive, so the HTTP stack never logs or indexes
/// it; `field` names what did not fit in a header.
fn sensitive(value: String, field: &str) -> Result<HeaderValue, DcrError> {
    let mut value = HeaderValue::try_from(value)
        .map_err(|_| DcrError::invalid(field, "is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}
