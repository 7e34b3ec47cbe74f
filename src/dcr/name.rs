//! A managed client's name: the caller's stable handle for it. Checked
//! wherever one comes in (an RPC, a `[[clients]]` table, an import).

use super::DcrError;

/// Longest name: a DNS label, so a name is also a safe file name and label.
pub const MAX_NAME_LEN: usize = 63;

/// Checks a name: 1 to [`MAX_NAME_LEN`] of `a-z 0-9 -`, starting and ending
/// with a letter or digit. The error names `field`.
pub fn check_name(field: &str, name: &str) -> Result<(), DcrError> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last());
    match valid {
        true => Ok(()),
        false => Err(DcrError::invalid(
            field,
            format!(
                "must be 1 to {MAX_NAME_LEN} of a-z 0-9 and -, starting and ending with a letter or digit"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["billing-api", "a", "x1", &"a".repeat(63)] {
            assert!(check_name("name", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Billing",
            "a_b",
            "a.b",
            "a/b",
            &"a".repeat(64),
            "é",
        ] {
            let err = check_name("name", bad).unwrap_err();
            assert!(err.to_string().contains("invalid name"), "{bad}: {err}");
        }
    }
}
