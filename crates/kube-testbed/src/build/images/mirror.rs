//! The upstream images a real node mirrors: the controller images of the agent-sandbox manifests
//! (the test data of [`paths::agent_sandbox_data`](crate::paths::agent_sandbox_data)), which a
//! machine without internet cannot pull. The controller placeholder image is stored under each
//! one's repository path and tag, and containerd is told to pull those hosts' images from the
//! testbed's registry, so that the release manifests' Deployment or StatefulSet runs unchanged.
//!
//! The manifests are read line by line, not parsed (the release files are large and this runs at
//! every start): an image is the value of an `image:` key of a document whose top-level `kind:` is
//! a `Deployment` or `StatefulSet` (so that images of example objects, a Sandbox's say, are left
//! out).

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The kinds whose images are the controller's (as [`Workload`](crate::agent_sandbox) takes them).
const WORKLOAD_KINDS: [&str; 2] = ["Deployment", "StatefulSet"];

/// An image reference `HOST/PATH:TAG` of an upstream manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UpstreamRef {
    /// The registry host, with its port when it has one.
    pub host: String,
    /// The repository path in that registry (`agent-sandbox/agent-sandbox-controller`).
    pub path: String,
    pub tag: String,
}

impl UpstreamRef {
    /// `HOST/PATH[:TAG]`, a missing tag being `latest` (as containerd reads it). `None` for what
    /// cannot be mirrored: a reference without a registry host (the default registry, which this
    /// crate does not name), with a digest (the placeholder has another), or one that is no image
    /// reference at all (`ko://…`, a template placeholder).
    pub fn parse(reference: &str) -> Option<Self> {
        if reference.contains("://") || reference.contains('@') {
            return None;
        }
        let (host, rest) = reference.split_once('/')?;
        // Docker's rule: the first component is a host when it has a dot or a port, or is localhost.
        if !(host.contains('.') || host.contains(':') || host == "localhost") || !valid_host(host) {
            return None;
        }
        let (path, tag) = match rest.rsplit_once(':') {
            Some((path, tag)) => (path, tag),
            None => (rest, "latest"),
        };
        (valid_path(path) && valid_tag(tag)).then(|| Self {
            host: host.to_owned(),
            path: path.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// `PATH:TAG`: the reference in the testbed's registry.
    pub fn repository_tag(&self) -> String {
        format!("{}:{}", self.path, self.tag)
    }
}

impl std::fmt::Display for UpstreamRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.host, self.path, self.tag)
    }
}

/// A host name or address with an optional port: dot-separated labels of letters, digits and
/// `-` (so never `..` or a path), then `:DIGITS`.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    name.split('.').all(label)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Repository path components: lower-case letters, digits and separators, none empty.
fn valid_path(path: &str) -> bool {
    path.split('/').all(|component| {
        component
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
    })
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The controller images of every `*.yaml`/`*.yml` file under `dir` (recursively) that can be
/// mirrored, sorted, each once. A missing `dir` has none.
pub(crate) fn controller_images(dir: &Path) -> Result<Vec<UpstreamRef>, Error> {
    let mut refs: Vec<UpstreamRef> = Vec::new();
    for file in yaml_files(dir)? {
        let text = std::fs::read_to_string(&file).map_err(Error::io("reading", &file))?;
        refs.extend(
            workload_images(&text)
                .iter()
                .filter_map(|r| UpstreamRef::parse(r)),
        );
    }
    refs.sort();
    refs.dedup();
    Ok(refs)
}

/// The YAML files under `dir`, sorted.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("reading", &dir)(e)),
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The `image:` values of the Deployments and StatefulSets of a multi-document YAML text, as
/// written (comments and quotes removed), in order.
pub(crate) fn workload_images(text: &str) -> Vec<String> {
    let mut images = Vec::new();
    let mut kind: Option<String> = None;
    let mut found: Vec<String> = Vec::new();
    let mut end_document = |kind: &mut Option<String>, found: &mut Vec<String>| {
        if kind.as_deref().is_some_and(|k| WORKLOAD_KINDS.contains(&k)) {
            images.append(found);
        }
        found.clear();
        *kind = None;
    };
    for line in text.lines() {
        let separator = line
            .strip_prefix("---")
            .or_else(|| line.strip_prefix("..."))
            .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'));
        if separator {
            end_document(&mut kind, &mut found);
            continue;
        }
        if let Some(value) = line.strip_prefix("kind:") {
            kind = Some(scalar(value));
            continue;
        }
        let mut item = line.trim_start();
        while let Some(rest) = item.strip_prefix("- ") {
            item = rest.trim_start();
        }
        if let Some(value) = item.strip_prefix("image:") {
            let value = scalar(value);
            if !value.is_empty() && !value.starts_with(['|', '>', '{', '[']) {
                found.push(value);
            }
        }
    }
    end_document(&mut kind, &mut found);
    images
}

/// A plain or quoted YAML scalar on one line, its trailing comment removed.
fn scalar(value: &str) -> String {
    let value = value.trim();
    let value = match value.find(" #") {
        Some(at) if !value.starts_with(['"', '\'']) => &value[..at],
        _ => value,
    }
    .trim();
    let unquoted = ['"', '\''].iter().find_map(|q| {
        value
            .strip_prefix(*q)
            .and_then(|v| v.split_once(*q))
            .map(|(inner, _)| inner)
    });
    unquoted.unwrap_or(value).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_containerd_reads_them() {
        let parsed =
            UpstreamRef::parse("mirror.example.test/agent-sandbox/controller:v1.2.3").unwrap();
        assert_eq!(parsed.host, "mirror.example.test");
        assert_eq!(parsed.path, "agent-sandbox/controller");
        assert_eq!(parsed.tag, "v1.2.3");
        assert_eq!(parsed.repository_tag(), "agent-sandbox/controller:v1.2.3");
        assert_eq!(
            parsed.to_string(),
            "mirror.example.test/agent-sandbox/controller:v1.2.3"
        );

        let with_port = UpstreamRef::parse("localhost:5000/x:1").unwrap();
        assert_eq!(
            (with_port.host.as_str(), with_port.path.as_str()),
            ("localhost:5000", "x")
        );
        assert_eq!(
            UpstreamRef::parse("mirror.example.test/a/b").unwrap().tag,
            "latest"
        );
        for unmirrorable in [
            "ko://example.test/cmd/agent-sandbox-controller",
            "busybox:1.36",
            "library/busybox",
            "mirror.example.test/a@sha256:0123",
            "../x/y:1",
            "mirror..example/x:1",
            "mirror.example.test/UPPER:1",
            "mirror.example.test/a:.bad",
            "mirror.example.test:port/a:1",
            "mirror.example.test/a//b:1",
        ] {
            assert_eq!(UpstreamRef::parse(unmirrorable), None, "{unmirrorable}");
        }
    }

    #[test]
    fn only_the_workloads_images_are_taken() {
        let text = "\
kind: Namespace
apiVersion: v1
---
apiVersion: apps/v1
metadata:
  name: c
spec:
  template:
    spec:
      containers:
      - args:
        - --extensions
        image: mirror.example.test/agent-sandbox/controller:v0.9.0 # a comment
      - name: second
        image: \"mirror.example.test/agent-sandbox/sidecar:v1\"
kind: Deployment
--- # the next one
kind: StatefulSet
spec:
  template:
    spec:
      containers:
        - image: 'ko://example.test/cmd/agent-sandbox-controller'
          name: c
---
kind: CustomResourceDefinition
spec:
  image:
    type: string
---
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
spec:
  podTemplate:
    spec:
      containers:
        - image: mirror.example.test/someone/else:v2
";
        assert_eq!(
            workload_images(text),
            [
                "mirror.example.test/agent-sandbox/controller:v0.9.0",
                "mirror.example.test/agent-sandbox/sidecar:v1",
                "ko://example.test/cmd/agent-sandbox-controller",
            ]
        );
    }

    #[test]
    fn a_folders_manifests_give_sorted_unique_references() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("release/for-k8s-1.20");
        std::fs::create_dir_all(&nested).unwrap();
        let workload = |image: &str| {
            format!(
                "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: {image}\n"
            )
        };
        std::fs::write(
            dir.path().join("a.yaml"),
            workload("mirror.example.test/agent-sandbox/controller:v2"),
        )
        .unwrap();
        std::fs::write(
            nested.join("b.yml"),
            format!(
                "{}---\n{}",
                workload("mirror.example.test/agent-sandbox/controller:v1"),
                workload("mirror.example.test/agent-sandbox/controller:v2")
            ),
        )
        .unwrap();
        std::fs::write(
            nested.join("notes.txt"),
            workload("mirror.example.test/ignored:v3"),
        )
        .unwrap();
        let refs: Vec<String> = controller_images(dir.path())
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            refs,
            [
                "mirror.example.test/agent-sandbox/controller:v1",
                "mirror.example.test/agent-sandbox/controller:v2",
            ]
        );
        assert_eq!(
            controller_images(&dir.path().join("missing")).unwrap(),
            Vec::new()
        );
    }

    #[test]
    fn the_test_data_names_the_controller_images() {
        let data = crate::paths::agent_sandbox_data();
        if !data.is_dir() {
            return;
        }
        let refs = controller_images(&data).unwrap();
        assert!(
            !refs.is_empty(),
            "no controller image under {}",
            data.display()
        );
        assert!(
            refs.iter()
                .all(|r| r.path.ends_with("agent-sandbox-controller")),
            "{refs:?}"
        );
        assert!(refs.iter().any(|r| r.tag == "v0.1.0"), "{refs:?}");
    }
}
