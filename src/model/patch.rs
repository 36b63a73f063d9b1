//! JSON merge patch (RFC 7396): how `event.corrected` changes a fact's data.
//!
//! A correction names only the fields that change: `{"approximate": true}` sets one
//! field, `{"value": {"amount": 3.5e9}}` changes one field of an object and keeps its
//! others, `null` removes a field, and anything that is not an object (a string, a
//! number, an array) replaces the value whole. Pure: the store validates the merged
//! result against the target's type, and the facts layer applies it the same way.

use serde_json::{Map, Value};

/// Applies `patch` to `target` in place, as RFC 7396 section 2 defines it.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(fields) = target else {
        unreachable!("target was made an object just above");
    };
    for (name, change) in changes {
        if change.is_null() {
            fields.remove(name);
        } else {
            merge_patch(fields.entry(name.clone()).or_insert(Value::Null), change);
        }
    }
}

/// [`merge_patch`] on a copy.
pub fn merged(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    merge_patch(&mut out, patch);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7396, appendix A, one line each: target, patch, result.
    #[test]
    fn the_rfc_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, result) in cases {
            assert_eq!(merged(&target, &patch), result, "{target} + {patch}");
        }
    }

    #[test]
    fn a_patch_that_restates_every_field_gives_the_same_result() {
        let sale = json!({"seller": "country:US", "buyer": "country:JP", "approximate": true,
                          "value": {"amount": 1, "currency": "USD"}, "items": ["a"]});
        let restated = json!({"seller": "country:US", "buyer": "country:JP",
                              "value": {"amount": 2, "currency": "USD"}, "items": ["b"]});
        let mut want = restated.clone();
        // A restatement cannot remove an optional field: it says nothing about it.
        want["approximate"] = json!(true);
        assert_eq!(merged(&sale, &restated), want);
    }
}
