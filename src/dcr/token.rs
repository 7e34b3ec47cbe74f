//! What a token request carries and what it answers: the client
//! credentials grant (RFC 6749 §4.4) for a managed client, the service's
//! way to an access token without ever holding the client's secret or key.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::DcrError;

/// Makes a fresh client assertion (RFC 7523 `private_key_jwt`) for each
/// attempt: signed by the client's private key, which never leaves its
/// holder.
pub trait AssertionSigner: Send + Sync + 'static {
    /// A signed assertion for `client_id` (`iss` and `sub`) to present at
    /// `audience` (the token endpoint), with a unique `jti` and a short
    /// expiry.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<SecretString, DcrError>;
}

/// How a client authenticates at the token endpoint (its registered
/// `token_endpoint_auth_method`).
#[derive(Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the id and the secret.
    SecretBasic(SecretString),
    /// `client_secret_post`: the id and the secret in the form.
    SecretPost(SecretString),
    /// `private_key_jwt`: a signed assertion in the form, made per attempt.
    PrivateKeyJwt(Arc<dyn AssertionSigner>),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SecretBasic(_) => "SecretBasic([REDACTED])",
            Self::SecretPost(_) => "SecretPost([REDACTED])",
            Self::PrivateKeyJwt(_) => "PrivateKeyJwt([REDACTED])",
        })
    }
}

/// A client credentials grant for one client.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The client asking.
    pub client_id: String,
    /// How it authenticates.
    pub auth: ClientAuth,
    /// The scopes asked for; empty asks for none (the server's default).
    pub scopes: Vec<String>,
    /// The resources the token is for (RFC 8707), each an absolute URI.
    pub resources: Vec<String>,
}

/// An access token, as the token endpoint answered it.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The token; shown to the caller that asked, never logged.
    pub token: SecretString,
    /// Its type (`Bearer`).
    pub token_type: String,
    /// How long it lives from when it was issued, when the server said.
    pub expires_in: Option<Duration>,
    /// The scope granted, when the server said (else the one asked for).
    pub scope: Option<String>,
}
