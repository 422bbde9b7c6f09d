//! Upstream's names: API groups, labels, annotations, and the name hash that ties a Sandbox to
//! its pod (`api/v1beta1/sandbox_types.go`, `extensions/api/v1beta1/*_types.go`,
//! `controllers/sandbox_controller.go` in kubernetes-sigs/agent-sandbox).

/// The core API group (`Sandbox`).
pub(crate) const GROUP: &str = "agents.x-k8s.io";
/// The extensions API group (`SandboxTemplate`, `SandboxWarmPool`, `SandboxClaim`).
pub(crate) const EXTENSIONS_GROUP: &str = "extensions.agents.x-k8s.io";
/// The only extensions version this simulation serves.
pub(crate) const EXTENSIONS_VERSION: &str = "v1beta1";

/// On every pod and Service of a Sandbox: `name_hash(sandbox name)`; the Service selects it.
pub(crate) const NAME_HASH_LABEL: &str = "agents.x-k8s.io/sandbox-name-hash";
/// On a Sandbox whose pod has another name (legacy warm-pool adoption).
pub(crate) const POD_NAME_ANNOTATION: &str = "agents.x-k8s.io/pod-name";
/// On a pod: the template label keys the controller propagated (to remove them later).
pub(crate) const PROPAGATED_LABELS_ANNOTATION: &str = "agents.x-k8s.io/propagated-labels";
/// On a pod: the template annotation keys the controller propagated.
pub(crate) const PROPAGATED_ANNOTATIONS_ANNOTATION: &str = "agents.x-k8s.io/propagated-annotations";
/// Authorises a Sandbox to adopt an unowned pod, PVC or Service.
pub(crate) const ADOPTABLE_LABEL: &str = "agents.x-k8s.io/adoptable";
/// On warm-pool Sandboxes (and their pods): `name_hash(pool name)`.
pub(crate) const WARM_POOL_LABEL: &str = "agents.x-k8s.io/warm-pool-sandbox";
/// The SandboxTemplate a Sandbox came from: `name_hash(template name)`.
pub(crate) const TEMPLATE_REF_HASH_LABEL: &str = "agents.x-k8s.io/sandbox-template-ref-hash";
/// Deprecated hash of a template's pod template, still stamped by the warm pool.
pub(crate) const POD_TEMPLATE_HASH_LABEL: &str = "agents.x-k8s.io/sandbox-pod-template-hash";
/// Hash of a template's blueprint (pod template, volume claim templates, service).
pub(crate) const TEMPLATE_HASH_LABEL: &str = "agents.x-k8s.io/sandbox-template-hash";
/// `cold` (created for a claim) or `warm` (made by a warm pool).
pub(crate) const LAUNCH_TYPE_LABEL: &str = "agents.x-k8s.io/launch-type";
/// Who created a Sandbox; the warm pool sets `controller`.
pub(crate) const CREATED_BY_LABEL: &str = "agents.x-k8s.io/created-by";
/// The SandboxTemplate's name, on Sandboxes made from one.
pub(crate) const TEMPLATE_REF_ANNOTATION: &str = "agents.x-k8s.io/sandbox-template-ref";
/// The owning claim's UID, on a claimed Sandbox and its pod.
pub(crate) const CLAIM_UID_LABEL: &str = "agents.x-k8s.io/claim-uid";
/// On a claim: the warm Sandbox it is adopting or adopted.
pub(crate) const ASSIGNED_SANDBOX_ANNOTATION: &str = "agents.x-k8s.io/sandbox-name";

/// The 8 lowercase hex digits of the FNV-1a 32-bit hash of `name` (upstream `NameHash`).
pub(crate) fn name_hash(name: &str) -> String {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let hash = name.bytes().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(PRIME)
    });
    format!("{hash:08x}")
}

/// `agents.x-k8s.io/sandbox-name-hash=<hash>`: a Sandbox's `status.selector`.
pub(crate) fn name_hash_selector(name: &str) -> String {
    format!("{NAME_HASH_LABEL}={}", name_hash(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_hash_is_fnv1a_32_in_lowercase_hex() {
        // The published FNV-1a 32-bit test vectors.
        assert_eq!(name_hash(""), "811c9dc5");
        assert_eq!(name_hash("a"), "e40c292c");
        assert_eq!(name_hash("foobar"), "bf9cf968");
    }

    #[test]
    fn name_hash_keeps_leading_zeros() {
        assert_eq!(name_hash("sandbox-633"), "004575dd");
        assert_eq!(name_hash("my-sandbox"), "374de8f5");
    }

    #[test]
    fn selector_names_the_hash_label() {
        assert_eq!(
            name_hash_selector("a"),
            "agents.x-k8s.io/sandbox-name-hash=e40c292c"
        );
    }
}
