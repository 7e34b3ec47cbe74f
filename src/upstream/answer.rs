//! A successful answer, read as the operation table says: a client (RFC
//! 7591 §3.2.1, checked against the call), nothing (a delete), or an access
//! token (RFC 6749 §5.1), each bounded before anything keeps it.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::dcr::{AccessToken, Answer, DcrError, DcrRequest, DcrResponse, json, limits};

/// Longest `token_type` kept, in bytes.
const MAX_TOKEN_TYPE_BYTES: usize = 64;
/// Longest `expires_in` believed: a year. A longer one is cut to it.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(365 * 24 * 3600);

/// The domain answer to `req` in `bytes`.
pub(super) fn answer(req: &DcrRequest, bytes: &[u8]) -> Result<DcrResponse, DcrError> {
    match req.operation().spec().answer {
        Answer::Nothing => Ok(DcrResponse::Deleted),
        Answer::Client => {
            let client = json::client_from_json(object(bytes)?)
                .map_err(|e| DcrError::MalformedResponse(e.to_string()))?;
            check_client_id(req, &client.client_id)?;
            Ok(DcrResponse::Client(Box::new(client)))
        }
        Answer::AccessToken => access_token(object(bytes)?).map(DcrResponse::AccessToken),
    }
}

/// The body as a JSON object.
fn object(bytes: &[u8]) -> Result<Map<String, Value>, DcrError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(DcrError::MalformedResponse(
            "the body is not a JSON object".into(),
        )),
        Err(_) => Err(DcrError::MalformedResponse("the body is not JSON".into())),
    }
}

/// Checks the `client_id` of an answer before anything stores or logs it: a
/// management answer must name the client the call named (else a server, or
/// whatever answers in its place, could plant a token under another client),
/// and a new id must pass the same checks as a caller's.
fn check_client_id(req: &DcrRequest, answered: &str) -> Result<(), DcrError> {
    match req.target() {
        Some(target) if target.client_id != answered => Err(DcrError::ClientMismatch),
        Some(_) => Ok(()),
        None => limits::check_client_id(answered).map_err(|e| match e {
            DcrError::InvalidArgument { reason, .. } => {
                DcrError::MalformedResponse(format!("the new client_id {reason}"))
            }
            other => other,
        }),
    }
}

/// An access token answer: `access_token` bounded visible ASCII,
/// `token_type` short visible ASCII, `expires_in` a non-negative number
/// (cut to a year), `scope` a bounded string. The token never appears in an
/// error.
fn access_token(mut obj: Map<String, Value>) -> Result<AccessToken, DcrError> {
    let bad = |what: &str| DcrError::MalformedResponse(format!("the token answer's {what}"));
    let token = match obj.remove("access_token") {
        Some(Value::String(t)) => SecretString::from(t),
        _ => return Err(bad("access_token is missing or not a string")),
    };
    limits::check_token("access_token", &token).map_err(|e| match e {
        DcrError::InvalidArgument { reason, .. } => bad(&format!("access_token {reason}")),
        other => other,
    })?;
    let token_type = match obj.get("token_type") {
        Some(Value::String(t))
            if !t.is_empty()
                && t.len() <= MAX_TOKEN_TYPE_BYTES
                && t.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            t.clone()
        }
        _ => return Err(bad("token_type is missing or not a short word")),
    };
    let expires_in = match obj.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(secs) if secs >= 0.0 => Some(Duration::from_secs_f64(
                secs.min(MAX_EXPIRES_IN.as_secs_f64()),
            )),
            _ => return Err(bad("expires_in is negative")),
        },
        // Some servers send it as a string of digits.
        Some(Value::String(s)) => match s.parse::<u64>() {
            Ok(secs) => Some(Duration::from_secs(secs).min(MAX_EXPIRES_IN)),
            Err(_) => return Err(bad("expires_in is not a number")),
        },
        Some(_) => return Err(bad("expires_in is not a number")),
    };
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= limits::MAX_STRING_BYTES => Some(s.clone()),
        Some(_) => return Err(bad("scope is not a bounded string")),
    };
    Ok(AccessToken {
        token,
        token_type,
        expires_in,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(body: Value) -> Result<AccessToken, DcrError> {
        match body {
            Value::Object(obj) => access_token(obj),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_token_answer_is_bounded_and_never_shows_the_token() {
        let ok = parse(
            serde_json::json!({"access_token": "t0k", "token_type": "bearer",
            "expires_in": 30, "scope": "a b"}),
        )
        .unwrap();
        assert_eq!(ok.token.expose_secret(), "t0k");
        assert_eq!(ok.expires_in, Some(Duration::from_secs(30)));
        assert_eq!(ok.scope.as_deref(), Some("a b"));
        let as_text = parse(
            serde_json::json!({"access_token": "t", "token_type": "Bearer", "expires_in": "60"}),
        )
        .unwrap();
        assert_eq!(as_text.expires_in, Some(Duration::from_secs(60)));
        let huge = parse(
            serde_json::json!({"access_token": "t", "token_type": "Bearer",
            "expires_in": 1e30}),
        )
        .unwrap();
        assert_eq!(huge.expires_in, Some(MAX_EXPIRES_IN));
        for bad in [
            serde_json::json!({"token_type": "bearer"}),
            serde_json::json!({"access_token": "secret value", "token_type": "bearer"}),
            serde_json::json!({"access_token": "x".repeat(9000), "token_type": "bearer"}),
            serde_json::json!({"access_token": "t"}),
            serde_json::json!({"access_token": "t", "token_type": "bearer", "expires_in": -1}),
            serde_json::json!({"access_token": "t", "token_type": "bearer", "scope": 7}),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert!(
                matches!(err, DcrError::MalformedResponse(_)),
                "{bad}: {err}"
            );
            assert!(!err.to_string().contains("secret value"), "{err}");
        }
    }
}
