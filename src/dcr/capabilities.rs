//! What the authorization server can do, as one domain value: the upstream
//! builds it from its profile (`upstream::Profile::capabilities`), and the
//! layers, the edge and managed clients read it, so that none of them
//! branches on a profile.

use std::time::Duration;

use super::UpstreamFailure;

/// How a client's secret is rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretRotation {
    /// By a call of its own, RotateClientSecret (SharkAuth's extension).
    Call,
    /// By an update that sends the metadata again, on a server that issues
    /// a new secret there (RFC 7592 allows it; a server that does not
    /// cannot rotate).
    Update,
}

/// What answer proves the server no longer has a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossProof {
    /// 401 `invalid_token` with the description "client not found":
    /// SharkAuth has no 404, and its text is the only thing that tells a
    /// lost client from a bad token ("invalid registration access token").
    NotFoundText,
    /// 404 or 410: RFC 7592 answers an unknown client with 401 and revokes
    /// the token, which cannot be told from a bad token, so a 401 proves
    /// nothing there.
    GoneStatus,
}

impl LossProof {
    /// Whether `f`, the answer to a management call, proves the client gone.
    pub fn proves(self, f: &UpstreamFailure) -> bool {
        match self {
            Self::NotFoundText => {
                f.status == 401
                    && f.json_body
                    && f.error.as_deref() == Some("invalid_token")
                    && f.description
                        .as_deref()
                        .is_some_and(|d| d.trim().eq_ignore_ascii_case("client not found"))
            }
            Self::GoneStatus => matches!(f.status, 404 | 410),
        }
    }
}

/// What the authorization server can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// How a secret is rotated.
    pub secret_rotation: SecretRotation,
    /// Whether a read or an update may answer with a new registration
    /// access token or secret (RFC 7592 section 3 allows it), so that they
    /// too bring back a credential.
    pub reads_may_rotate: bool,
    /// How long the server keeps accepting the previous secret after a
    /// rotation; `None` when it keeps none, or none is known.
    pub secret_grace: Option<Duration>,
    /// What proves a client lost.
    pub loss_proof: LossProof,
    /// Whether the server keeps the `jwks` a client registers, so that the
    /// client may authenticate with a key (`private_key_jwt`).
    pub keeps_jwks: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, error: Option<&str>, description: Option<&str>) -> UpstreamFailure {
        UpstreamFailure {
            error: error.map(Into::into),
            description: description.map(Into::into),
            ..UpstreamFailure::with_status(status)
        }
    }

    #[test]
    fn only_each_servers_proof_says_the_client_is_gone() {
        let text = LossProof::NotFoundText;
        let gone = failure(401, Some("invalid_token"), Some("client not found"));
        assert!(text.proves(&gone));
        for not in [
            failure(
                401,
                Some("invalid_token"),
                Some("invalid registration access token"),
            ),
            failure(401, Some("invalid_token"), None),
            failure(404, None, None),
            failure(503, None, Some("client not found")),
        ] {
            assert!(!text.proves(&not), "{not:?}");
        }
        let html = UpstreamFailure {
            json_body: false,
            ..gone.clone()
        };
        assert!(!text.proves(&html));

        let status = LossProof::GoneStatus;
        assert!(status.proves(&failure(404, None, None)));
        assert!(status.proves(&failure(410, None, None)));
        assert!(!status.proves(&gone), "a 401 proves nothing");
    }
}
