//! [`DcrError`] → `tonic::Status`, with ErrorInfo, BadRequest and RetryInfo.
//!
//! The README's error table is the contract: every status carries ErrorInfo
//! with domain `dcr-gateway` and one of the gateway's own UPPER_SNAKE reasons
//! (Google AIP-193), so callers branch on a closed set; an upstream's RFC
//! error code travels in metadata `error`, next to `http_status` and
//! `error_description`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::dcr::{DcrError, Operation, UpstreamFailure};

/// The `ErrorInfo.domain` of every error the gateway returns.
pub const ERROR_DOMAIN: &str = "dcr-gateway";

/// The RetryInfo delay suggested when the gateway sheds load.
const OVERLOAD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// Maps an error from operation `op` (`None`: a managed-client RPC) to a
/// status a caller can act on.
pub fn to_status(err: &DcrError, op: Option<Operation>) -> Status {
    let mut details = ErrorDetails::new();
    let mut meta = HashMap::new();
    let (code, reason) = classify(err, &mut details, &mut meta);
    let mut message = err.to_string();
    if let Some(op) = op
        && !op.spec().idempotent
        && err.delivery().may_have_taken_effect()
    {
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
            if let Some(error) = &f.error {
                meta.insert("error".to_owned(), error.clone());
            }
            let (code, reason) = upstream_code(f);
            if code == Code::InvalidArgument
                && let Some(field) = violated_field(f)
            {
                details.add_bad_request_violation(field, f.description.clone().unwrap_or_default());
            }
            return (code, reason.to_owned());
        }
        DcrError::Connect(_) => (Code::Unavailable, "UPSTREAM_UNREACHABLE"),
        DcrError::Timeout(_) => (Code::DeadlineExceeded, "UPSTREAM_TIMEOUT"),
        DcrError::Transport(_) => (Code::Unavailable, "UPSTREAM_CONNECTION_FAILED"),
        DcrError::MalformedResponse(_) => (Code::Internal, "UPSTREAM_MALFORMED_RESPONSE"),
        DcrError::ClientMismatch => (Code::Internal, "UPSTREAM_CLIENT_MISMATCH"),
        // A full store stays full: retrying cannot help, so no RetryInfo and
        // not UNAVAILABLE.
        DcrError::Store(crate::dcr::StoreError::Full(_)) => {
            (Code::ResourceExhausted, "TOKEN_STORE_FULL")
        }
        DcrError::Store(_) => (Code::Unavailable, "TOKEN_STORE_FAILED"),
        DcrError::LimitReached { what, max, setting } => {
            meta.insert("limit".to_owned(), (*what).to_owned());
            meta.insert("max".to_owned(), max.to_string());
            meta.insert("setting".to_owned(), (*setting).to_owned());
            (Code::ResourceExhausted, "NAMESPACE_LIMIT_REACHED")
        }
        DcrError::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
        DcrError::DeadlineExceeded => (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        DcrError::DeadlinePassedAfterSend => {
            (Code::DeadlineExceeded, "DEADLINE_EXCEEDED_AFTER_SEND")
        }
        DcrError::Internal(_) => (Code::Internal, "INTERNAL"),
        DcrError::Unsupported(_) => (Code::Unimplemented, "UNSUPPORTED_BY_UPSTREAM"),
        DcrError::ManagedClientNotFound(_) => (Code::NotFound, "MANAGED_CLIENT_NOT_FOUND"),
        DcrError::ClientLossNotProven { cause, .. } => {
            if let DcrError::Upstream(f) = cause.as_ref() {
                meta.insert("http_status".to_owned(), f.status.to_string());
                if let Some(error) = &f.error {
                    meta.insert("error".to_owned(), error.clone());
                }
            }
            (Code::FailedPrecondition, "CLIENT_LOSS_NOT_PROVEN")
        }
        DcrError::ManagedClientChanged(_) => (Code::Aborted, "MANAGED_CLIENT_CHANGED"),
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

/// The gRPC code and the gateway's own reason for an HTTP error answer. The
/// reason is one of a fixed set (AIP-193), never the server's text: the
/// server's RFC 7591 or RFC 6750 code goes to ErrorInfo metadata `error`.
fn upstream_code(f: &UpstreamFailure) -> (Code, &'static str) {
    match (f.status, f.error.as_deref()) {
        (_, Some("invalid_token")) | (401, _) => (Code::Unauthenticated, "UPSTREAM_TOKEN_REJECTED"),
        (_, Some("unapproved_software_statement")) => {
            (Code::PermissionDenied, "UNAPPROVED_SOFTWARE_STATEMENT")
        }
        (_, Some("access_denied")) | (403, _) => (Code::PermissionDenied, "UPSTREAM_ACCESS_DENIED"),
        (400, Some("invalid_redirect_uri")) => (Code::InvalidArgument, "INVALID_REDIRECT_URI"),
        (400, Some("invalid_client_metadata")) => {
            (Code::InvalidArgument, "INVALID_CLIENT_METADATA")
        }
        (400, Some("invalid_software_statement")) => {
            (Code::InvalidArgument, "INVALID_SOFTWARE_STATEMENT")
        }
        (400, _) => (Code::InvalidArgument, "UPSTREAM_BAD_REQUEST"),
        (404, _) => (Code::NotFound, "CLIENT_NOT_FOUND"),
        (405 | 501, _) => (Code::Unimplemented, "UNSUPPORTED_BY_UPSTREAM"),
        (409, _) => (Code::AlreadyExists, "UPSTREAM_CONFLICT"),
        (429, _) => (Code::ResourceExhausted, "UPSTREAM_RATE_LIMITED"),
        (502..=504, _) => (Code::Unavailable, "UPSTREAM_UNAVAILABLE"),
        (300..=399, _) => (Code::FailedPrecondition, "UPSTREAM_REDIRECT"),
        (402..=499, _) => (Code::FailedPrecondition, "UPSTREAM_REJECTED"),
        _ => (Code::Internal, "UPSTREAM_SERVER_ERROR"),
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
