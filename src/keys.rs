//! Client keys for `private_key_jwt` (RFC 7523): the gateway makes each
//! managed client's key pair itself (ECDSA P-256, ES256), registers only the
//! public half as `jwks`, keeps the private half sealed in the store like a
//! secret, and signs a fresh short-lived assertion for every token request.
//! The private key never leaves the gateway: not in a file, a log, a trace
//! or `Debug`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::dcr::{AssertionSigner, DcrError, unix_now};

/// How long an assertion is valid after it is signed: long enough for one
/// attempt's trip to the token endpoint and the servers' clock skew, short
/// enough that one read from a log or a proxy is useless soon.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);
/// The JWS algorithm every key signs with.
pub const ALGORITHM: &str = "ES256";

/// One client key pair.
#[derive(Clone)]
pub struct ClientKey {
    /// Its JWK thumbprint (RFC 7638), the `kid` of its JWK and assertions.
    pub kid: String,
    /// The private key, PKCS#8, base64url.
    pub pkcs8: SecretString,
    /// When it was made, in Unix seconds.
    pub created_at: u64,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("pkcs8", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Why a key could not be made or used; names no key material.
fn key_error(what: &'static str) -> DcrError {
    DcrError::Internal(what)
}

impl ClientKey {
    /// A new key pair, made now.
    pub fn generate() -> Result<Self, DcrError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| key_error("the system cannot make a key pair"))?;
        let pkcs8 = SecretString::from(URL_SAFE_NO_PAD.encode(pkcs8.as_ref()));
        let pair = pair(&pkcs8)?;
        Ok(Self {
            kid: thumbprint(&pair)?,
            pkcs8,
            created_at: unix_now(),
        })
    }

    /// The public JWK: `kty`, `crv`, `x`, `y`, `kid`, `alg`, `use`; never
    /// the private part.
    pub fn public_jwk(&self) -> Result<Value, DcrError> {
        let (x, y) = coordinates(&pair(&self.pkcs8)?)?;
        Ok(
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": self.kid,
            "alg": ALGORITHM, "use": "sig"}),
        )
    }

    /// Signs assertions with this key.
    pub fn signer(&self) -> Result<Arc<dyn AssertionSigner>, DcrError> {
        Ok(Arc::new(Es256 {
            kid: self.kid.clone(),
            pair: pair(&self.pkcs8)?,
            rng: SystemRandom::new(),
        }))
    }
}

/// The `jwks` member that publishes `keys`' public halves.
pub fn jwks(keys: &[ClientKey]) -> Result<Map<String, Value>, DcrError> {
    let keys = keys
        .iter()
        .map(ClientKey::public_jwk)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Map::from_iter([("keys".to_owned(), Value::Array(keys))]))
}

fn pair(pkcs8: &SecretString) -> Result<EcdsaKeyPair, DcrError> {
    let der = URL_SAFE_NO_PAD
        .decode(pkcs8.expose_secret())
        .map_err(|_| key_error("a stored client key is not base64url"))?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
        .map_err(|_| key_error("a stored client key is not a P-256 key"))
}

/// The public point's `x` and `y`, base64url.
fn coordinates(pair: &EcdsaKeyPair) -> Result<(String, String), DcrError> {
    // Uncompressed: 0x04, then 32 bytes of x and 32 of y.
    match pair.public_key().as_ref() {
        [0x04, rest @ ..] if rest.len() == 64 => Ok((
            URL_SAFE_NO_PAD.encode(&rest[..32]),
            URL_SAFE_NO_PAD.encode(&rest[32..]),
        )),
        _ => Err(key_error(
            "a client key's public point is not uncompressed P-256",
        )),
    }
}

/// The RFC 7638 thumbprint: SHA-256 of the required members in order.
fn thumbprint(pair: &EcdsaKeyPair) -> Result<String, DcrError> {
    let (x, y) = coordinates(pair)?;
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Ok(URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())))
}

/// Signs ES256 assertions with one key.
struct Es256 {
    kid: String,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl AssertionSigner for Es256 {
    fn assertion(&self, client_id: &str, audience: &str) -> Result<SecretString, DcrError> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| key_error("the system has no randomness for an assertion's jti"))?;
        let now = unix_now();
        let header = json!({"alg": ALGORITHM, "typ": "JWT", "kid": self.kid});
        let claims = json!({"iss": client_id, "sub": client_id, "aud": audience,
            "jti": URL_SAFE_NO_PAD.encode(jti), "iat": now,
            "exp": now + ASSERTION_LIFETIME.as_secs()});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| key_error("signing an assertion failed"))?;
        Ok(SecretString::from(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    fn part(jwt: &str, i: usize) -> Value {
        let text = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    }

    #[test]
    fn an_assertion_verifies_against_the_published_key_and_is_fresh_each_time() {
        let key = ClientKey::generate().unwrap();
        let jwk = key.public_jwk().unwrap();
        assert!(
            jwk.get("d").is_none(),
            "the private part is never published"
        );
        assert_eq!(jwk["kid"], key.kid.as_str());
        let signer = key.signer().unwrap();
        let one = signer.assertion("c1", "https://as/token").unwrap();
        let two = signer.assertion("c1", "https://as/token").unwrap();
        let (one, two) = (one.expose_secret(), two.expose_secret());
        let claims = part(one, 1);
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some("c1"), Some("c1"))
        );
        assert_eq!(claims["aud"], "https://as/token");
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, ASSERTION_LIFETIME.as_secs());
        assert_ne!(claims["jti"], part(two, 1)["jti"], "a unique jti each time");
        assert_eq!(part(one, 0)["kid"], key.kid.as_str());

        // Verify with the public point from the JWK alone.
        let point: Vec<u8> = [0x04]
            .into_iter()
            .chain(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap())
            .chain(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap())
            .collect();
        let (input, signature) = one.rsplit_once('.').unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(
                input.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).unwrap(),
            )
            .expect("the signature verifies");
        assert!(!format!("{key:?}").contains(key.pkcs8.expose_secret()));
    }
}
