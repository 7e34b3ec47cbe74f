//! The operation table: what each of the six RPCs means, written once. The
//! retry policy, the error wording, the detach-after-cancel decision, the
//! routes of both upstream profiles, the credential a request carries, its
//! body, what its success answers, the delete-after-lost-answer rule and the
//! metric labels all read it (DESIGN.md, "The operation table").

use super::Capabilities;

/// One registration operation; the key for every per-operation decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `RegisterClient`.
    Register,
    /// `GetClient`.
    Get,
    /// `UpdateClient`.
    Update,
    /// `DeleteClient`.
    Delete,
    /// `RotateClientSecret`.
    RotateSecret,
    /// `RotateRegistrationToken`.
    RotateToken,
    /// `GetAccessToken`: the client credentials grant for a managed client.
    Token,
}

/// Whether an answer may carry a new credential (a RAT or a client secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Every success does (register, rotations).
    Always,
    /// Only on servers that rotate on reads and updates (RFC 7592 allows it).
    WhenReadsRotate,
    /// Never (delete; an access token, which is kept in memory only).
    Never,
}

/// What a success does to the stored registration access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreEffect {
    /// Stores the RAT the answer carries.
    Store,
    /// Stores a RAT only if the answer carries a non-empty one.
    StoreIfPresent,
    /// Keeps the stored RAT (the answer's empty RAT never overwrites).
    Keep,
    /// Replaces it with the answer's, durably before the reply.
    Replace,
    /// Forgets it.
    Forget,
}

/// The HTTP method a request is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl HttpMethod {
    /// The method's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// Where a request goes, in both ways a server lays out its routes; each
/// route is also how logs, traces and metric labels show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    /// The registration endpoint, or a client's own.
    pub place: Place,
    /// SharkAuth's route under the base URL, one segment per `/`;
    /// `{client_id}` is the client's (percent-encoded) segment.
    pub under_base: &'static str,
    /// The route at the endpoint the server names: its registration
    /// endpoint, or the client's `registration_client_uri` (RFC 7592).
    pub at_endpoint: &'static str,
    /// Whether a generic RFC 7592 server has it (the rotations are
    /// SharkAuth's).
    pub in_rfc7592: bool,
}

/// The segment of [`Path::under_base`] that stands for the client's id.
pub const CLIENT_ID_SEGMENT: &str = "{client_id}";

/// Which endpoint a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The registration endpoint: the call creates a client.
    Registration,
    /// The token endpoint.
    Token,
    /// The client's configuration endpoint, with one more path segment
    /// after it (a rotation) or none.
    Client {
        /// The segment after the client's endpoint.
        suffix: Option<&'static str>,
    },
}

/// Which credential authorises a request, sent as `Authorization: Bearer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    /// The initial access token, when the server wants one (RFC 7591 §3).
    InitialAccessToken,
    /// The client's registration access token, which the call must have.
    RegistrationAccessToken,
    /// The client's own credentials: its secret, or an assertion signed by
    /// its key.
    ClientCredentials,
}

/// What a request's body carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// Nothing.
    Empty,
    /// The client metadata, as JSON.
    Metadata,
    /// The client metadata with the client's `client_id` (RFC 7592 §2.2).
    MetadataWithClientId,
    /// A token request's form: the grant, scopes and resources (and the
    /// client's credentials, when they go in the form).
    TokenForm,
}

/// What a success answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The client, as JSON.
    Client,
    /// Nothing to read: the client is gone.
    Nothing,
    /// An access token, as JSON (RFC 6749 §5.1).
    AccessToken,
}

/// What it means when an attempt whose answer was lost (it may have been
/// processed) is followed by one the server answers with "gone": a rejected
/// token or a 404.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoneAfterLostAnswer {
    /// The lost attempt did what was asked: the call succeeded (a delete).
    Done,
    /// Nothing more than the answer says: the call failed with it.
    Failed,
}

/// Everything that is particular to one operation.
#[derive(Debug)]
pub struct OperationSpec {
    /// The gRPC method name, for logs, metrics and error messages.
    pub rpc: &'static str,
    /// Its name on the command line (`dcr-gateway call NAME`).
    pub cli: &'static str,
    /// `service/method`, the server span's name.
    pub span: &'static str,
    /// Safe to repeat after a request may have been processed: a read, a
    /// full replacement, or a delete. The others could create a second client
    /// or burn the token the first answer carried.
    pub idempotent: bool,
    /// What its answer may carry; such a call, once sent, completes after its
    /// caller is gone.
    pub credential: Credential,
    /// What a success does to the stored token.
    pub on_success: StoreEffect,
    /// Whether it changes the client at the server (everything but a read).
    /// A call that changes nothing and can bring back no credential may run
    /// beside others on the same client.
    pub changes_client: bool,
    /// The HTTP method.
    pub method: HttpMethod,
    /// Where it is sent, per profile.
    pub path: Path,
    /// Which credential authorises it.
    pub authority: Authority,
    /// What it sends.
    pub body: Body,
    /// What its success answers.
    pub answer: Answer,
    /// What "gone" after a lost answer means.
    pub gone_after_lost_answer: GoneAfterLostAnswer,
}

/// A [`Path`] from its place, each profile's route written from one
/// suffix: `registration`, `token`, `client`, or `client / "suffix"`
/// (SharkAuth's extension, which a generic RFC 7592 server lacks).
macro_rules! path {
    (registration) => {
        Path {
            place: Place::Registration,
            under_base: "/oauth/register",
            at_endpoint: "{registration_endpoint}",
            in_rfc7592: true,
        }
    };
    (token) => {
        Path {
            place: Place::Token,
            under_base: "/oauth/token",
            at_endpoint: "{token_endpoint}",
            in_rfc7592: true,
        }
    };
    (client) => {
        Path {
            place: Place::Client { suffix: None },
            under_base: "/oauth/register/{client_id}",
            at_endpoint: "{registration_client_uri}",
            in_rfc7592: true,
        }
    };
    (client / $suffix:literal) => {
        Path {
            place: Place::Client {
                suffix: Some($suffix),
            },
            under_base: concat!("/oauth/register/{client_id}/", $suffix),
            at_endpoint: concat!("{registration_client_uri}/", $suffix),
            in_rfc7592: false,
        }
    };
}

/// The server span's name for an RPC.
macro_rules! span {
    ($rpc:literal) => {
        concat!("dcr.v1.DynamicClientRegistration/", $rpc)
    };
}

const REGISTER: OperationSpec = OperationSpec {
    rpc: "RegisterClient",
    cli: "register",
    span: span!("RegisterClient"),
    idempotent: false,
    credential: Credential::Always,
    on_success: StoreEffect::Store,
    changes_client: true,
    method: HttpMethod::Post,
    path: path!(registration),
    authority: Authority::InitialAccessToken,
    body: Body::Metadata,
    answer: Answer::Client,
    gone_after_lost_answer: GoneAfterLostAnswer::Failed,
};
const GET: OperationSpec = OperationSpec {
    rpc: "GetClient",
    cli: "get",
    span: span!("GetClient"),
    idempotent: true,
    credential: Credential::WhenReadsRotate,
    on_success: StoreEffect::StoreIfPresent,
    changes_client: false,
    method: HttpMethod::Get,
    path: path!(client),
    authority: Authority::RegistrationAccessToken,
    body: Body::Empty,
    answer: Answer::Client,
    gone_after_lost_answer: GoneAfterLostAnswer::Failed,
};
const UPDATE: OperationSpec = OperationSpec {
    rpc: "UpdateClient",
    cli: "update",
    span: span!("UpdateClient"),
    idempotent: true,
    credential: Credential::WhenReadsRotate,
    on_success: StoreEffect::StoreIfPresent,
    changes_client: true,
    method: HttpMethod::Put,
    path: path!(client),
    authority: Authority::RegistrationAccessToken,
    body: Body::MetadataWithClientId,
    answer: Answer::Client,
    gone_after_lost_answer: GoneAfterLostAnswer::Failed,
};
const DELETE: OperationSpec = OperationSpec {
    rpc: "DeleteClient",
    cli: "delete",
    span: span!("DeleteClient"),
    idempotent: true,
    credential: Credential::Never,
    on_success: StoreEffect::Forget,
    changes_client: true,
    method: HttpMethod::Delete,
    path: path!(client),
    authority: Authority::RegistrationAccessToken,
    body: Body::Empty,
    answer: Answer::Nothing,
    gone_after_lost_answer: GoneAfterLostAnswer::Done,
};
const ROTATE_SECRET: OperationSpec = OperationSpec {
    rpc: "RotateClientSecret",
    cli: "rotate-secret",
    span: span!("RotateClientSecret"),
    idempotent: false,
    credential: Credential::Always,
    on_success: StoreEffect::Keep,
    changes_client: true,
    method: HttpMethod::Post,
    path: path!(client / "secret"),
    authority: Authority::RegistrationAccessToken,
    body: Body::Empty,
    answer: Answer::Client,
    gone_after_lost_answer: GoneAfterLostAnswer::Failed,
};
const ROTATE_TOKEN: OperationSpec = OperationSpec {
    rpc: "RotateRegistrationToken",
    cli: "rotate-token",
    span: span!("RotateRegistrationToken"),
    idempotent: false,
    credential: Credential::Always,
    on_success: StoreEffect::Replace,
    changes_client: true,
    method: HttpMethod::Delete,
    path: path!(client / "registration-token"),
    authority: Authority::RegistrationAccessToken,
    body: Body::Empty,
    answer: Answer::Client,
    gone_after_lost_answer: GoneAfterLostAnswer::Failed,
};

const TOKEN: OperationSpec = OperationSpec {
    rpc: "GetAccessToken",
    cli: "token",
    span: span!("GetAccessToken"),
    // Another grant only issues another token.
    idempotent: true,
    credential: Credential::Never,
    on_success: StoreEffect::Keep,
    changes_client: false,
    method: HttpMethod::Post,
    path: path!(token),
    authority: Authority::ClientCredentials,
    body: Body::TokenForm,
    answer: Answer::AccessToken,
    gone_after_lost_answer: GoneAfterLostAnswer::Failed,
};

impl Operation {
    /// Every operation, in the proto's order.
    pub const ALL: [Operation; 7] = [
        Self::Register,
        Self::Get,
        Self::Update,
        Self::Delete,
        Self::RotateSecret,
        Self::RotateToken,
        Self::Token,
    ];

    /// This operation's row of the table.
    pub const fn spec(self) -> &'static OperationSpec {
        match self {
            Self::Register => &REGISTER,
            Self::Get => &GET,
            Self::Update => &UPDATE,
            Self::Delete => &DELETE,
            Self::RotateSecret => &ROTATE_SECRET,
            Self::RotateToken => &ROTATE_TOKEN,
            Self::Token => &TOKEN,
        }
    }

    /// The gRPC method name, for logs and error messages.
    pub fn rpc_name(self) -> &'static str {
        self.spec().rpc
    }

    /// `service/method`, the server span's name, built at compile time so no
    /// call formats it.
    pub fn span_name(self) -> &'static str {
        self.spec().span
    }

    /// Whether calls of this operation may share a client with each other
    /// on a server that can do `server`: they change nothing and bring back
    /// no credential (a read, on a server whose reads do not rotate).
    /// Anything else has the client to itself.
    pub fn may_share_client(self, server: &Capabilities) -> bool {
        !self.spec().changes_client && !self.may_bring_back_credential(server)
    }

    /// Whether an answer from a server that can do `server` may carry a new
    /// credential, so that once the request is sent the call must run to
    /// the store whatever its caller does.
    pub fn may_bring_back_credential(self, server: &Capabilities) -> bool {
        match self.spec().credential {
            Credential::Always => true,
            Credential::WhenReadsRotate => server.reads_may_rotate,
            Credential::Never => false,
        }
    }
}
