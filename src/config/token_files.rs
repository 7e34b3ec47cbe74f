//! A declared client's token files (`[[clients.tokens]]`): access tokens
//! delivered next to its credentials file, each for its scopes and
//! resources, named by the client and a label.

use serde::Deserialize;

use super::ConfigError;
use crate::dcr::{DcrError, check_name};
use crate::managed::{TokenAsk, TokenFile};

/// Most token files one declared client may have.
pub const MAX_TOKEN_FILES: usize = 8;

/// One `[[clients.tokens]]` table as written.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawTokenFile {
    /// Tells the client's token files apart: the file is
    /// `<name>.<label>.token` [default: none, `<name>.token`].
    #[serde(default)]
    pub label: Option<String>,
    /// Scopes to ask for [default: the client's registered scope].
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Resources the token is for (RFC 8707) [default: none].
    #[serde(default)]
    pub resource: Vec<String>,
}

/// Checks the token files of the declared client at `index`; `files`:
/// whether a credentials folder is set. `error` makes an error naming the
/// client and the field.
pub(super) fn token_files(
    raw: Vec<RawTokenFile>,
    files: bool,
    error: impl Fn(&str, String) -> ConfigError,
) -> Result<Vec<TokenFile>, ConfigError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    if !files {
        return Err(error("tokens", "needs --credentials-dir".into()));
    }
    if raw.len() > MAX_TOKEN_FILES {
        return Err(error(
            "tokens",
            format!("at most {MAX_TOKEN_FILES} token files per client"),
        ));
    }
    let mut checked: Vec<TokenFile> = Vec::with_capacity(raw.len());
    for (j, t) in raw.into_iter().enumerate() {
        if let Some(label) = &t.label {
            check_name("label", label)
                .map_err(|e| error(&format!("tokens[{j}].label"), reason(e)))?;
        }
        if checked.iter().any(|c| c.label == t.label) {
            return Err(error(
                &format!("tokens[{j}].label"),
                "another token file of this client has the same label".into(),
            ));
        }
        let ask = TokenAsk::new(t.scopes, t.resource).map_err(|e| match e {
            DcrError::InvalidArgument { field, reason } => {
                error(&format!("tokens[{j}].{field}"), reason)
            }
            other => error(&format!("tokens[{j}]"), other.to_string()),
        })?;
        checked.push(TokenFile {
            label: t.label,
            ask,
        });
    }
    Ok(checked)
}

/// The reason of a check's error, without its field.
fn reason(e: DcrError) -> String {
    match e {
        DcrError::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    }
}
