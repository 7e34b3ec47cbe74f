//! Drift: a managed client changed at the server behind the gateway's back
//! (an operator's console, another tool, an attacker with its registration
//! access token).
//!
//! The server's answers are compared with each other, not with what the
//! gateway asked for: a server fills defaults and normalises what it is sent
//! (SharkAuth adds `grant_types` and `response_types`, answers a
//! registration with the scope re-joined but a read with the scope as sent),
//! so `desired` rarely equals what it holds. What the server held right after
//! the gateway applied its metadata is kept in the record (`applied`); a
//! later read that differs from it, once both are normalised, is drift.

use serde_json::{Map, Value};

use crate::dcr::ClientMetadata;
use crate::dcr::json::metadata_to_json;

/// Members whose order a server need not keep.
const UNORDERED: [&str; 4] = ["redirect_uris", "grant_types", "response_types", "contacts"];

/// The server's metadata as compared: empty members dropped (a server may
/// leave out what is empty, or send it empty), lists sorted without
/// duplicates, and the scope's values sorted and joined by single spaces.
pub fn observed(metadata: &ClientMetadata) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in metadata_to_json(metadata) {
        let value = match (key.as_str(), value) {
            ("scope", Value::String(scope)) => {
                let mut values: Vec<&str> = scope.split_whitespace().collect();
                values.sort_unstable();
                values.dedup();
                Value::String(values.join(" "))
            }
            (k, Value::Array(mut items)) if UNORDERED.contains(&k) => {
                items.sort_by_key(|v| v.to_string());
                items.dedup();
                Value::Array(items)
            }
            (_, v) => v,
        };
        let empty = match &value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            out.insert(key, value);
        }
    }
    out
}

/// The members that differ between what was applied and what the server
/// holds now, by name (for the log; never their values, which a log must
/// not carry).
pub fn drifted(applied: &Map<String, Value>, now: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = applied
        .keys()
        .chain(now.keys())
        .filter(|k| applied.get(*k) != now.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(scope: &str, grants: &[&str], redirects: &[&str]) -> ClientMetadata {
        ClientMetadata {
            client_name: Some("billing".into()),
            scope: Some(scope.into()),
            grant_types: grants.iter().map(|s| s.to_string()).collect(),
            redirect_uris: redirects.iter().map(|s| s.to_string()).collect(),
            ..ClientMetadata::default()
        }
    }

    #[test]
    fn normalisation_is_not_drift_and_a_change_is() {
        // SharkAuth answers a registration with the scope re-joined and a
        // read with it as sent; order of grant types is the server's.
        let registered = observed(&metadata(
            "a b",
            &["client_credentials", "refresh_token"],
            &[],
        ));
        let read = observed(&metadata(
            "  b   a ",
            &["refresh_token", "client_credentials"],
            &[],
        ));
        assert!(drifted(&registered, &read).is_empty());

        let hacked = observed(&ClientMetadata {
            client_name: Some("hacked".into()),
            ..metadata("a b", &["client_credentials"], &["https://evil.example/cb"])
        });
        assert_eq!(
            drifted(&registered, &hacked),
            ["client_name", "grant_types", "redirect_uris"]
        );
    }
}
