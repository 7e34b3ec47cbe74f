//! `google.protobuf.Struct` ⇄ JSON objects, bounded in depth.

use prost_types::{ListValue, Struct, Value as PbValue, value::Kind};
use serde_json::{Map, Number, Value};

use crate::dcr::{DcrError, limits::MAX_STRUCT_DEPTH};

/// Converts a caller's `Struct` to a JSON object. `field` names it in errors.
pub fn struct_to_json(s: Struct, field: &str) -> Result<Map<String, Value>, DcrError> {
    object(s, field, 1)
}

fn object(s: Struct, field: &str, depth: usize) -> Result<Map<String, Value>, DcrError> {
    if depth > MAX_STRUCT_DEPTH {
        return Err(DcrError::invalid(
            field,
            format!("nests deeper than {MAX_STRUCT_DEPTH} levels"),
        ));
    }
    s.fields
        .into_iter()
        .map(|(k, v)| {
            let value = value(v, field, depth)?;
            Ok((k, value))
        })
        .collect()
}

fn value(v: PbValue, field: &str, depth: usize) -> Result<Value, DcrError> {
    Ok(match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) => number(n)
            .ok_or_else(|| DcrError::invalid(field, "holds a number that is NaN or infinite"))?,
        Some(Kind::StructValue(s)) => Value::Object(object(s, field, depth + 1)?),
        Some(Kind::ListValue(l)) => {
            if depth + 1 > MAX_STRUCT_DEPTH {
                return Err(DcrError::invalid(
                    field,
                    format!("nests deeper than {MAX_STRUCT_DEPTH} levels"),
                ));
            }
            Value::Array(
                l.values
                    .into_iter()
                    .map(|v| value(v, field, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// Whole numbers that `f64` holds exactly become JSON integers (`5`, not `5.0`),
/// as a server expects for members such as `default_max_age`.
fn number(n: f64) -> Option<Value> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        Some(Value::Number(Number::from(n as i64)))
    } else {
        Number::from_f64(n).map(Value::Number)
    }
}

/// Converts a JSON object to a `Struct`. Numbers become `f64`, as protobuf's
/// `Value` can only hold those.
pub fn json_to_struct(obj: Map<String, Value>) -> Struct {
    Struct {
        fields: obj.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(v: Value) -> PbValue {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(json_to_struct(o)),
    };
    PbValue { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_everything() {
        let original = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "abc", "n": 5, "f": 1.5,
            "ok": true, "nothing": null, "nested": {"deep": ["a", {"b": []}]}}]});
        let Value::Object(obj) = original.clone() else {
            unreachable!()
        };
        let back = struct_to_json(json_to_struct(obj), "jwks").unwrap();
        assert_eq!(Value::Object(back), original);
    }

    #[test]
    fn depth_limit_names_the_field() {
        let mut v = json!("leaf");
        for _ in 0..MAX_STRUCT_DEPTH + 1 {
            v = json!({ "a": v });
        }
        let Value::Object(obj) = v else {
            unreachable!()
        };
        let err = struct_to_json(json_to_struct(obj), "metadata.jwks").unwrap_err();
        assert!(err.to_string().contains("metadata.jwks"), "{err}");
    }
}
