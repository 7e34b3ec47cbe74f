//! The name that keeps one deployment's Redis keys apart from another's.
//!
//! Every key is `NAME:` followed by the store key, and a name is 1 to 64 of
//! `A-Z a-z 0-9 _ -`: no `:`, so the first `:` of a key ends its name, and no
//! name's keyspace (`NAME:*`) holds another's keys. Free-text prefixes could not
//! promise that: `dcr-gateway:` scanned every key of `dcr-gateway:staging:` too.

use std::fmt;

/// Longest name.
const MAX_REDIS_PREFIX_LEN: usize = 64;

/// Ends the name in every key.
const SEP: char = ':';

/// Bytes of digest in a hash tag (12 hex digits: slots are 16,384).
const TAG_BYTES: usize = 6;

/// A validated Redis key prefix name, and whether keys carry a hash tag.
///
/// On Redis Cluster every key a script touches must hash to one slot, so
/// there each key carries `{TAG}` right after its space (`NAME:`,
/// `NAME~lease:`, ...), where TAG is a digest of the key's group: a
/// client's token, lease and fence share their client's; a managed name's
/// record, lease and fence share the name's. A digest, not the key itself:
/// a key part may hold `{` or `}`, which would move or empty the tag. A
/// lone node or Sentinel keeps the untagged layout existing data has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisPrefix {
    name: String,
    tagged: bool,
}

/// Why a prefix is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Nothing left to name the keyspace.
    #[error("must not be empty: a name such as dcr-gateway")]
    Empty,
    /// A `:` inside the name would let one keyspace contain another.
    #[error(
        "{0:?} has a `:` inside: keys are NAME:..., and a name with `:` would hold another \
         deployment's keys (as dcr-gateway: held dcr-gateway:staging:); use one name of \
         A-Z a-z 0-9 _ -, e.g. {suggestion:?}",
        suggestion = .0.trim_end_matches(SEP).replace(SEP, "-")
    )]
    Colon(String),
    /// Too long, or a character outside the alphabet.
    #[error("{0:?} is not a name of 1 to 64 of A-Z a-z 0-9 _ -")]
    Invalid(String),
}

impl RedisPrefix {
    /// Parses a name. One trailing `:` is accepted and dropped: it is the
    /// separator every key carries anyway, so `dcr-gateway:` (the old default)
    /// and `dcr-gateway` name the same keys, and existing data stays reachable.
    pub fn parse(text: &str) -> Result<Self, PrefixError> {
        let name = text.strip_suffix(SEP).unwrap_or(text);
        if name.is_empty() {
            return Err(PrefixError::Empty);
        }
        if name.contains(SEP) {
            return Err(PrefixError::Colon(text.to_owned()));
        }
        let valid = name.len() <= MAX_REDIS_PREFIX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(PrefixError::Invalid(text.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            tagged: false,
        })
    }

    /// The same name, with the hash-tagged layout Redis Cluster needs.
    pub fn tagged(self) -> Self {
        Self {
            tagged: true,
            ..self
        }
    }

    /// `{TAG}` of `group` in the tagged layout, else nothing.
    fn tag(&self, group: &str) -> String {
        if !self.tagged {
            return String::new();
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, group.as_bytes());
        let hex: String = digest.as_ref()[..TAG_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{{{hex}}}")
    }

    /// `rest` without its tag (in the tagged layout).
    fn untag<'a>(&self, rest: &'a str) -> Option<&'a str> {
        if !self.tagged {
            return Some(rest);
        }
        let (tag, key) = rest.strip_prefix('{')?.split_at_checked(TAG_BYTES * 2)?;
        tag.bytes().all(|b| b.is_ascii_hexdigit()).then_some(())?;
        key.strip_prefix('}')
    }

    /// The Redis key of a store key.
    pub fn key(&self, store_key: &str) -> String {
        format!("{}{SEP}{}{store_key}", self.name, self.tag(store_key))
    }

    /// The Redis key of the cross-replica lease on a store key, in
    /// `group`'s slot. `~` is not a name character and `:` is not `~`, so
    /// neither this nor [`RedisPrefix::fence_key`] can fall in this or any
    /// other prefix's token keyspace (nor in [`RedisPrefix::pattern`]).
    pub fn lease_key(&self, group: &str, store_key: &str) -> String {
        format!("{}~lease{SEP}{}{store_key}", self.name, self.tag(group))
    }

    /// The Redis key of the lease's fencing counter, in `group`'s slot.
    pub fn fence_key(&self, group: &str, store_key: &str) -> String {
        format!("{}~fence{SEP}{}{store_key}", self.name, self.tag(group))
    }

    /// The Redis key of a managed client record's store key: like
    /// [`RedisPrefix::lease_key`], outside every prefix's token keyspace.
    pub fn record_key(&self, store_key: &str) -> String {
        format!(
            "{}~client{SEP}{}{store_key}",
            self.name,
            self.tag(store_key)
        )
    }

    /// The `SCAN MATCH` pattern of every managed client record of this prefix.
    pub fn record_pattern(&self) -> String {
        format!("{}~client{SEP}*", self.name)
    }

    /// The `SCAN MATCH` pattern of every managed client record whose store
    /// key starts with `start` (glob characters in it escaped; a pattern
    /// only narrows the scan, readers check each key).
    pub fn record_pattern_from(&self, start: &str) -> String {
        let mut pattern = format!("{}~client{SEP}", self.name);
        if self.tagged {
            pattern.push_str("{*}");
        }
        for c in start.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// The Redis key of the set of record names that hold one client, by
    /// its index key (like [`RedisPrefix::lease_key`], outside every
    /// prefix's token keyspace).
    pub fn client_index_key(&self, index_key: &str) -> String {
        format!("{}~cidx{SEP}{}{index_key}", self.name, self.tag(index_key))
    }

    /// The store key of a record's Redis key, if it is one of this prefix's.
    pub fn record_store_key<'a>(&self, redis_key: &'a str) -> Option<&'a str> {
        let rest = redis_key
            .strip_prefix(self.name.as_str())?
            .strip_prefix("~client")?
            .strip_prefix(SEP)?;
        self.untag(rest)
    }

    /// The `SCAN MATCH` pattern of every key of this prefix (the name holds no
    /// glob character).
    pub fn pattern(&self) -> String {
        format!("{}{SEP}*", self.name)
    }

    /// The store key of a Redis key, if it is one of this prefix's.
    pub fn store_key<'a>(&self, redis_key: &'a str) -> Option<&'a str> {
        let rest = redis_key
            .strip_prefix(self.name.as_str())?
            .strip_prefix(SEP)?;
        self.untag(rest)
    }
}

impl fmt::Display for RedisPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_overlap_and_a_colon_inside_is_refused() {
        let a = RedisPrefix::parse("a").unwrap();
        let ab = RedisPrefix::parse("a-b").unwrap();
        assert_eq!(a.key("x"), "a:x");
        assert_eq!(a.store_key(&ab.key("x")), None);
        assert_eq!(ab.store_key(&a.key("b:x")), None);
        assert_eq!(a.store_key("a:b:x"), Some("b:x"));
        assert_eq!(
            RedisPrefix::parse("dcr-gateway:").unwrap().to_string(),
            "dcr-gateway"
        );
        assert_eq!(a.pattern(), "a:*");
        assert_eq!(
            a.store_key(&a.record_key("x")),
            None,
            "a record is no token"
        );
        assert_eq!(
            a.record_store_key(&a.record_key("u\u{1f}n\u{1f}x")),
            Some("u\u{1f}n\u{1f}x")
        );
        assert_eq!(a.record_store_key(&ab.record_key("x")), None);
        assert_eq!(a.record_pattern(), "a~client:*");

        let err = RedisPrefix::parse("dcr-gateway:staging:").unwrap_err();
        assert!(err.to_string().contains("\"dcr-gateway-staging\""), "{err}");
        assert_eq!(RedisPrefix::parse(":"), Err(PrefixError::Empty));
        assert_eq!(RedisPrefix::parse(""), Err(PrefixError::Empty));
        for bad in ["a*", "a b", "é", &"x".repeat(65), "a::"] {
            assert!(RedisPrefix::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RedisPrefix::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn tagged_keys_of_one_group_share_a_slot_tag_and_read_back() {
        let p = RedisPrefix::parse("a").unwrap().tagged();
        let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_owned();
        let client = "u\u{1f}n\u{1f}}c{";
        let token = p.key(client);
        assert_eq!(tag(&token), tag(&p.lease_key(client, client)));
        assert_eq!(tag(&token), tag(&p.fence_key(client, client)));
        assert_eq!(p.store_key(&token), Some(client));
        let name = "u\u{1f}n\u{1f}svc";
        let record = p.record_key(name);
        assert_eq!(
            tag(&record),
            tag(&p.lease_key(name, "u\u{1f}n\u{1f}\u{1e}svc"))
        );
        assert_ne!(tag(&record), tag(&token), "two groups, two tags");
        assert_eq!(p.record_store_key(&record), Some(name));
        assert_eq!(p.record_pattern_from("u\u{1f}n"), "a~client:{*}u\u{1f}n*");
        // Untagged keys are not this layout's.
        let plain = RedisPrefix::parse("a").unwrap();
        assert_eq!(p.store_key(&plain.key(client)), None);
        assert_eq!(plain.key(client), "a:u\u{1f}n\u{1f}}c{");
    }
}
