//! The operation table: what each of the six RPCs means, written once. The
//! retry policy, the error wording, the detach-after-cancel decision, the
//! delete-after-lost-answer rule, the SharkAuth routes and the metric labels
//! all read it (DESIGN.md, "The operation table").

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
}

/// Whether an answer may carry a new credential (a RAT or a client secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Every success does (register, rotations).
    Always,
    /// Only on servers that rotate on reads and updates (RFC 7592 allows it).
    WhenReadsRotate,
    /// Never (delete).
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
    /// SharkAuth's method.
    pub method: &'static str,
    /// SharkAuth's route template under the base URL.
    pub template: &'static str,
    /// The path segment after `{client_id}` (the rotations), if any.
    pub suffix: Option<&'static str>,
    /// Whether a generic RFC 7592 server has it (the rotations are SharkAuth's).
    pub in_rfc7592: bool,
}

macro_rules! spec {
    ($rpc:literal, $cli:literal, $idempotent:expr, $credential:expr, $effect:expr, $changes:expr, $method:literal, $template:literal, $suffix:expr, $rfc:expr) => {
        OperationSpec {
            rpc: $rpc,
            cli: $cli,
            span: concat!("dcr.v1.DynamicClientRegistration/", $rpc),
            idempotent: $idempotent,
            credential: $credential,
            on_success: $effect,
            changes_client: $changes,
            method: $method,
            template: $template,
            suffix: $suffix,
            in_rfc7592: $rfc,
        }
    };
}

use super::Capabilities;
use Credential::{Always, Never, WhenReadsRotate};
use StoreEffect::{Forget, Keep, Replace, Store, StoreIfPresent};

const REGISTER: OperationSpec = spec!(
    "RegisterClient",
    "register",
    false,
    Always,
    Store,
    true,
    "POST",
    "/oauth/register",
    None,
    true
);
const GET: OperationSpec = spec!(
    "GetClient",
    "get",
    true,
    WhenReadsRotate,
    StoreIfPresent,
    false,
    "GET",
    "/oauth/register/{client_id}",
    None,
    true
);
const UPDATE: OperationSpec = spec!(
    "UpdateClient",
    "update",
    true,
    WhenReadsRotate,
    StoreIfPresent,
    true,
    "PUT",
    "/oauth/register/{client_id}",
    None,
    true
);
const DELETE: OperationSpec = spec!(
    "DeleteClient",
    "delete",
    true,
    Never,
    Forget,
    true,
    "DELETE",
    "/oauth/register/{client_id}",
    None,
    true
);
const ROTATE_SECRET: OperationSpec = spec!(
    "RotateClientSecret",
    "rotate-secret",
    false,
    Always,
    Keep,
    true,
    "POST",
    "/oauth/register/{client_id}/secret",
    Some("secret"),
    false
);
const ROTATE_TOKEN: OperationSpec = spec!(
    "RotateRegistrationToken",
    "rotate-token",
    false,
    Always,
    Replace,
    true,
    "DELETE",
    "/oauth/register/{client_id}/registration-token",
    Some("registration-token"),
    false
);

impl Operation {
    /// Every operation, in the proto's order.
    pub const ALL: [Operation; 6] = [
        Self::Register,
        Self::Get,
        Self::Update,
        Self::Delete,
        Self::RotateSecret,
        Self::RotateToken,
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
            Always => true,
            WhenReadsRotate => server.reads_may_rotate,
            Never => false,
        }
    }
}
