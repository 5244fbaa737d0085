//! Payload schema compatibility: which differences between two JSON Schemas
//! of one payload version would break a reader. A published version is a
//! promise to two kinds of reader: a consumer built against it reads what
//! newer producers send, and a newer consumer reads what older producers
//! sent (and what stores and logs still hold). So a change that keeps its
//! version may only add optional properties or change descriptions; every
//! other change needs a new version (`order/init` 1.1 and 1.2).
//!
//! `shared/contracts/schemas/` holds the committed schema of every payload
//! version; a test compares the catalog with it (see
//! `every_payload_version_keeps_its_committed_schema` in the catalog tests).

use std::collections::BTreeSet;

use serde_json::Value;

/// Each change from `old` to `new` that breaks a reader, as a sentence
/// naming the place (`.items[].quantity`). Empty: compatible.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut changes = Vec::new();
    compare(old, old, new, new, "", &mut changes, 0);
    changes
}

/// Follows a local `$ref` (`#/$defs/Name`) within `root`.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..16 {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else { break };
        let Some(found) = reference.strip_prefix('#').and_then(|pointer| root.pointer(pointer)) else { break };
        node = found;
    }
    node
}

fn types(node: &Value) -> BTreeSet<String> {
    match node.get("type") {
        Some(Value::String(t)) => BTreeSet::from([t.clone()]),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => BTreeSet::new(),
    }
}

fn names(node: &Value, key: &str) -> BTreeSet<String> {
    node.get(key)
        .and_then(Value::as_array)
        .map_or_else(BTreeSet::new, |list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
}

fn compare(
    old_root: &Value,
    old: &Value,
    new_root: &Value,
    new: &Value,
    at: &str,
    changes: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let (old, new) = (resolve(old_root, old), resolve(new_root, new));
    let place = if at.is_empty() { "the payload" } else { at };
    let (old_types, new_types) = (types(old), types(new));
    if old_types != new_types {
        changes.push(format!("{place}: type {old_types:?} became {new_types:?}"));
        return;
    }
    if old.get("enum") != new.get("enum") {
        changes.push(format!("{place}: its allowed values changed"));
    }
    for key in ["format", "const"] {
        if old.get(key) != new.get(key) {
            changes.push(format!("{place}: its {key} changed"));
        }
    }
    let (old_required, new_required) = (names(old, "required"), names(new, "required"));
    for gone in old_required.difference(&new_required) {
        changes.push(format!("{at}.{gone}: no longer required (readers count on it)"));
    }
    for added in new_required.difference(&old_required) {
        changes.push(format!("{at}.{added}: required now (older payloads lack it)"));
    }
    let empty = serde_json::Map::new();
    let old_properties = old.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let new_properties = new.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    for (name, old_property) in old_properties {
        match new_properties.get(name) {
            None => changes.push(format!("{at}.{name}: removed")),
            Some(new_property) => {
                compare(old_root, old_property, new_root, new_property, &format!("{at}.{name}"), changes, depth + 1);
            }
        }
    }
    if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
        compare(old_root, old_items, new_root, new_items, &format!("{at}[]"), changes, depth + 1);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        let (old_list, new_list) = (old.get(key).and_then(Value::as_array), new.get(key).and_then(Value::as_array));
        match (old_list, new_list) {
            (None, None) => {}
            (Some(a), Some(b)) if a.len() == b.len() => {
                for (i, (a, b)) in a.iter().zip(b).enumerate() {
                    compare(old_root, a, new_root, b, &format!("{at}<{key} {i}>"), changes, depth + 1);
                }
            }
            _ => changes.push(format!("{place}: its {key} alternatives changed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn line(extra: Value) -> Value {
        let mut line = json!({
            "type": "object",
            "properties": { "flavor": { "type": "string" }, "quantity": { "type": "integer", "format": "uint32" } },
            "required": ["flavor", "quantity"],
        });
        if let (Some(properties), Some(extra)) = (line["properties"].as_object_mut(), extra.as_object()) {
            properties.extend(extra.clone());
        }
        line
    }

    fn payload(line: Value) -> Value {
        json!({
            "$defs": { "OrderLine": line },
            "type": "object",
            "properties": {
                "order_id": { "type": "string", "description": "The order." },
                "items": { "type": "array", "items": { "$ref": "#/$defs/OrderLine" } },
                "note": { "type": ["string", "null"] },
            },
            "required": ["order_id", "items"],
        })
    }

    #[test]
    fn the_same_schema_and_new_optional_fields_and_words_break_nothing() {
        let old = payload(line(json!({})));
        assert!(breaking_changes(&old, &old).is_empty());
        let mut reworded = old.clone();
        reworded["properties"]["order_id"]["description"] = "Which order.".into();
        let added = payload(line(json!({ "size": { "type": "string" } })));
        assert_eq!(breaking_changes(&old, &reworded), Vec::<String>::new());
        assert_eq!(breaking_changes(&old, &added), Vec::<String>::new(), "an optional field is compatible");
    }

    #[test]
    fn removed_retyped_and_newly_required_fields_break_readers_even_behind_a_ref() {
        let old = payload(line(json!({})));
        let mut removed = old.clone();
        removed["properties"].as_object_mut().unwrap().remove("note");
        assert_eq!(breaking_changes(&old, &removed), [".note: removed"]);

        let mut retyped = old.clone();
        retyped["$defs"]["OrderLine"]["properties"]["quantity"]["type"] = "string".into();
        let changes = breaking_changes(&old, &retyped);
        assert!(changes.len() == 1 && changes[0].starts_with(".items[].quantity: type"), "{changes:?}");

        let mut required = payload(line(json!({ "size": { "type": "string" } })));
        required["$defs"]["OrderLine"]["required"] = json!(["flavor", "quantity", "size"]);
        assert_eq!(breaking_changes(&old, &required), [".items[].size: required now (older payloads lack it)"]);

        let mut optional = old.clone();
        optional["required"] = json!(["items"]);
        assert_eq!(breaking_changes(&old, &optional), [".order_id: no longer required (readers count on it)"]);

        let mut nullable = old.clone();
        nullable["properties"]["order_id"]["type"] = json!(["string", "null"]);
        assert_eq!(breaking_changes(&old, &nullable).len(), 1, "a reader of a string may now get null");
    }

    #[test]
    fn changed_values_and_formats_break_readers() {
        let old = json!({ "type": "object", "properties": {
            "status": { "type": "string", "enum": ["A", "B"] }, "total": { "type": "integer", "format": "int64" } } });
        let mut more = old.clone();
        more["properties"]["status"]["enum"] = json!(["A", "B", "C"]);
        let mut narrower = old.clone();
        narrower["properties"]["total"]["format"] = "int32".into();
        assert_eq!(breaking_changes(&old, &more), [".status: its allowed values changed"]);
        assert_eq!(breaking_changes(&old, &narrower), [".total: its format changed"]);
    }
}
