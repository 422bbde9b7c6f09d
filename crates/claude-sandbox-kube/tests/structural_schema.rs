//! Self-tests of the structural-schema validator in `support::structural`, run against the
//! real upstream agent-sandbox CRDs and the upstream example `Sandbox`.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::structural::{crd_version_schema, validate};

const CURRENT_CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/agent-sandbox/current/crds/agents.x-k8s.io_sandboxes.yaml"
);
const V0_1_0_CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/agent-sandbox/v0.1.0/crds/agents.x-k8s.io_sandboxes.yaml"
);
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/agent-sandbox/example-vscode-sandbox/base/vscode-sandbox.yaml"
);

const CPU: &str = "/spec/podTemplate/spec/containers/0/resources/requests/cpu";

fn current_v1beta1() -> Value {
    crd_version_schema(Path::new(CURRENT_CRD), "v1beta1")
}

fn current_v1alpha1() -> Value {
    crd_version_schema(Path::new(CURRENT_CRD), "v1alpha1")
}

fn v0_1_0_v1alpha1() -> Value {
    crd_version_schema(Path::new(V0_1_0_CRD), "v1alpha1")
}

/// The upstream example, as written (`agents.x-k8s.io/v1beta1`).
fn example() -> Value {
    let text = std::fs::read_to_string(EXAMPLE).expect("read the upstream example Sandbox");
    serde_saphyr::from_str(&text).expect("parse the upstream example Sandbox")
}

/// The upstream example with `apiVersion` set to v1alpha1.
fn example_v1alpha1() -> Value {
    let mut doc = example();
    doc["apiVersion"] = json!("agents.x-k8s.io/v1alpha1");
    doc
}

/// `doc` with the value at JSON pointer `pointer` replaced (the field must exist) or,
/// when the last segment is absent, inserted into its parent object.
fn with(mut doc: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let parent = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in doc"));
    match parent {
        Value::Object(fields) => {
            fields.insert(key.to_owned(), value);
        }
        Value::Array(items) => items[key.parse::<usize>().expect("an index")] = value,
        other => panic!("cannot set {key} in {other}"),
    }
    doc
}

/// Asserts that `errors` is exactly one violation at `path` whose problem mentions `problem`.
fn assert_single(errors: &[String], path: &str, problem: &str) {
    assert!(
        matches!(errors, [only] if only.starts_with(&format!("{path}: ")) && only.contains(problem)),
        "expected exactly one violation at {path} mentioning {problem:?}, got {errors:#?}"
    );
}

#[test]
fn upstream_example_is_clean_against_current_v1beta1() {
    assert_eq!(
        validate(&current_v1beta1(), &example()),
        Vec::<String>::new()
    );
}

#[test]
fn upstream_example_as_v1alpha1_is_clean_against_v0_1_0_and_current_v1alpha1() {
    assert_eq!(
        validate(&v0_1_0_v1alpha1(), &example_v1alpha1()),
        Vec::<String>::new()
    );
    assert_eq!(
        validate(&current_v1alpha1(), &example_v1alpha1()),
        Vec::<String>::new()
    );
}

#[test]
fn unknown_field_in_spec_is_reported() {
    let doc = with(example(), "/spec/bogus", json!(true));
    assert_single(
        &validate(&current_v1beta1(), &doc),
        "spec.bogus",
        "unknown field (would be pruned)",
    );
}

#[test]
fn unknown_field_deep_in_the_pod_spec_is_reported() {
    let doc = with(
        example(),
        "/spec/podTemplate/spec/containers/0/bogus",
        json!("x"),
    );
    assert_single(
        &validate(&current_v1beta1(), &doc),
        "spec.podTemplate.spec.containers[0].bogus",
        "unknown field (would be pruned)",
    );
}

#[test]
fn value_outside_enum_is_reported() {
    let doc = with(example(), "/spec/operatingMode", json!("Paused"));
    assert_single(
        &validate(&current_v1beta1(), &doc),
        "spec.operatingMode",
        "is not one of",
    );
    let doc = with(example(), "/spec/operatingMode", json!("Suspended"));
    assert_eq!(validate(&current_v1beta1(), &doc), Vec::<String>::new());
}

#[test]
fn wrong_type_is_reported() {
    // `replicas` exists only in v1alpha1; v1beta1 prunes it.
    let doc = with(example_v1alpha1(), "/spec/replicas", json!("one"));
    for schema in [v0_1_0_v1alpha1(), current_v1alpha1()] {
        assert_single(
            &validate(&schema, &doc),
            "spec.replicas",
            "expected integer",
        );
    }
    let doc = with(example(), "/spec/replicas", json!(1));
    assert_single(
        &validate(&current_v1beta1(), &doc),
        "spec.replicas",
        "unknown field",
    );
}

#[test]
fn integer_bounds_and_whole_numbers_are_enforced() {
    let schema = v0_1_0_v1alpha1();
    let replicas = |n: Value| validate(&schema, &with(example_v1alpha1(), "/spec/replicas", n));
    assert_eq!(replicas(json!(1)), Vec::<String>::new());
    assert_single(
        &replicas(json!(2)),
        "spec.replicas",
        "greater than maximum 1",
    );
    assert_single(&replicas(json!(0.5)), "spec.replicas", "expected integer");
}

#[test]
fn missing_required_field_is_reported() {
    let mut doc = example();
    doc["spec"].as_object_mut().unwrap().remove("podTemplate");
    assert_single(
        &validate(&current_v1beta1(), &doc),
        "spec.podTemplate",
        "required field is missing",
    );
}

#[test]
fn shutdown_time_must_be_rfc3339() {
    let schema = current_v1beta1();
    let shutdown = |t: &str| validate(&schema, &with(example(), "/spec/shutdownTime", json!(t)));
    assert_eq!(shutdown("2025-06-30T12:00:00Z"), Vec::<String>::new());
    assert_eq!(
        shutdown("2025-06-30T12:00:00.123+02:00"),
        Vec::<String>::new()
    );
    for bad in [
        "tomorrow",
        "2025-06-30 12:00:00",
        "2025-06-30T12:00:00",
        "2025-02-30T12:00:00Z",
    ] {
        assert_single(
            &shutdown(bad),
            "spec.shutdownTime",
            "not an RFC 3339 date-time",
        );
    }
}

#[test]
fn null_is_rejected_where_not_nullable() {
    let doc = with(example(), "/spec/shutdownTime", Value::Null);
    assert_single(
        &validate(&current_v1beta1(), &doc),
        "spec.shutdownTime",
        "not nullable",
    );
}

#[test]
fn v1beta1_field_is_unknown_to_v0_1_0_v1alpha1() {
    let doc = with(example_v1alpha1(), "/spec/operatingMode", json!("Running"));
    assert_single(
        &validate(&v0_1_0_v1alpha1(), &doc),
        "spec.operatingMode",
        "unknown field (would be pruned)",
    );
}

#[test]
fn int_or_string_quantity_accepts_int_and_string() {
    let schema = current_v1beta1();
    let cpu = |v: Value| validate(&schema, &with(example(), CPU, v));
    assert_eq!(cpu(json!(1)), Vec::<String>::new());
    assert_eq!(cpu(json!("1000m")), Vec::<String>::new());
    let path = "spec.podTemplate.spec.containers[0].resources.requests.cpu";
    assert_single(&cpu(json!(true)), path, "expected integer or string");
    assert_single(&cpu(json!("lots")), path, "does not match pattern");
}

#[test]
fn root_metadata_is_object_meta() {
    let schema = current_v1beta1();
    let meta = json!({
        "name": "s", "namespace": "ns", "labels": { "app.kubernetes.io/name": "x" },
        "annotations": { "a": "b" }, "creationTimestamp": null,
        "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u" }],
    });
    assert_eq!(
        validate(&schema, &with(example(), "/metadata", meta)),
        Vec::<String>::new()
    );
    let doc = with(example(), "/metadata/bogus", json!(1));
    assert_single(
        &validate(&schema, &doc),
        "metadata.bogus",
        "unknown field (would be pruned)",
    );
    let doc = with(example(), "/metadata/labels", json!({ "n": 1 }));
    assert_single(
        &validate(&schema, &doc),
        "metadata.labels.n",
        "expected string",
    );
    let doc = with(example(), "/bogus", json!(1));
    assert_single(
        &validate(&schema, &doc),
        "bogus",
        "unknown field (would be pruned)",
    );
}
