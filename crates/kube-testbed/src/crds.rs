//! Upstream CRDs adapted for the 1.20 API server (REFERENCE §7): CEL rules (`x-kubernetes-validations`)
//! and empty-string defaults are unknown or rejected there, and the conversion webhook has no server.

use serde_json::{Map, Value, json};

/// Adapts one CRD in place:
/// - every `x-kubernetes-validations` is dropped;
/// - every `default: ""` is dropped, and a `map` list keyed by such a field becomes `atomic` (1.20
///   requires map keys to be required or defaulted);
/// - `spec.conversion` becomes `{strategy: None}`.
pub(crate) fn adapt(crd: &mut Value) {
    adapt_schema(crd);
    if let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("conversion".to_owned(), json!({ "strategy": "None" }));
    }
}

fn adapt_schema(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.remove("x-kubernetes-validations");
            if object.get("default") == Some(&Value::String(String::new())) {
                object.remove("default");
            }
            if has_empty_default_map_key(object) {
                object.insert("x-kubernetes-list-type".to_owned(), json!("atomic"));
                object.remove("x-kubernetes-list-map-keys");
            }
            object.values_mut().for_each(adapt_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(adapt_schema),
        _ => {}
    }
}

/// Whether `schema` is a `map` list one of whose keys defaults to `""` (checked before the
/// defaults below it are dropped).
fn has_empty_default_map_key(schema: &Map<String, Value>) -> bool {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return false;
    }
    let keys = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array);
    let properties = schema.get("items").and_then(|i| i.get("properties"));
    keys.into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|key| {
            properties
                .and_then(|p| p.get(key))
                .and_then(|p| p.get("default"))
                == Some(&json!(""))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapts_rules_defaults_map_lists_and_conversion() {
        let mut crd = json!({
            "spec": {
                "conversion": { "strategy": "Webhook", "webhook": {} },
                "versions": [{ "schema": { "openAPIV3Schema": { "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": { "properties": {
                            "name": { "type": "string", "default": "" },
                            "port": { "type": "integer" },
                        }},
                    },
                    "env": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": { "required": ["name"], "properties": { "name": { "type": "string" } } },
                    },
                    "mode": { "type": "string", "default": "Running",
                              "x-kubernetes-validations": [{ "rule": "self == oldSelf" }] },
                }}}}],
            },
        });
        adapt(&mut crd);
        let properties = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
        assert_eq!(crd["spec"]["conversion"], json!({ "strategy": "None" }));
        assert_eq!(properties["ports"]["x-kubernetes-list-type"], "atomic");
        assert!(
            properties["ports"]
                .get("x-kubernetes-list-map-keys")
                .is_none()
        );
        assert!(
            properties["ports"]["items"]["properties"]["name"]
                .get("default")
                .is_none()
        );
        assert_eq!(properties["env"]["x-kubernetes-list-type"], "map");
        assert_eq!(
            properties["mode"],
            json!({ "type": "string", "default": "Running" })
        );
    }
}
