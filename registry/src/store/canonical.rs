//! Canonical JSON for the documents kiln generates (manifests, configs,
//! indexes, metadata): object keys sorted bytewise, no insignificant
//! whitespace. oci-spec keeps labels, annotations, exposed ports and volumes
//! in `HashMap`s whose order changes from process to process; sorting here
//! makes a generated document's digest depend only on its content.
//!
//! Documents read from elsewhere (pulled, loaded) are never re-serialised:
//! the store keeps their exact bytes.

use serde::Serialize;
use serde_json::Value;

/// Serialises `value` canonically.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(1024);
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"z": [ {"y": 1, "x": "é\n"} ], "c": null}});
        let s = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert_eq!(s, r#"{"a":{"c":null,"z":[{"x":"é\n","y":1}]},"b":1}"#);
    }

    #[test]
    fn hashmap_order_never_changes_the_bytes() {
        // every HashMap gets its own random hasher seed, so iteration orders differ
        let build = |rev: bool| {
            let mut m = HashMap::new();
            let keys: Vec<usize> = if rev {
                (0..50).rev().collect()
            } else {
                (0..50).collect()
            };
            for i in keys {
                m.insert(format!("label{i}"), i.to_string());
            }
            canonical_json(&m).unwrap()
        };
        let first = build(false);
        for n in 0..20 {
            assert_eq!(build(n % 2 == 0), first);
        }
    }
}
