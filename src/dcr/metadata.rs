//! Client metadata and registered clients, as the domain sees them.

use secrecy::SecretString;
use serde_json::{Map, Value};

/// The metadata of an OAuth client (RFC 7591 section 2).
///
/// The typed fields are the members RFC 7591 names; `additional` keeps every other
/// member so that nothing a caller or a server sends is dropped by the gateway.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientMetadata {
    /// Human-readable client name.
    pub client_name: Option<String>,
    /// Redirection URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types; empty lets the server apply its default.
    pub grant_types: Vec<String>,
    /// Response types; empty lets the server apply its default.
    pub response_types: Vec<String>,
    /// Space-separated scope values.
    pub scope: Option<String>,
    /// Token endpoint authentication method.
    pub token_endpoint_auth_method: Option<String>,
    /// Home page URL.
    pub client_uri: Option<String>,
    /// Logo URL.
    pub logo_uri: Option<String>,
    /// Terms of service URL.
    pub tos_uri: Option<String>,
    /// Privacy policy URL.
    pub policy_uri: Option<String>,
    /// Contacts, usually e-mail addresses.
    pub contacts: Vec<String>,
    /// JWK Set URL.
    pub jwks_uri: Option<String>,
    /// JWK Set by value, a JSON object.
    pub jwks: Option<Map<String, Value>>,
    /// Software identifier.
    pub software_id: Option<String>,
    /// Software version.
    pub software_version: Option<String>,
    /// Signed software statement (a JWT).
    pub software_statement: Option<String>,
    /// Every other member, by JSON name.
    pub additional: Map<String, Value>,
}

impl ClientMetadata {
    /// The optional string members, by JSON name.
    pub fn strings(&self) -> [(&'static str, &Option<String>); 11] {
        [
            ("client_name", &self.client_name),
            ("scope", &self.scope),
            (
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            ),
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("tos_uri", &self.tos_uri),
            ("policy_uri", &self.policy_uri),
            ("jwks_uri", &self.jwks_uri),
            ("software_id", &self.software_id),
            ("software_version", &self.software_version),
            ("software_statement", &self.software_statement),
        ]
    }

    /// The list members, by JSON name.
    pub fn lists(&self) -> [(&'static str, &Vec<String>); 4] {
        [
            ("redirect_uris", &self.redirect_uris),
            ("grant_types", &self.grant_types),
            ("response_types", &self.response_types),
            ("contacts", &self.contacts),
        ]
    }
}

/// A registered client as the authorization server describes it.
///
/// `Debug` never shows the secret or the registration access token: both live in
/// [`SecretString`], whose `Debug` prints a placeholder.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// The issued client identifier.
    pub client_id: String,
    /// The client secret, when this response issued one.
    pub client_secret: Option<SecretString>,
    /// When the identifier was issued, in Unix seconds; `None` when unknown.
    pub client_id_issued_at: Option<i64>,
    /// When the secret expires, in Unix seconds; `None` means never (the RFC's 0).
    pub client_secret_expires_at: Option<i64>,
    /// The registration access token, when this response issued one.
    pub registration_access_token: Option<SecretString>,
    /// The client's configuration endpoint as returned; empty when absent.
    pub registration_client_uri: String,
    /// The metadata the server holds.
    pub metadata: ClientMetadata,
}
