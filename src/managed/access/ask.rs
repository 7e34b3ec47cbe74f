//! What a caller asks a token for, checked and put in one order, so asks
//! that differ only in order or repetition share one token.

use crate::dcr::DcrError;

/// Most scopes one ask may name.
pub const MAX_SCOPES: usize = 64;
/// Longest scope, in bytes.
pub const MAX_SCOPE_BYTES: usize = 256;
/// Most resources one ask may name.
pub const MAX_RESOURCES: usize = 16;
/// Longest resource URI, in bytes.
pub const MAX_RESOURCE_BYTES: usize = 2048;

/// The scopes and resources of a token, sorted and without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TokenAsk {
    /// Scopes; empty asks for the client's registered scope.
    pub scopes: Vec<String>,
    /// Resource URIs (RFC 8707).
    pub resources: Vec<String>,
}

impl TokenAsk {
    /// Checks `scopes` (RFC 6749 §3.3 scope tokens) and `resources`
    /// (absolute URIs without a fragment, RFC 8707 §2); errors name the
    /// field and its index.
    pub fn new(mut scopes: Vec<String>, mut resources: Vec<String>) -> Result<Self, DcrError> {
        if scopes.len() > MAX_SCOPES {
            return Err(DcrError::invalid(
                "scopes",
                format!("has more than {MAX_SCOPES} entries"),
            ));
        }
        for (i, scope) in scopes.iter().enumerate() {
            let field = || format!("scopes[{i}]");
            if scope.is_empty() || scope.len() > MAX_SCOPE_BYTES {
                return Err(DcrError::invalid(
                    field(),
                    format!("must be 1 to {MAX_SCOPE_BYTES} bytes"),
                ));
            }
            if !scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(DcrError::invalid(
                    field(),
                    "must be visible ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)",
                ));
            }
        }
        if resources.len() > MAX_RESOURCES {
            return Err(DcrError::invalid(
                "resource",
                format!("has more than {MAX_RESOURCES} entries"),
            ));
        }
        for (i, resource) in resources.iter().enumerate() {
            let field = || format!("resource[{i}]");
            if resource.len() > MAX_RESOURCE_BYTES {
                return Err(DcrError::invalid(
                    field(),
                    format!("is longer than {MAX_RESOURCE_BYTES} bytes"),
                ));
            }
            match url::Url::parse(resource) {
                Ok(url) if url.fragment().is_none() && !url.cannot_be_a_base() => {}
                _ => {
                    return Err(DcrError::invalid(
                        field(),
                        "must be an absolute URI without a fragment (RFC 8707)",
                    ));
                }
            }
        }
        scopes.sort_unstable();
        scopes.dedup();
        resources.sort_unstable();
        resources.dedup();
        Ok(Self { scopes, resources })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn asks_in_another_order_are_the_same_ask() {
        let a = TokenAsk::new(strings(&["b", "a", "b"]), strings(&["https://x/"])).unwrap();
        let b = TokenAsk::new(strings(&["a", "b"]), strings(&["https://x/", "https://x/"]));
        assert_eq!(a, b.unwrap());
    }

    #[test]
    fn bad_asks_name_their_field() {
        for (scopes, resources, field) in [
            (strings(&["ok", "has space"]), vec![], "scopes[1]"),
            (strings(&[""]), vec![], "scopes[0]"),
            (strings(&["q\"uote"]), vec![], "scopes[0]"),
            (vec![], strings(&["relative/path"]), "resource[0]"),
            (
                vec![],
                strings(&["https://x/", "https://x/#frag"]),
                "resource[1]",
            ),
            (vec!["s".to_string(); MAX_SCOPES + 1], vec![], "scopes"),
        ] {
            match TokenAsk::new(scopes, resources) {
                Err(DcrError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
