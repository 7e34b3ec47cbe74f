//! The closest valid key to a mistyped one: a config file with an unknown
//! key gets "did you mean", not the list of every key the parser knows
//! (about sixty at the top level).

/// Rewrites the parser's "unknown field `x`, expected one of `a`, `b`, …"
/// as "unknown key `x`; did you mean `y`?", or, when no key is close, as
/// where every key is listed. Any other message is returned unchanged.
pub fn unknown_key(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((key, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    // The valid keys are every other backquoted word after the key.
    let closest = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|valid| (distance(key, valid), valid))
        .min();
    match closest {
        Some((d, valid)) if d <= (key.chars().count() / 3).max(2) => {
            format!("unknown key `{key}`; did you mean `{valid}`?")
        }
        _ => format!(
            "unknown key `{key}` (`dcr-gateway serve --help` lists every setting; a key is \
             its flag without `--`, with `_` for `-`)"
        ),
    }
}

/// Levenshtein distance between `a` and `b`, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_miss_gets_its_key_and_nothing_else() {
        let parser = "unknown field `upstream_timout`, expected one of `listen`, \
                      `upstream_timeout`, `connect_timeout`";
        assert_eq!(
            unknown_key(parser),
            "unknown key `upstream_timout`; did you mean `upstream_timeout`?"
        );
        let far = unknown_key("unknown field `colour`, expected `listen` or `upstream`");
        assert!(far.starts_with("unknown key `colour` ("), "{far}");
        assert!(!far.contains("listen"), "{far}");
        assert_eq!(unknown_key("invalid type"), "invalid type");
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }
}
