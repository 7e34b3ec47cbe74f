use serde_json::{Value, json};

use super::*;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        _ => unreachable!(),
    }
}

#[test]
fn extension_metadata_and_jwks_map_both_ways() {
    let input = json!({
        "client_name": "x",
        "redirect_uris": ["https://a/cb"],
        "jwks": {"keys": [{"kty": "RSA", "n": "abc", "e": "AQAB", "ext": {"deep": [1, 2.5, null]}}]},
        "software_statement": "eyJ.eyJ.sig",
        "tenant": "t1",
        "nested": {"a": [true, {"b": null}]},
        "default_max_age": 3600,
    });
    let m = metadata_from_json(obj(input.clone())).unwrap();
    assert_eq!(m.client_name.as_deref(), Some("x"));
    assert_eq!(m.jwks.as_ref().unwrap()["keys"][0]["kty"], "RSA");
    assert_eq!(m.additional.len(), 3, "{:?}", m.additional);
    assert_eq!(
        Value::Object(metadata_to_json(&m)),
        input,
        "nothing lost on the way back"
    );
}

#[test]
fn empty_and_null_mean_absent() {
    let c = client_from_json(obj(json!({
        "client_id": "c", "client_secret": "", "registration_access_token": "",
        "client_name": "", "grant_types": null, "client_secret_expires_at": 0,
        "client_id_issued_at": 1765000000, "registration_client_uri": "http://x/oauth/register/c",
    })))
    .unwrap();
    assert!(c.client_secret.is_none() && c.registration_access_token.is_none());
    assert_eq!(c.metadata, ClientMetadata::default());
    assert_eq!(
        (c.client_id_issued_at, c.client_secret_expires_at),
        (Some(1765000000), None)
    );
    assert_eq!(c.registration_client_uri, "http://x/oauth/register/c");
}

#[test]
fn wrong_types_name_the_member() {
    let err = client_from_json(obj(json!({"client_id": "c", "grant_types": "x"}))).unwrap_err();
    assert_eq!(err.field, "grant_types");
    let err = client_from_json(obj(json!({"client_secret": "s"}))).unwrap_err();
    assert_eq!(err.field, "client_id");
    let err =
        client_from_json(obj(json!({"client_id": "c", "client_id_issued_at": -5}))).unwrap_err();
    assert_eq!(err.field, "client_id_issued_at");
    let err =
        client_from_json(obj(json!({"client_id": "c", "client_id_issued_at": 1e300}))).unwrap_err();
    assert_eq!(err.field, "client_id_issued_at");
    let err = metadata_from_json(obj(json!({"jwks": [1]}))).unwrap_err();
    assert_eq!(err.field, "jwks");
}

#[test]
fn secrets_are_not_in_debug_output() {
    let c = client_from_json(obj(json!({"client_id": "c", "client_secret": "topsecret", "registration_access_token": "rat123"})))
        .unwrap();
    let text = format!("{c:?}");
    assert!(
        !text.contains("topsecret") && !text.contains("rat123"),
        "{text}"
    );
    let shown = client_to_json_exposing_secrets(&c);
    assert_eq!(shown["client_secret"], "topsecret");
}
