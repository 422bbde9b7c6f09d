//! A small validator of a JSON document against a CRD's structural schema
//! (`openAPIV3Schema`), mirroring what the apiserver does on create: pruning of
//! unknown fields (reported here as errors instead of being dropped silently)
//! and the OpenAPI value validations a structural schema may carry.
//!
//! Deliberately not covered: CEL rules (`x-kubernetes-validations`), defaulting,
//! list-type/map-type markers, and formats other than `date-time`.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

/// The `openAPIV3Schema` of `version` in the CRD at `crd_path`.
///
/// Panics if the file cannot be read or parsed, or the version is absent or not served.
pub fn crd_version_schema(crd_path: &Path, version: &str) -> Value {
    let shown = crd_path.display();
    let text = std::fs::read_to_string(crd_path)
        .unwrap_or_else(|e| panic!("cannot read CRD {shown}: {e}"));
    let crd: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("cannot parse CRD {shown}: {e}"));
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("CRD {shown} has no spec.versions"));
    let entry = versions
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| {
            let names: Vec<&Value> = versions.iter().map(|v| &v["name"]).collect();
            panic!("CRD {shown} has no version {version:?}; it has {names:?}")
        });
    assert!(
        entry["served"] == true,
        "CRD {shown}: version {version:?} is not served"
    );
    entry
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or_else(|| panic!("CRD {shown}: version {version:?} has no openAPIV3Schema"))
}

/// Every violation of `schema` by `doc` (a whole custom resource), as `"<json path>: <problem>"`.
/// An empty result means the apiserver would accept the object without pruning anything
/// (CEL rules aside).
pub fn validate(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, doc, "", true, &mut errors);
    errors
}

static STRING: LazyLock<Value> = LazyLock::new(|| json!({ "type": "string" }));

/// The part of `ObjectMeta` a client may send. The apiserver validates `metadata` of a
/// resource (the root, or an `x-kubernetes-embedded-resource`) itself, not through the CRD.
static OBJECT_META: LazyLock<Value> = LazyLock::new(|| {
    let string = json!({ "type": "string" });
    let integer = json!({ "type": "integer" });
    let time = json!({ "type": "string", "format": "date-time", "nullable": true });
    let string_map = json!({ "type": "object", "additionalProperties": string });
    let owner_reference = json!({
        "type": "object",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": string, "kind": string, "name": string, "uid": string,
            "controller": { "type": "boolean" }, "blockOwnerDeletion": { "type": "boolean" },
        },
    });
    json!({
        "type": "object",
        "properties": {
            "name": string, "namespace": string, "generateName": string, "uid": string,
            "resourceVersion": string, "generation": integer,
            "creationTimestamp": time, "deletionTimestamp": time,
            "deletionGracePeriodSeconds": integer,
            "labels": string_map, "annotations": string_map,
            "finalizers": { "type": "array", "items": string },
            "ownerReferences": { "type": "array", "items": owner_reference },
            "managedFields": {
                "type": "array",
                "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
            },
        },
    })
});

/// Validates `value` at `path` against `schema`; `resource` marks the root of a Kubernetes
/// object, where `apiVersion`, `kind` and `metadata` are implicitly allowed.
fn check(schema: &Value, value: &Value, path: &str, resource: bool, errors: &mut Vec<String>) {
    let mut report = |problem: String| {
        let at = if path.is_empty() { "<root>" } else { path };
        errors.push(format!("{at}: {problem}"));
    };
    if value.is_null() {
        if !flag(schema, "nullable") {
            report("null is not allowed (not nullable)".into());
        }
        return;
    }
    if let Some(expected) = type_mismatch(schema, value) {
        return report(format!("expected {expected}, got {}", type_name(value)));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        report(format!("{value} is not one of {}", json!(allowed)));
    }
    match value {
        Value::String(s) => {
            if schema.get("format").and_then(Value::as_str) == Some("date-time") && !is_rfc3339(s) {
                report(format!("{s:?} is not an RFC 3339 date-time"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match Regex::new(pattern) {
                    Ok(re) if re.is_match(s) => {}
                    Ok(_) => report(format!("{s:?} does not match pattern {pattern:?}")),
                    Err(e) => report(format!("schema pattern {pattern:?} is invalid: {e}")),
                }
            }
            let length = s.chars().count() as f64;
            bounds(schema, ["minLength", "maxLength"], length, &mut report);
        }
        Value::Number(n) => {
            let number = n.as_f64().unwrap_or(f64::NAN);
            bounds(schema, ["minimum", "maximum"], number, &mut report);
        }
        Value::Array(items) => {
            bounds(
                schema,
                ["minItems", "maxItems"],
                items.len() as f64,
                &mut report,
            );
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let embedded = flag(item_schema, "x-kubernetes-embedded-resource");
                    check(item_schema, item, &format!("{path}[{i}]"), embedded, errors);
                }
            }
        }
        Value::Object(fields) => check_object(schema, fields, path, resource, errors),
        Value::Bool(_) | Value::Null => {}
    }
}

/// `required`, then each field against its property schema, `additionalProperties`, or pruning.
fn check_object(
    schema: &Value,
    fields: &Map<String, Value>,
    path: &str,
    resource: bool,
    errors: &mut Vec<String>,
) {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !fields.contains_key(name) {
            errors.push(format!("{}: required field is missing", child(name)));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (key, value) in fields {
        let resource_field = resource && matches!(key.as_str(), "apiVersion" | "kind");
        let field_schema = match properties.and_then(|p| p.get(key)) {
            _ if resource && key == "metadata" => &*OBJECT_META,
            Some(field_schema) => field_schema,
            None if resource_field => &*STRING,
            None => match schema.get("additionalProperties") {
                Some(extra @ Value::Object(_)) => extra,
                Some(Value::Bool(true)) => continue,
                _ if flag(schema, "x-kubernetes-preserve-unknown-fields") => continue,
                _ => {
                    errors.push(format!("{}: unknown field (would be pruned)", child(key)));
                    continue;
                }
            },
        };
        let embedded = flag(field_schema, "x-kubernetes-embedded-resource");
        check(field_schema, value, &child(key), embedded, errors);
    }
}

/// The expected type, when `value` is not of the schema's type.
fn type_mismatch(schema: &Value, value: &Value) -> Option<&'static str> {
    let is_integer = match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    };
    if flag(schema, "x-kubernetes-int-or-string") {
        return (!is_integer && !value.is_string()).then_some("integer or string");
    }
    let (expected, ok) = match schema.get("type").and_then(Value::as_str)? {
        "object" => ("object", value.is_object()),
        "array" => ("array", value.is_array()),
        "string" => ("string", value.is_string()),
        "integer" => ("integer", is_integer),
        "number" => ("number", value.is_number()),
        "boolean" => ("boolean", value.is_boolean()),
        _ => ("a known type", false),
    };
    (!ok).then_some(expected)
}

fn type_name(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Reports `actual` outside the schema's inclusive `[min_key, max_key]` range.
fn bounds(
    schema: &Value,
    [min_key, max_key]: [&str; 2],
    actual: f64,
    mut report: impl FnMut(String),
) {
    let limit = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(min) = limit(min_key).filter(|&min| actual < min) {
        report(format!("{actual} is less than {min_key} {min}"));
    }
    if let Some(max) = limit(max_key).filter(|&max| actual > max) {
        report(format!("{actual} is greater than {max_key} {max}"));
    }
}

/// RFC 3339 `date-time` (`2006-01-02T15:04:05.999Z07:00`), with calendar ranges checked.
fn is_rfc3339(s: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$",
        )
        .expect("valid date-time regex")
    });
    let Some(c) = RE.captures(s) else {
        return false;
    };
    let n = |i: usize| {
        c.get(i)
            .map_or(0, |m| m.as_str().parse::<u32>().unwrap_or(u32::MAX))
    };
    let (year, month, day) = (n(1), n(2), n(3));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=12).contains(&month)
        && (1..=month_days).contains(&day)
        && n(4) < 24
        && n(5) < 60
        && n(6) < 60
        && n(7) < 24
        && n(8) < 60
}
