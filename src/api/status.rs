//! [`DcrError`] → `tonic::Status`, with ErrorInfo, BadRequest and RetryInfo.
//!
//! The table (also in the README):
//!
//! | upstream outcome | gRPC code |
//! |---|---|
//! | 400 `invalid_redirect_uri`, `invalid_client_metadata`, `invalid_software_statement`, other 400 | INVALID_ARGUMENT |
//! | 400 `unapproved_software_statement`; 403 or `access_denied` | PERMISSION_DENIED |
//! | 401 or `invalid_token` | UNAUTHENTICATED |
//! | 404 | NOT_FOUND |
//! | 405, 501 | UNIMPLEMENTED |
//! | 409 | ALREADY_EXISTS |
//! | 429 | RESOURCE_EXHAUSTED (+ RetryInfo from Retry-After) |
//! | 500 | INTERNAL |
//! | 502, 503, 504, connect failure | UNAVAILABLE (+ RetryInfo from Retry-After) |
//! | upstream timeout, caller deadline passed | DEADLINE_EXCEEDED |
//! | load shed (in-flight limit and queue full) | RESOURCE_EXHAUSTED (+ RetryInfo) |
//! | retries stopped | the last attempt's code (+ RetryInfo when known) |
//! | redirect, other 4xx | FAILED_PRECONDITION |
//! | malformed 2xx body, other 5xx | INTERNAL |

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::dcr::{DcrError, Operation, UpstreamFailure};

/// The `ErrorInfo.domain` of every error the gateway returns.
pub const ERROR_DOMAIN: &str = "dcr-gateway";

/// The RetryInfo delay suggested when the gateway sheds load.
const OVERLOAD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// Maps an error from operation `op` to a status a caller can act on.
pub fn to_status(err: &DcrError, op: Operation) -> Status {
    let mut details = ErrorDetails::new();
    let mut meta = HashMap::new();
    let (code, reason) = classify(err, &mut details, &mut meta);
    let mut message = err.to_string();
    if !op.spec().idempotent && err.delivery().may_have_taken_effect() {
        message.push_str(&format!(
            " ({} may have taken effect on the server; check before repeating it)",
            op.rpc_name()
        ));
    }
    details.set_error_info(reason, ERROR_DOMAIN, meta);
    Status::with_error_details(code, message, details)
}

/// The code and ErrorInfo reason for `err`, filling in its details.
fn classify(
    err: &DcrError,
    details: &mut ErrorDetails,
    meta: &mut HashMap<String, String>,
) -> (Code, String) {
    let (code, reason) = match err {
        DcrError::InvalidArgument { field, reason } => {
            details.add_bad_request_violation(field.clone(), reason.clone());
            (Code::InvalidArgument, "INVALID_FIELD")
        }
        DcrError::MissingToken { .. } => {
            (Code::Unauthenticated, "MISSING_REGISTRATION_ACCESS_TOKEN")
        }
        DcrError::Upstream(f) => {
            meta.insert("http_status".to_owned(), f.status.to_string());
            if let Some(d) = &f.description {
                meta.insert("error_description".to_owned(), d.clone());
            }
            if let Some(after) = f.retry_after {
                details.set_retry_info(Some(after));
            }
            let code = upstream_code(f);
            if code == Code::InvalidArgument
                && let Some(field) = violated_field(f)
            {
                details.add_bad_request_violation(field, f.description.clone().unwrap_or_default());
            }
            let reason = f
                .error
                .clone()
                .unwrap_or_else(|| format!("UPSTREAM_HTTP_{}", f.status));
            return (code, reason);
        }
        DcrError::Connect(_) => (Code::Unavailable, "UPSTREAM_UNREACHABLE"),
        DcrError::Timeout(_) => (Code::DeadlineExceeded, "UPSTREAM_TIMEOUT"),
        DcrError::Transport(_) => (Code::Unavailable, "UPSTREAM_CONNECTION_FAILED"),
        DcrError::MalformedResponse(_) => (Code::Internal, "UPSTREAM_MALFORMED_RESPONSE"),
        DcrError::ClientMismatch => (Code::Internal, "UPSTREAM_CLIENT_MISMATCH"),
        DcrError::Store(_) => (Code::Unavailable, "TOKEN_STORE_FAILED"),
        DcrError::DeadlineExceeded => (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        DcrError::DeadlinePassedAfterSend => {
            (Code::DeadlineExceeded, "DEADLINE_EXCEEDED_AFTER_SEND")
        }
        DcrError::Internal(_) => (Code::Internal, "INTERNAL"),
        DcrError::Unsupported(_) => (Code::Unimplemented, "UNSUPPORTED_BY_UPSTREAM"),
        DcrError::ForeignClientUri(_) => {
            (Code::FailedPrecondition, "FOREIGN_REGISTRATION_CLIENT_URI")
        }
        DcrError::CallerUnauthenticated(_) => (Code::Unauthenticated, "CALLER_UNAUTHENTICATED"),
        DcrError::TooManyCalls => {
            details.set_retry_info(Some(OVERLOAD_RETRY_AFTER));
            (Code::ResourceExhausted, "TOO_MANY_CALLS")
        }
        DcrError::Overloaded(_) => {
            details.set_retry_info(Some(OVERLOAD_RETRY_AFTER));
            (Code::ResourceExhausted, "OVERLOADED")
        }
        DcrError::RetryStopped {
            last,
            retry_after,
            attempts,
            ..
        } => {
            let (code, reason) = classify(last, details, meta);
            meta.insert("attempts".to_owned(), attempts.to_string());
            if let Some(after) = retry_after {
                details.set_retry_info(Some(*after));
            }
            return (code, reason);
        }
    };
    (code, reason.to_owned())
}

/// The gRPC code for an HTTP error answer.
fn upstream_code(f: &UpstreamFailure) -> Code {
    match (f.status, f.error.as_deref()) {
        (_, Some("invalid_token")) | (401, _) => Code::Unauthenticated,
        (_, Some("access_denied" | "unapproved_software_statement")) | (403, _) => {
            Code::PermissionDenied
        }
        (400, _) => Code::InvalidArgument,
        (404, _) => Code::NotFound,
        (405 | 501, _) => Code::Unimplemented,
        (409, _) => Code::AlreadyExists,
        (429, _) => Code::ResourceExhausted,
        (502..=504, _) => Code::Unavailable,
        (300..=399, _) | (402..=499, _) => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}

/// The request field a 400 is about, where the server's code or text names it.
fn violated_field(f: &UpstreamFailure) -> Option<String> {
    let field = match f.error.as_deref() {
        Some("invalid_redirect_uri") => "redirect_uris",
        Some("invalid_software_statement") => "software_statement",
        _ => {
            let text = f.description.as_deref()?;
            // Longest names first, so `client_uri` does not claim `tos_uri` text etc.
            const NAMES: [(&str, &str); 14] = [
                ("token_endpoint_auth_method", "token_endpoint_auth_method"),
                ("software_statement", "software_statement"),
                ("software_version", "software_version"),
                ("response_type", "response_types"),
                ("redirect_uri", "redirect_uris"),
                ("client_name", "client_name"),
                ("software_id", "software_id"),
                ("grant_type", "grant_types"),
                ("client_uri", "client_uri"),
                ("policy_uri", "policy_uri"),
                ("jwks_uri", "jwks_uri"),
                ("logo_uri", "logo_uri"),
                ("contacts", "contacts"),
                ("tos_uri", "tos_uri"),
            ];
            NAMES.iter().find(|(needle, _)| text.contains(needle))?.1
        }
    };
    Some(format!("metadata.{field}"))
}
