//! Why a call failed, as a closed set: the gateway's own UPPER_SNAKE
//! reasons (Google AIP-193), which callers branch on. The domain decides
//! the reason ([`super::FailureClass`]); the edge maps it to a gRPC code.

/// Declares [`Reason`] with each variant's text written once, beside it.
macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident = $text:literal,)*) => {
        /// Why a call failed; see the module documentation.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            /// Every reason, in the order the README's error table lists them.
            pub const ALL: &[Reason] = &[$(Self::$name,)*];

            /// The reason as `ErrorInfo.reason` carries it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $text,)*
                }
            }
        }
    };
}

reasons! {
    /// A request field is invalid.
    InvalidField = "INVALID_FIELD",
    /// No registration access token was passed and none is stored.
    MissingRegistrationAccessToken = "MISSING_REGISTRATION_ACCESS_TOKEN",
    /// The server rejected the registration access token (any 401, or
    /// `invalid_token`).
    UpstreamTokenRejected = "UPSTREAM_TOKEN_REJECTED",
    /// The server does not approve the software statement.
    UnapprovedSoftwareStatement = "UNAPPROVED_SOFTWARE_STATEMENT",
    /// The server denied the call (403, or `access_denied`).
    UpstreamAccessDenied = "UPSTREAM_ACCESS_DENIED",
    /// The server refused a redirect URI.
    InvalidRedirectUri = "INVALID_REDIRECT_URI",
    /// The server refused the client metadata.
    InvalidClientMetadata = "INVALID_CLIENT_METADATA",
    /// The server refused the software statement.
    InvalidSoftwareStatement = "INVALID_SOFTWARE_STATEMENT",
    /// The token endpoint refused a scope asked for.
    InvalidScope = "INVALID_SCOPE",
    /// The client may not use the grant (its `grant_types` lack it).
    UnauthorizedClient = "UNAUTHORIZED_CLIENT",
    /// The token endpoint refused the client's own credentials.
    UpstreamClientRejected = "UPSTREAM_CLIENT_REJECTED",
    /// Any other 400.
    UpstreamBadRequest = "UPSTREAM_BAD_REQUEST",
    /// The server answered 404.
    ClientNotFound = "CLIENT_NOT_FOUND",
    /// The server or its profile has no such operation (405, 501).
    UnsupportedByUpstream = "UNSUPPORTED_BY_UPSTREAM",
    /// The server answered 409.
    UpstreamConflict = "UPSTREAM_CONFLICT",
    /// The server answered 429.
    UpstreamRateLimited = "UPSTREAM_RATE_LIMITED",
    /// The server or a proxy answered 502, 503 or 504.
    UpstreamUnavailable = "UPSTREAM_UNAVAILABLE",
    /// The server answered with a redirect, which is never followed.
    UpstreamRedirect = "UPSTREAM_REDIRECT",
    /// Any other 4xx.
    UpstreamRejected = "UPSTREAM_REJECTED",
    /// Any other answer (a 500).
    UpstreamServerError = "UPSTREAM_SERVER_ERROR",
    /// No connection could be made.
    UpstreamUnreachable = "UPSTREAM_UNREACHABLE",
    /// The server did not answer in time.
    UpstreamTimeout = "UPSTREAM_TIMEOUT",
    /// The connection failed after the request may have been sent.
    UpstreamConnectionFailed = "UPSTREAM_CONNECTION_FAILED",
    /// A 2xx the gateway cannot use.
    UpstreamMalformedResponse = "UPSTREAM_MALFORMED_RESPONSE",
    /// A 2xx about another client than the call named.
    UpstreamClientMismatch = "UPSTREAM_CLIENT_MISMATCH",
    /// The token store is full.
    TokenStoreFull = "TOKEN_STORE_FULL",
    /// The token store failed.
    TokenStoreFailed = "TOKEN_STORE_FAILED",
    /// A per-namespace limit is reached.
    NamespaceLimitReached = "NAMESPACE_LIMIT_REACHED",
    /// The gateway is shutting down.
    ShuttingDown = "SHUTTING_DOWN",
    /// The caller's deadline passed before anything was sent.
    DeadlineExceeded = "DEADLINE_EXCEEDED",
    /// The caller's deadline passed after the request was sent.
    DeadlineExceededAfterSend = "DEADLINE_EXCEEDED_AFTER_SEND",
    /// A broken invariant inside the gateway.
    Internal = "INTERNAL",
    /// No managed client of that name.
    ManagedClientNotFound = "MANAGED_CLIENT_NOT_FOUND",
    /// The server refused a managed client in a way that proves no loss.
    ClientLossNotProven = "CLIENT_LOSS_NOT_PROVEN",
    /// A managed client's record changed during the call.
    ManagedClientChanged = "MANAGED_CLIENT_CHANGED",
    /// A `registration_client_uri` points where the token may not go.
    ForeignRegistrationClientUri = "FOREIGN_REGISTRATION_CLIENT_URI",
    /// The caller did not authenticate.
    CallerUnauthenticated = "CALLER_UNAUTHENTICATED",
    /// The edge admits no more calls now.
    TooManyCalls = "TOO_MANY_CALLS",
    /// Every upstream slot and queue place is taken.
    Overloaded = "OVERLOADED",
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
