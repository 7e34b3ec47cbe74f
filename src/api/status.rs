//! [`DcrError`] → `tonic::Status`, with ErrorInfo, BadRequest and RetryInfo.
//!
//! The README's error table is the contract: every status carries ErrorInfo
//! with domain `dcr-gateway` and one of the gateway's own UPPER_SNAKE reasons
//! (Google AIP-193, [`Reason`], decided by the domain's classification), so
//! callers branch on a closed set; an upstream's RFC error code travels in
//! metadata `error`, next to `http_status` and `error_description`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::dcr::{DcrError, Operation, Reason, UpstreamFailure, upstream_reason};

/// The `ErrorInfo.domain` of every error the gateway returns.
pub const ERROR_DOMAIN: &str = "dcr-gateway";

/// The RetryInfo delay suggested when the gateway sheds load.
const OVERLOAD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// Maps an error from operation `op` (`None`: a managed-client RPC) to a
/// status a caller can act on: the code and reason from the error's one
/// classification ([`DcrError::class`]), the details from what it carries.
pub fn to_status(err: &DcrError, op: Option<Operation>) -> Status {
    let class = err.class();
    let mut details = ErrorDetails::new();
    let mut meta = HashMap::new();
    describe(err, &mut details, &mut meta);
    let mut message = err.to_string();
    if let Some(op) = op
        && !op.spec().idempotent
        && class.delivery.may_have_taken_effect()
    {
        message.push_str(&format!(
            " ({} may have taken effect on the server; check before repeating it)",
            op.rpc_name()
        ));
    }
    details.set_error_info(class.reason.as_str(), ERROR_DOMAIN, meta);
    Status::with_error_details(code(class.reason), message, details)
}

/// The gRPC code of a reason: the edge's one mapping from the domain's
/// classification to gRPC.
pub fn code(reason: Reason) -> Code {
    use Reason::*;
    match reason {
        InvalidField
        | InvalidRedirectUri
        | InvalidClientMetadata
        | InvalidSoftwareStatement
        | InvalidScope
        | UpstreamBadRequest => Code::InvalidArgument,
        MissingRegistrationAccessToken | UpstreamTokenRejected | CallerUnauthenticated => {
            Code::Unauthenticated
        }
        UnapprovedSoftwareStatement | UpstreamAccessDenied => Code::PermissionDenied,
        ClientNotFound | ManagedClientNotFound => Code::NotFound,
        UnsupportedByUpstream => Code::Unimplemented,
        UpstreamConflict => Code::AlreadyExists,
        // A full store stays full: not UNAVAILABLE, which invites retries.
        UpstreamRateLimited
        | TokenStoreFull
        | NamespaceLimitReached
        | TooManyCalls
        | Overloaded => Code::ResourceExhausted,
        UpstreamUnavailable
        | UpstreamUnreachable
        | UpstreamConnectionFailed
        | TokenStoreFailed
        | ShuttingDown => Code::Unavailable,
        UpstreamRedirect
        | UpstreamRejected
        | ClientLossNotProven
        | ForeignRegistrationClientUri
        | UnauthorizedClient
        | UpstreamClientRejected => Code::FailedPrecondition,
        UpstreamServerError | UpstreamMalformedResponse | UpstreamClientMismatch | Internal => {
            Code::Internal
        }
        UpstreamTimeout | DeadlineExceeded | DeadlineExceededAfterSend => Code::DeadlineExceeded,
        ManagedClientChanged => Code::Aborted,
    }
}

/// Fills in the details `err` carries: the field at fault, what the server
/// said, the limit reached, when to retry.
fn describe(err: &DcrError, details: &mut ErrorDetails, meta: &mut HashMap<String, String>) {
    match err {
        DcrError::InvalidArgument { field, reason } => {
            details.add_bad_request_violation(field.clone(), reason.clone());
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
            if code(upstream_reason(f)) == Code::InvalidArgument
                && let Some(field) = violated_field(f)
            {
                details.add_bad_request_violation(field, f.description.clone().unwrap_or_default());
            }
        }
        DcrError::LimitReached { what, max, setting } => {
            meta.insert("limit".to_owned(), (*what).to_owned());
            meta.insert("max".to_owned(), max.to_string());
            meta.insert("setting".to_owned(), (*setting).to_owned());
        }
        DcrError::ClientLossNotProven { cause, .. } => {
            if let DcrError::Upstream(f) = cause.as_ref() {
                meta.insert("http_status".to_owned(), f.status.to_string());
                if let Some(error) = &f.error {
                    meta.insert("error".to_owned(), error.clone());
                }
            }
        }
        DcrError::TooManyCalls | DcrError::Overloaded(_) => {
            details.set_retry_info(Some(OVERLOAD_RETRY_AFTER));
        }
        DcrError::RetryStopped {
            last,
            retry_after,
            attempts,
            ..
        } => {
            describe(last, details, meta);
            meta.insert("attempts".to_owned(), attempts.to_string());
            if let Some(after) = retry_after {
                details.set_retry_info(Some(*after));
            }
        }
        _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `DeadlineExceeded` → `DEADLINE_EXCEEDED`.
    fn upper_snake(code: Code) -> String {
        let mut out = String::new();
        for (i, c) in format!("{code:?}").chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    #[test]
    fn the_readme_error_table_lists_every_reason_with_its_code() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("\n## Errors")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has an Errors section");
        for reason in Reason::ALL {
            let cell = format!("| `{}` |", reason.as_str());
            let rows: Vec<&str> = table.lines().filter(|l| l.contains(&cell)).collect();
            assert!(!rows.is_empty(), "README's error table lacks {reason}");
            let code = upper_snake(code(*reason));
            for row in rows {
                assert!(
                    row.contains(&format!("| {code} {cell}")),
                    "README gives {reason} another code than {code}: {row}"
                );
            }
        }
    }
}
