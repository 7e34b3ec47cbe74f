//! `Debug` for the generated messages that carry secrets (see `build.rs`): the
//! secret fields print as `Some("[redacted]")` or `None`, never their value, so a
//! stray `{:?}` in a log line cannot leak a token.

use std::fmt;

use crate::pb::v1 as pb;

/// How a secret field shows in `Debug`: whether it is set, never what it is.
fn shown(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "[redacted]")
}

impl fmt::Debug for pb::Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("client_secret", &shown(&self.client_secret))
            .field("client_id_issued_at", &self.client_id_issued_at)
            .field("client_secret_expires_at", &self.client_secret_expires_at)
            .field(
                "registration_access_token",
                &shown(&self.registration_access_token),
            )
            .field("registration_client_uri", &self.registration_client_uri)
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl fmt::Debug for pb::RegisterClientRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterClientRequest")
            .field("metadata", &self.metadata)
            .field("initial_access_token", &shown(&self.initial_access_token))
            .finish()
    }
}

impl fmt::Debug for pb::UpdateClientRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateClientRequest")
            .field("client_id", &self.client_id)
            .field(
                "registration_access_token",
                &shown(&self.registration_access_token),
            )
            .field("metadata", &self.metadata)
            .field("update_mask", &self.update_mask)
            .finish()
    }
}

/// The four requests shaped `{ client_id, registration_access_token }`.
macro_rules! redacted_target_debug {
    ($($ty:ident),+) => {$(
        impl fmt::Debug for pb::$ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("client_id", &self.client_id)
                    .field("registration_access_token", &shown(&self.registration_access_token))
                    .finish()
            }
        }
    )+};
}

redacted_target_debug!(
    GetClientRequest,
    DeleteClientRequest,
    RotateClientSecretRequest,
    RotateRegistrationTokenRequest
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let client = pb::Client {
            client_id: "c1".into(),
            client_secret: Some("s3cr3t-value".into()),
            registration_access_token: Some("rat-value".into()),
            ..Default::default()
        };
        let reply = pb::RegisterClientResponse {
            client: Some(client),
        };
        let req = pb::GetClientRequest {
            client_id: "c1".into(),
            registration_access_token: Some("rat-value".into()),
        };
        let iat = pb::RegisterClientRequest {
            metadata: None,
            initial_access_token: Some("iat-value".into()),
        };
        for text in [format!("{reply:?}"), format!("{req:?}"), format!("{iat:?}")] {
            assert!(text.contains("[redacted]"), "{text}");
            for secret in ["s3cr3t-value", "rat-value", "iat-value"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}
