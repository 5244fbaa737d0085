//! A JSON value written as block-style YAML (for the AsyncAPI document).
//! Strings are always double-quoted, so nothing is misread as a number,
//! boolean or null.

use serde_json::Value;

/// Writes `value` as YAML.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, 0, &mut out);
    out
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(serde_json::to_string(s).unwrap_or_default()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn write_value(value: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let key = serde_json::to_string(key).unwrap_or_default();
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}{key}: {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write_value(v, indent + 1, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}-\n"));
                        write_value(v, indent + 1, out);
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_become_indented_blocks() {
        let v = json!({ "a": { "b": [1, "two", { "c": null }], "e": [] }, "yes": "true" });
        assert_eq!(
            to_yaml(&v),
            "\"a\":\n  \"b\":\n    - 1\n    - \"two\"\n    -\n      \"c\": null\n  \"e\": []\n\"yes\": \"true\"\n"
        );
    }
}
