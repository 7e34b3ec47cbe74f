//! The domain request and response every tower layer sees.

use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;

use super::{AccessToken, Client, ClientMetadata, Operation, SendGate, TokenRequest};

/// Names the client a management call acts on, and the token to act with.
#[derive(Clone, Debug)]
pub struct ClientRef {
    /// The client identifier, exactly as issued (it is percent-encoded on the way
    /// into a URL, never interpreted).
    pub client_id: String,
    /// The registration access token; `None` asks the tokens layer to supply the
    /// one it holds.
    pub registration_access_token: Option<SecretString>,
    /// The client's configuration endpoint, as the server returned it; filled in
    /// by the tokens layer from the store.
    pub registration_client_uri: Option<String>,
}

/// One call through the stack: the operation, and when the caller stops waiting.
#[derive(Clone, Debug)]
pub struct DcrRequest {
    /// What to do.
    pub call: DcrCall,
    /// The caller's deadline (from `grpc-timeout`, or the configured default);
    /// `None` means unbounded. Retries never wait past it, and no attempt runs
    /// past it.
    pub deadline: Option<Instant>,
    /// The caller namespace stored tokens are kept under: the authenticated
    /// caller's name, or [`DEFAULT_NAMESPACE`] when callers do not authenticate.
    pub namespace: String,
    /// Which attempt this is: 0 for the first, set by the retry layer. Traces
    /// report it as `http.request.resend_count`.
    pub attempt: u32,
    /// The caller's trace context (from `traceparent`), passed to the upstream
    /// as is when tracing is off.
    pub trace: opentelemetry::Context,
    /// Set by the gRPC edge on calls that may bring back a credential: the
    /// transport opens it before sending, and from then on the call runs to
    /// completion even if its caller goes away (see [`SendGate`]).
    pub gate: Option<Arc<SendGate>>,
    /// The fencing number of the cross-replica lease this call holds, set by
    /// the lease layer on a shared store; every token it stores is written
    /// only while the lease is still this one.
    pub fence: Option<u64>,
}

/// The namespace of every call when caller authentication is off.
pub const DEFAULT_NAMESPACE: &str = "default";

/// One registration operation, as the caller asked for it.
#[derive(Clone, Debug)]
pub enum DcrCall {
    /// RFC 7591 register.
    Register {
        /// The metadata to register with.
        metadata: ClientMetadata,
        /// Sent as `Authorization: Bearer` on the register call when present.
        initial_access_token: Option<SecretString>,
    },
    /// RFC 7592 read.
    Get(ClientRef),
    /// RFC 7592 update.
    Update {
        /// The client to update.
        target: ClientRef,
        /// The new metadata.
        metadata: ClientMetadata,
        /// Validated mask paths; empty means full replacement.
        mask: Vec<String>,
    },
    /// RFC 7592 delete.
    Delete(ClientRef),
    /// SharkAuth extension: issue a new client secret.
    RotateSecret(ClientRef),
    /// SharkAuth extension: issue a new registration access token.
    RotateToken(ClientRef),
    /// The client credentials grant at the token endpoint, for a client the
    /// gateway holds the credentials of.
    Token(TokenRequest),
}

impl DcrRequest {
    /// A request with no deadline, in the default namespace.
    pub fn new(call: DcrCall) -> Self {
        Self {
            call,
            deadline: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            attempt: 0,
            trace: opentelemetry::Context::new(),
            gate: None,
            fence: None,
        }
    }

    /// The same deadline and namespace around another call (for layers that
    /// fan out).
    pub fn with_call(&self, call: DcrCall) -> Self {
        Self {
            call,
            deadline: self.deadline,
            namespace: self.namespace.clone(),
            attempt: self.attempt,
            trace: self.trace.clone(),
            gate: self.gate.clone(),
            fence: self.fence,
        }
    }

    /// Which operation this is.
    pub fn operation(&self) -> Operation {
        self.call.operation()
    }

    /// The client a management call acts on; `None` for register.
    pub fn target(&self) -> Option<&ClientRef> {
        self.call.target()
    }
}

impl DcrCall {
    /// Which operation this is.
    pub fn operation(&self) -> Operation {
        match self {
            Self::Register { .. } => Operation::Register,
            Self::Get(_) => Operation::Get,
            Self::Update { .. } => Operation::Update,
            Self::Delete(_) => Operation::Delete,
            Self::RotateSecret(_) => Operation::RotateSecret,
            Self::RotateToken(_) => Operation::RotateToken,
            Self::Token(_) => Operation::Token,
        }
    }

    /// The client a management call acts on by its registration access
    /// token; `None` for register and a token request.
    pub fn target(&self) -> Option<&ClientRef> {
        match self {
            Self::Register { .. } | Self::Token(_) => None,
            Self::Get(t) | Self::Delete(t) | Self::RotateSecret(t) | Self::RotateToken(t) => {
                Some(t)
            }
            Self::Update { target, .. } => Some(target),
        }
    }

    /// The metadata a registration or an update sends.
    pub fn metadata(&self) -> Option<&ClientMetadata> {
        match self {
            Self::Register { metadata, .. } | Self::Update { metadata, .. } => Some(metadata),
            _ => None,
        }
    }

    /// The initial access token a registration carries.
    pub fn initial_access_token(&self) -> Option<&SecretString> {
        match self {
            Self::Register {
                initial_access_token,
                ..
            } => initial_access_token.as_ref(),
            _ => None,
        }
    }

    /// Mutable access to the target, for layers that fill in the token.
    pub fn target_mut(&mut self) -> Option<&mut ClientRef> {
        match self {
            Self::Register { .. } | Self::Token(_) => None,
            Self::Get(t) | Self::Delete(t) | Self::RotateSecret(t) | Self::RotateToken(t) => {
                Some(t)
            }
            Self::Update { target, .. } => Some(target),
        }
    }
}

/// What a successful operation returns.
#[derive(Clone, Debug)]
pub enum DcrResponse {
    /// The client as the server returned it.
    Client(Box<Client>),
    /// The client was deleted; the server returned no body.
    Deleted,
    /// An access token from the token endpoint.
    AccessToken(AccessToken),
}
