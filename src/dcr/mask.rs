//! Update masks: which metadata fields a partial update changes.

use super::{ClientMetadata, DcrError, json, limits};

/// The path that replaces every extension member at once.
const ADDITIONAL: &str = "additional_metadata";

/// Validates mask paths and returns them in canonical form (without the optional
/// `metadata.` prefix). An unknown path is INVALID_ARGUMENT naming it.
pub fn normalize_mask(paths: &[String]) -> Result<Vec<String>, DcrError> {
    if paths.len() > limits::MAX_MASK_PATHS {
        return Err(DcrError::invalid(
            "update_mask.paths",
            format!("has more than {} paths", limits::MAX_MASK_PATHS),
        ));
    }
    paths
        .iter()
        .map(|raw| {
            let path = raw.strip_prefix("metadata.").unwrap_or(raw);
            let known = json::TYPED_METADATA.contains(&path)
                || path == ADDITIONAL
                || path
                    .strip_prefix("additional_metadata.")
                    .is_some_and(|key| !key.is_empty() && key.len() <= limits::MAX_STRING_BYTES);
            if known {
                Ok(path.to_owned())
            } else {
                Err(DcrError::invalid(
                    "update_mask.paths",
                    format!("unknown path {raw:?}: use a ClientMetadata field name"),
                ))
            }
        })
        .collect()
}

/// Copies the fields named by `mask` (canonical paths) from `new` into `current`.
pub fn apply_mask(current: &mut ClientMetadata, new: &ClientMetadata, mask: &[String]) {
    for path in mask {
        match path.as_str() {
            "client_name" => current.client_name = new.client_name.clone(),
            "redirect_uris" => current.redirect_uris = new.redirect_uris.clone(),
            "grant_types" => current.grant_types = new.grant_types.clone(),
            "response_types" => current.response_types = new.response_types.clone(),
            "scope" => current.scope = new.scope.clone(),
            "token_endpoint_auth_method" => {
                current.token_endpoint_auth_method = new.token_endpoint_auth_method.clone()
            }
            "client_uri" => current.client_uri = new.client_uri.clone(),
            "logo_uri" => current.logo_uri = new.logo_uri.clone(),
            "tos_uri" => current.tos_uri = new.tos_uri.clone(),
            "policy_uri" => current.policy_uri = new.policy_uri.clone(),
            "contacts" => current.contacts = new.contacts.clone(),
            "jwks_uri" => current.jwks_uri = new.jwks_uri.clone(),
            "jwks" => current.jwks = new.jwks.clone(),
            "software_id" => current.software_id = new.software_id.clone(),
            "software_version" => current.software_version = new.software_version.clone(),
            "software_statement" => current.software_statement = new.software_statement.clone(),
            ADDITIONAL => current.additional = new.additional.clone(),
            other => {
                if let Some(key) = other.strip_prefix("additional_metadata.") {
                    match new.additional.get(key) {
                        Some(v) => current.additional.insert(key.to_owned(), v.clone()),
                        None => current.additional.remove(key),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_path_is_named() {
        let err = normalize_mask(&["metadata.client_name".into(), "colour".into()]).unwrap_err();
        assert!(err.to_string().contains("\"colour\""), "{err}");
        assert!(err.to_string().contains("update_mask.paths"), "{err}");
    }

    #[test]
    fn mask_changes_only_named_fields() {
        let mut current = ClientMetadata {
            client_name: Some("old".into()),
            contacts: vec!["a@example.com".into()],
            ..Default::default()
        };
        current.additional.insert("tenant".into(), "t1".into());
        current.additional.insert("keep".into(), true.into());
        let mut new = ClientMetadata {
            client_name: Some("new".into()),
            ..Default::default()
        };
        new.additional.insert("tenant".into(), "t2".into());
        let mask =
            normalize_mask(&["client_name".into(), "additional_metadata.tenant".into()]).unwrap();
        apply_mask(&mut current, &new, &mask);
        assert_eq!(current.client_name.as_deref(), Some("new"));
        assert_eq!(current.contacts, vec!["a@example.com".to_string()]);
        assert_eq!(current.additional["tenant"], "t2");
        assert_eq!(current.additional["keep"], true);
    }
}
