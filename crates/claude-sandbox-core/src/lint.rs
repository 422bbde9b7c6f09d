//! Warnings for devcontainer.json fields that envbuilder ignores: they work under Docker or
//! VS Code, so people expect them to work in a sandbox, and nothing tells them they don't.

use std::fmt;

use serde_json::Value;

use crate::layout::CODE_SERVER_PORT;

/// One field envbuilder will not honour, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    /// The JSON path of the field, e.g. `appPort` or `features.ghcr.io/…/code-server:1.port`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

/// Top-level fields envbuilder ignores, with where the setting belongs instead.
const IGNORED_FIELDS: [(&str, &str); 10] = [
    (
        "appPort",
        "envbuilder does not publish ports; declare container ports in the pod spec",
    ),
    (
        "forwardPorts",
        "envbuilder does not forward ports; use `claude-sandbox connect` or the Service",
    ),
    (
        "mounts",
        "envbuilder does not mount anything; add volumes to the pod spec",
    ),
    (
        "runArgs",
        "envbuilder does not run docker; set these in the pod spec",
    ),
    (
        "privileged",
        "envbuilder cannot grant privilege; the pod spec's securityContext does (claude-sandbox --docker)",
    ),
    (
        "capAdd",
        "envbuilder cannot add capabilities; the pod spec's securityContext does",
    ),
    (
        "init",
        "envbuilder runs the init script as PID 1; it does not add an init process",
    ),
    (
        "workspaceMount",
        "envbuilder clones into the workspace folder; the volume comes from the Sandbox's volumeClaimTemplates",
    ),
    (
        "waitFor",
        "envbuilder runs every lifecycle hook before the init script, in order",
    ),
    (
        "postAttachCommand",
        "nothing attaches under envbuilder; use postStartCommand or the init script",
    ),
];

const CODE_SERVER_FEATURE: &str = "ghcr.io/coder/devcontainer-features/code-server";

/// Parses devcontainer.json (JSON with comments and trailing commas, as envbuilder reads it) and
/// lists what envbuilder ignores. Err: the text is not a devcontainer.json.
pub fn lint_devcontainer(text: &str) -> Result<Vec<LintWarning>, String> {
    let options = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let value: Value =
        jsonc_parser::parse_to_serde_value(text, &options).map_err(|e| e.to_string())?;
    let Value::Object(root) = &value else {
        return Err("the top level is not a JSON object".to_owned());
    };
    let mut warnings: Vec<LintWarning> = IGNORED_FIELDS
        .iter()
        .filter(|(field, _)| root.contains_key(*field))
        .map(|(field, message)| LintWarning {
            field: (*field).to_owned(),
            message: format!("ignored by envbuilder: {message}"),
        })
        .collect();
    if let Some(Value::Object(features)) = root.get("features") {
        for (reference, options) in features {
            if reference.starts_with(CODE_SERVER_FEATURE) {
                warnings.extend(code_server_warnings(reference, options));
            }
        }
    }
    Ok(warnings)
}

/// The code-server feature listens on 127.0.0.1:8080 unless told otherwise, which nothing outside
/// the container can reach.
fn code_server_warnings(reference: &str, options: &Value) -> Vec<LintWarning> {
    let option = |name: &str| {
        options
            .get(name)
            .map(|v| v.to_string().trim_matches('"').to_owned())
    };
    let mut warnings = Vec::new();
    if option("host").as_deref() != Some("0.0.0.0") {
        warnings.push(LintWarning {
            field: format!("features.{reference}.host"),
            message: "code-server listens on 127.0.0.1 by default, out of reach of port-forwards and the Service; set \"host\": \"0.0.0.0\"".to_owned(),
        });
    }
    if option("port").as_deref() != Some(&CODE_SERVER_PORT.to_string()) {
        warnings.push(LintWarning {
            field: format!("features.{reference}.port"),
            message: format!("code-server listens on 8080 by default, but the sandbox exposes {CODE_SERVER_PORT}; set \"port\": {CODE_SERVER_PORT}"),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_devcontainer_is_clean() {
        assert_eq!(
            lint_devcontainer(crate::assets::DEVCONTAINER_JSON),
            Ok(vec![])
        );
    }

    #[test]
    fn ignored_fields_and_code_server_defaults_are_reported() {
        let text = r#"{
            // the upstream example's shape
            "image": "mcr.microsoft.com/devcontainers/base:ubuntu",
            "features": { "ghcr.io/coder/devcontainer-features/code-server:1": {}, },
            "appPort": ["13337:13337"],
            "runArgs": ["--privileged"],
            "postAttachCommand": "echo hi",
        }"#;
        let fields: Vec<String> = lint_devcontainer(text)
            .unwrap()
            .into_iter()
            .map(|w| w.field)
            .collect();
        assert_eq!(
            fields,
            [
                "appPort",
                "runArgs",
                "postAttachCommand",
                "features.ghcr.io/coder/devcontainer-features/code-server:1.host",
                "features.ghcr.io/coder/devcontainer-features/code-server:1.port",
            ]
        );
    }

    #[test]
    fn what_envbuilder_cannot_parse_is_an_error() {
        assert!(lint_devcontainer("{ 'image': 'x' }").is_err());
        assert!(lint_devcontainer("[1, 2]").is_err());
        assert!(lint_devcontainer("{ \"a\": 1 \"b\": 2 }").is_err());
    }
}
