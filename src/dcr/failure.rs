//! What a failure means, decided once: [`DcrError::class`] computes, for
//! each failed attempt, how far it got, whether the upstream is failing,
//! what it proves about the token and the client, its metric label and its
//! reason, and retries, throttling, metrics, the edge and managed clients all
//! read that, so they cannot disagree. A new failure kind is one arm here.
//!
//! An HTTP error answer, by status:
//!
//! | status | how far it got | upstream failing (a retry could help) | reason |
//! |---|---|---|---|
//! | 3xx (never followed) | turned away | no | `UPSTREAM_REDIRECT` |
//! | 400, 401, 403, 404, 405, 409, other 4xx | turned away | no | by status and RFC code |
//! | 429 | turned away | yes | `UPSTREAM_RATE_LIMITED` |
//! | 502, 503, 504 | may have been processed (a proxy may answer after the server got it; Envoy answers 503 for a reset before headers) | yes | `UPSTREAM_UNAVAILABLE` |
//! | 500, 501, other 5xx | may have been processed | no (the same request fails the same way) | `UPSTREAM_SERVER_ERROR` (501: `UNSUPPORTED_BY_UPSTREAM`) |
//!
//! No connection is "never sent" and failing; a timeout or a broken
//! connection "may have been processed" and failing; a 2xx the gateway
//! cannot use was processed.

use super::{DcrError, Reason, StoreError, UpstreamFailure};

/// How far a failed attempt got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing reached the server: refused by the gateway, or the connection
    /// could not be made.
    NeverSent,
    /// The server answered that it did not do it: a 4xx (429 included), or a
    /// redirect, which is never followed.
    TurnedAway,
    /// The request may have been processed, but no usable answer came back: a
    /// timeout, a broken connection, any 5xx, or the caller leaving after it
    /// was sent.
    MayHaveBeenProcessed,
    /// The server did it, but its 2xx answer is one the gateway cannot use
    /// (malformed, or about another client).
    Processed,
}

impl Delivery {
    /// Whether the operation may have taken effect on the server.
    pub fn may_have_taken_effect(self) -> bool {
        matches!(self, Self::MayHaveBeenProcessed | Self::Processed)
    }
}

/// What one failure means; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureClass {
    /// How far the attempt got.
    pub delivery: Delivery,
    /// The upstream, or the way to it, is failing: what a retry could help
    /// with, and what drains the retry throttle. An answer such as 400 or 401
    /// comes from a working server and is not.
    pub upstream_failing: bool,
    /// The answer proves the server rejected the registration access token
    /// the request carried (the profile's rule); only this may make the
    /// gateway forget a stored token.
    pub token_rejected: bool,
    /// The answer proves the server no longer has the client (the server's
    /// loss proof); only this may make a managed client register anew.
    pub client_gone: bool,
    /// The server refused the credential or the call (401, 403, a proven
    /// token rejection), or no token was known: it says nothing about
    /// whether the client exists.
    pub refused: bool,
    /// The token endpoint refused the client's own credentials (its secret
    /// or its assertion): another replica may have rotated the secret.
    pub client_rejected: bool,
    /// Why, as callers see it.
    pub reason: Reason,
    /// The `error.type` of a failed upstream attempt in metrics and traces.
    pub label: &'static str,
}

impl FailureClass {
    /// A failure that never reached the server, for `reason`.
    const fn not_sent(reason: Reason) -> Self {
        Self {
            delivery: Delivery::NeverSent,
            upstream_failing: false,
            token_rejected: false,
            client_gone: false,
            refused: false,
            client_rejected: false,
            reason,
            label: "not_sent",
        }
    }

    /// A failure of the way to the server, not an answer from it.
    const fn transport(delivery: Delivery, reason: Reason, label: &'static str) -> Self {
        Self {
            delivery,
            upstream_failing: true,
            label,
            ..Self::not_sent(reason)
        }
    }
}

impl DcrError {
    /// What this failure means; see the module documentation.
    pub fn class(&self) -> FailureClass {
        use FailureClass as C;
        match self {
            Self::Upstream(f) => upstream(f),
            Self::Connect(_) => C::transport(
                Delivery::NeverSent,
                Reason::UpstreamUnreachable,
                "connect_error",
            ),
            Self::Timeout(_) => C::transport(
                Delivery::MayHaveBeenProcessed,
                Reason::UpstreamTimeout,
                "timeout",
            ),
            Self::Transport(_) => C::transport(
                Delivery::MayHaveBeenProcessed,
                Reason::UpstreamConnectionFailed,
                "transport_error",
            ),
            Self::MalformedResponse(_) => processed(Reason::UpstreamMalformedResponse),
            Self::ClientMismatch => processed(Reason::UpstreamClientMismatch),
            Self::RetryStopped { last, .. } => last.class(),
            Self::ClientLossNotProven { cause, .. } => C {
                delivery: cause.class().delivery,
                ..C::not_sent(Reason::ClientLossNotProven)
            },
            Self::ManagedClientChanged(_) => C {
                delivery: Delivery::Processed,
                ..C::not_sent(Reason::ManagedClientChanged)
            },
            Self::DeadlinePassedAfterSend => C {
                delivery: Delivery::MayHaveBeenProcessed,
                ..C::not_sent(Reason::DeadlineExceededAfterSend)
            },
            Self::MissingToken { .. } => C {
                refused: true,
                ..C::not_sent(Reason::MissingRegistrationAccessToken)
            },
            Self::InvalidArgument { .. } => C::not_sent(Reason::InvalidField),
            Self::ManagedClientNotFound(_) => C::not_sent(Reason::ManagedClientNotFound),
            // A full store stays full: retrying cannot help.
            Self::Store(StoreError::Full(_)) => C::not_sent(Reason::TokenStoreFull),
            Self::Store(_) => C::not_sent(Reason::TokenStoreFailed),
            Self::CallerUnauthenticated(_) => C::not_sent(Reason::CallerUnauthenticated),
            Self::Unsupported(_) => C::not_sent(Reason::UnsupportedByUpstream),
            Self::ForeignClientUri(_) => C::not_sent(Reason::ForeignRegistrationClientUri),
            Self::DeadlineExceeded => C::not_sent(Reason::DeadlineExceeded),
            Self::TooManyCalls => C::not_sent(Reason::TooManyCalls),
            Self::LimitReached { .. } => C::not_sent(Reason::NamespaceLimitReached),
            Self::ShuttingDown => C::not_sent(Reason::ShuttingDown),
            Self::Overloaded(_) => C::not_sent(Reason::Overloaded),
            Self::Internal(_) => C::not_sent(Reason::Internal),
        }
    }
}

/// A 2xx the gateway cannot use.
const fn processed(reason: Reason) -> FailureClass {
    FailureClass {
        delivery: Delivery::Processed,
        label: "malformed_response",
        ..FailureClass::not_sent(reason)
    }
}

/// An HTTP error answer (the table in the module documentation).
fn upstream(f: &UpstreamFailure) -> FailureClass {
    let delivery = match f.status {
        500.. => Delivery::MayHaveBeenProcessed,
        _ => Delivery::TurnedAway,
    };
    FailureClass {
        delivery,
        upstream_failing: matches!(f.status, 429 | 502 | 503 | 504),
        token_rejected: f.token_rejected,
        client_gone: f.client_gone,
        refused: matches!(f.status, 401 | 403) || f.token_rejected,
        client_rejected: f.client_rejected,
        reason: match f.client_rejected {
            true => Reason::UpstreamClientRejected,
            false => upstream_reason(f),
        },
        label: "http_error",
    }
}

/// The gateway's own reason for an HTTP error answer: one of a fixed set,
/// never the server's text (the server's RFC 7591 or RFC 6750 code travels
/// beside it).
pub fn upstream_reason(f: &UpstreamFailure) -> Reason {
    match (f.status, f.error.as_deref()) {
        (_, Some("invalid_token")) | (401, _) => Reason::UpstreamTokenRejected,
        (_, Some("unapproved_software_statement")) => Reason::UnapprovedSoftwareStatement,
        (_, Some("access_denied")) | (403, _) => Reason::UpstreamAccessDenied,
        (400, Some("invalid_redirect_uri")) => Reason::InvalidRedirectUri,
        (400, Some("invalid_client_metadata")) => Reason::InvalidClientMetadata,
        (400, Some("invalid_software_statement")) => Reason::InvalidSoftwareStatement,
        (400, Some("invalid_scope")) => Reason::InvalidScope,
        (400, Some("unauthorized_client")) => Reason::UnauthorizedClient,
        (400, _) => Reason::UpstreamBadRequest,
        (404, _) => Reason::ClientNotFound,
        (405 | 501, _) => Reason::UnsupportedByUpstream,
        (409, _) => Reason::UpstreamConflict,
        (429, _) => Reason::UpstreamRateLimited,
        (502..=504, _) => Reason::UpstreamUnavailable,
        (300..=399, _) => Reason::UpstreamRedirect,
        (402..=499, _) => Reason::UpstreamRejected,
        _ => Reason::UpstreamServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> DcrError {
        DcrError::Upstream(UpstreamFailure::with_status(status))
    }

    #[test]
    fn each_status_is_classified_once_by_the_table() {
        for (status, delivery, failing, reason) in [
            (302, Delivery::TurnedAway, false, Reason::UpstreamRedirect),
            (400, Delivery::TurnedAway, false, Reason::UpstreamBadRequest),
            (
                401,
                Delivery::TurnedAway,
                false,
                Reason::UpstreamTokenRejected,
            ),
            (404, Delivery::TurnedAway, false, Reason::ClientNotFound),
            (429, Delivery::TurnedAway, true, Reason::UpstreamRateLimited),
            (
                500,
                Delivery::MayHaveBeenProcessed,
                false,
                Reason::UpstreamServerError,
            ),
            (
                501,
                Delivery::MayHaveBeenProcessed,
                false,
                Reason::UnsupportedByUpstream,
            ),
            (
                502,
                Delivery::MayHaveBeenProcessed,
                true,
                Reason::UpstreamUnavailable,
            ),
            (
                503,
                Delivery::MayHaveBeenProcessed,
                true,
                Reason::UpstreamUnavailable,
            ),
            (
                504,
                Delivery::MayHaveBeenProcessed,
                true,
                Reason::UpstreamUnavailable,
            ),
        ] {
            let class = http(status).class();
            assert_eq!(class.delivery, delivery, "{status}");
            assert_eq!(class.upstream_failing, failing, "{status}");
            assert_eq!(class.reason, reason, "{status}");
            assert_eq!(class.label, "http_error");
            assert!(!class.token_rejected && !class.client_gone, "{status}");
            assert_eq!(class.refused, status == 401, "{status}");
        }
    }

    #[test]
    fn a_wrapped_failure_is_classified_by_its_cause() {
        let stopped = DcrError::RetryStopped {
            reason: "retries used up",
            attempts: 3,
            last: Box::new(DcrError::Timeout(std::time::Duration::from_secs(1))),
            retry_after: None,
        };
        let class = stopped.class();
        assert_eq!(class.delivery, Delivery::MayHaveBeenProcessed);
        assert!(class.upstream_failing);
        assert_eq!(class.reason, Reason::UpstreamTimeout);
        let unproven = DcrError::ClientLossNotProven {
            client_id: "c".into(),
            cause: Box::new(http(502)),
        };
        let class = unproven.class();
        assert_eq!(class.delivery, Delivery::MayHaveBeenProcessed);
        assert_eq!(class.reason, Reason::ClientLossNotProven);
        assert!(
            !class.upstream_failing,
            "the call itself did not fail upstream"
        );
    }

    #[test]
    fn connection_failures_are_failing_and_say_how_far_they_got() {
        let refused = DcrError::Connect("refused".into()).class();
        assert_eq!(refused.delivery, Delivery::NeverSent);
        assert!(refused.upstream_failing);
        assert_eq!(refused.label, "connect_error");
        let broken = DcrError::Transport("reset".into()).class();
        assert_eq!(broken.delivery, Delivery::MayHaveBeenProcessed);
        assert_eq!(broken.label, "transport_error");
        let bad = DcrError::invalid("metadata", "no").class();
        assert_eq!(bad.delivery, Delivery::NeverSent);
        assert!(!bad.upstream_failing);
        assert_eq!(bad.label, "not_sent");
    }
}
