//! How far a failed attempt got: the one classification that retries and
//! error messages both read, so they can never disagree about whether a
//! request may have taken effect.

use super::DcrError;

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
    /// timeout, a broken connection, any 5xx (a proxy's 502, 503 or 504 may
    /// come after the request reached the server: Envoy answers 503 for a
    /// reset before headers), or the caller leaving after it was sent.
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

impl DcrError {
    /// How far the attempt that failed with this error got.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::Connect(_) => Delivery::NeverSent,
            Self::Upstream(f) if f.status >= 500 => Delivery::MayHaveBeenProcessed,
            Self::Upstream(_) => Delivery::TurnedAway,
            Self::Timeout(_) | Self::Transport(_) | Self::DeadlinePassedAfterSend => {
                Delivery::MayHaveBeenProcessed
            }
            Self::MalformedResponse(_) | Self::ClientMismatch => Delivery::Processed,
            Self::RetryStopped { last, .. } => last.delivery(),
            Self::ClientLossNotProven { cause, .. } => cause.delivery(),
            Self::ManagedClientChanged(_) => Delivery::Processed,
            Self::InvalidArgument { .. }
            | Self::ManagedClientNotFound(_)
            | Self::MissingToken { .. }
            | Self::Store(_)
            | Self::CallerUnauthenticated(_)
            | Self::Unsupported(_)
            | Self::ForeignClientUri(_)
            | Self::DeadlineExceeded
            | Self::TooManyCalls
            | Self::LimitReached { .. }
            | Self::ShuttingDown
            | Self::Overloaded(_)
            | Self::Internal(_) => Delivery::NeverSent,
        }
    }
}
