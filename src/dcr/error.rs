//! The one error type of the domain service, and what the upstream said.

use std::sync::Arc;
use std::time::Duration;

/// A failure from outside the gateway (reqwest, redb, redis, the file
/// system), kept whole: shown by a short text that names no secret, with the
/// original error as its source, so whatever walks the chain (a log layer, a
/// debugger) still sees what the library said. Shared, so errors that hold
/// it can be cloned.
#[derive(Clone, Debug)]
pub struct Cause {
    text: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// `text`, caused by `source`.
    pub fn of(
        text: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            text: text.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A cause shown by its own message.
    pub fn from_error(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::of(source.to_string(), source)
    }
}

impl From<&str> for Cause {
    fn from(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            source: None,
        }
    }
}

impl From<String> for Cause {
    fn from(text: String) -> Self {
        Self { text, source: None }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Causes compare by what they show (tests compare errors).
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Cause {}

/// An HTTP error answer from the authorization server.
///
/// Only what is safe to show a caller is kept: the status, the RFC error code,
/// and the `error_description`, already scrubbed of every token the gateway sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamFailure {
    /// The HTTP status code.
    pub status: u16,
    /// The RFC 6749/7591 `error` code, when the body was a JSON error object.
    pub error: Option<String>,
    /// The server's `error_description` (or `message`), bounded and scrubbed.
    pub description: Option<String>,
    /// The server's `Retry-After`, when it sent one in seconds.
    pub retry_after: Option<Duration>,
    /// Whether the body was JSON; a server that answers errors with HTML is
    /// reported as such.
    pub json_body: bool,
    /// The `error` parameter of a `WWW-Authenticate: Bearer` challenge (RFC 6750
    /// section 3), when the server sent one.
    pub bearer_error: Option<String>,
    /// Whether the answer proves that the server rejected the registration
    /// access token the request carried, by the profile's rule (see
    /// `upstream::profile`). Only such proof may make the gateway forget a
    /// stored token: an HTML 401 from an ingress, or `invalid_client` because
    /// the gateway's own client certificate expired, says nothing about it.
    pub token_rejected: bool,
    /// Whether the answer to a call on a client proves the server no longer
    /// has it, by the server's loss proof (`Capabilities::loss_proof`).
    pub client_gone: bool,
    /// Whether the token endpoint refused the client's own credentials (its
    /// secret or its assertion): `invalid_client`, or a 401.
    pub client_rejected: bool,
}

#[cfg(test)]
impl UpstreamFailure {
    /// A JSON error answer with `status` and nothing else, for tests.
    pub fn with_status(status: u16) -> Self {
        Self {
            status,
            error: None,
            description: None,
            retry_after: None,
            json_body: true,
            bearer_error: None,
            token_rejected: false,
            client_gone: false,
            client_rejected: false,
        }
    }
}

impl std::fmt::Display for UpstreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "authorization server answered HTTP {}", self.status)?;
        if let Some(code) = &self.error {
            write!(f, " {code}")?;
        }
        match &self.description {
            Some(d) => write!(f, ": {d}"),
            None if !self.json_body => write!(f, " with a non-JSON body"),
            None => Ok(()),
        }
    }
}

/// Everything that can go wrong with one registration call.
///
/// Messages never contain a secret: tokens are never formatted, and upstream text
/// is scrubbed before it gets here. Not `Clone`: an error moves to the one
/// place that reports it, with its causes.
#[derive(Debug, thiserror::Error)]
pub enum DcrError {
    /// The caller's request is invalid; caught before any upstream call.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The request field at fault, as a path such as `metadata.redirect_uris[2]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No registration access token was passed and none is stored.
    #[error(
        "no registration access token is known for client {client_id:?}: pass \
         registration_access_token (the gateway only knows tokens it saw issued)"
    )]
    MissingToken {
        /// The client the call was for.
        client_id: String,
    },
    /// The authorization server answered with an HTTP error.
    #[error("{0}")]
    Upstream(UpstreamFailure),
    /// No connection to the authorization server could be made; the request
    /// never left.
    #[error("cannot connect to the authorization server: {0}")]
    Connect(#[source] Cause),
    /// The authorization server did not answer in time.
    #[error("the authorization server did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed after the request may have been sent.
    #[error("the connection to the authorization server failed: {0}")]
    Transport(#[source] Cause),
    /// The server answered 2xx, but with a body the gateway cannot use.
    #[error("the authorization server's response is malformed: {0}")]
    MalformedResponse(String),
    /// The server answered for another client than the one the call named;
    /// nothing from the answer was stored or passed on.
    #[error(
        "the authorization server answered with another client_id than the call named; \
         nothing from the answer was stored"
    )]
    ClientMismatch,
    /// The token store failed.
    #[error("token store: {0}")]
    Store(#[source] StoreError),
    /// Caller authentication is on and the call did not authenticate.
    #[error("caller not authenticated: {0}")]
    CallerUnauthenticated(&'static str),
    /// The upstream profile has no such operation.
    #[error("not supported by this upstream: {0}")]
    Unsupported(&'static str),
    /// A `registration_client_uri` points somewhere the RAT may not go; the call
    /// was not sent.
    #[error("refusing to send the registration access token to the registration_client_uri: {0}")]
    ForeignClientUri(String),
    /// The caller's deadline passed before the call completed.
    #[error("the caller's deadline passed before the call completed")]
    DeadlineExceeded,
    /// The caller's deadline passed after the request was sent: the gateway
    /// finishes the exchange without the caller and keeps any credential the
    /// answer brings back.
    #[error(
        "the caller's deadline passed after the request was sent to the authorization server; \
         the gateway finishes the exchange and keeps any credential it brings back, so a later \
         call without a registration access token can use it"
    )]
    DeadlinePassedAfterSend,
    /// A broken invariant inside the gateway (a panicked task, a closed
    /// semaphore); never the caller's or the server's fault.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// Admission at the edge: `--max-concurrent-calls` RPCs are being served.
    #[error("the gateway is serving as many calls as it admits at once")]
    TooManyCalls,
    /// Load shedding: every upstream slot and queue place is taken.
    #[error("the gateway is at its limit of {0} concurrent upstream calls and its queue is full")]
    Overloaded(usize),
    /// A per-namespace limit: the caller holds as many as it may.
    #[error("this caller namespace holds {max} {what}, the most it may ({setting})")]
    LimitReached {
        /// What is limited, e.g. `managed clients`.
        what: &'static str,
        /// The limit.
        max: usize,
        /// The setting that sets it.
        setting: &'static str,
    },
    /// The gateway is shutting down; the call (a watch stream) ends.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// No managed client of that name in the caller's namespace.
    #[error("no managed client is named {0:?} in this caller's namespace")]
    ManagedClientNotFound(String),
    /// The server refused a managed client's stored registration access
    /// token in a way that does not prove it lost the client, so nothing was
    /// registered again.
    #[error(
        "the authorization server refused managed client {client_id:?} ({cause}), which does not \
         prove it lost the client: nothing was registered again (check the client at the server, \
         or ForgetClient the name and ensure it anew)"
    )]
    ClientLossNotProven {
        /// The client the managed name has.
        client_id: String,
        /// The server's answer.
        #[source]
        cause: Box<DcrError>,
    },
    /// A managed client's record changed while this call worked on it
    /// (another replica whose lease had lapsed); repeating the call is safe.
    #[error("managed client {0:?} changed while this call worked on it; repeat the call")]
    ManagedClientChanged(String),
    /// Retrying stopped before success; `last` is the final attempt's error.
    #[error("{reason} (after {attempts} attempts): {last}")]
    RetryStopped {
        /// Why retrying stopped (attempts used up, budget empty, deadline near).
        reason: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<DcrError>,
        /// When a retry could succeed, if known; sent to the caller as RetryInfo.
        retry_after: Option<Duration>,
    },
}

impl DcrError {
    /// Shorthand for [`DcrError::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A short label for logs: the HTTP status and RFC error code of an
    /// upstream answer (the code is visible ASCII, checked when read), else the
    /// kind of failure. Never the server's free text, which a log must not
    /// carry (it may echo a token, or forge a line).
    pub fn log_label(&self) -> String {
        match self {
            Self::Upstream(f) => match &f.error {
                Some(code) => format!("HTTP {} {code}", f.status),
                None => format!("HTTP {}", f.status),
            },
            Self::Connect(_) => "connect error".into(),
            Self::Timeout(_) => "upstream timeout".into(),
            Self::Transport(_) => "connection failed".into(),
            Self::MalformedResponse(_) => "malformed response".into(),
            Self::RetryStopped { last, .. } => last.log_label(),
            other => other.to_string(),
        }
    }
}

/// A token store failed; the message names no token. Defined with the
/// domain's error so that [`DcrError::Store`] keeps it as its cause while the
/// store (which reads the domain's limits) stays below the domain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store is at its configured capacity.
    #[error("the token store is full ({0} entries)")]
    Full(usize),
    /// The backend failed (I/O, database, network).
    #[error("token store backend: {0}")]
    Backend(#[source] Cause),
    /// Sealing was asked of a store with no keyring.
    #[error(
        "no keyring is configured: configure --token-store-keys-file (or DCR_GATEWAY_TOKEN_STORE_KEYS)"
    )]
    NoKeyring,
    /// A value could not be decrypted or decoded.
    #[error("token store entry unreadable: {0}")]
    Unreadable(String),
}
