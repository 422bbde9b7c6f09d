//! A real node (REFERENCE §7): containerd with runc and gVisor's runsc, a kubelet 1.20.2 built
//! from Debian's source, a CNI bridge of the testbed's own, a registry serving the test images
//! and a git server serving a repository snapshot. Pods run for real; only the agent-sandbox
//! controller stays simulated (its pod runs a placeholder, which containerd pulls from that
//! registry under the upstream controller image's name).

mod cgroups;
mod containerd;
mod git_server;
mod kubelet;
mod network;
pub(crate) mod record;

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::{core::v1::Node, node::v1::RuntimeClass};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

use self::record::{Record, RecordsLock};
use crate::{
    bootstrap::FIELD_MANAGER,
    build::{self, TestImages},
    error::Error,
    layout::Layout,
    node::NODE_NAME,
    paths::Binaries,
    pki::Pki,
    process::{Mode, Process},
};

pub(crate) const KUBELET: &str = "kubelet";
pub(crate) const CONTAINERD: &str = "containerd";
pub(crate) const REGISTRY: &str = "registry";
pub(crate) const GIT_SERVER: &str = "git-server";
/// The process holding the node's mount namespace (see [`start_mount_namespace`]).
pub(crate) const MOUNT_NAMESPACE: &str = "mount-namespace";
/// A real node's processes, in the order they are stopped.
pub(crate) const NODE_PROCESSES: [&str; 5] =
    [KUBELET, CONTAINERD, REGISTRY, GIT_SERVER, MOUNT_NAMESPACE];

/// Folders the kubelet 1.20 hard-codes for pod logs; it deletes the entries of pods it does not
/// know, so two nodes sharing them would delete each other's logs.
const HARD_CODED_LOG_DIRS: [(&str, &str); 2] = [
    ("/var/log/pods", "pod-logs"),
    ("/var/log/containers", "container-logs"),
];

/// RuntimeClass `gvisor` runs pods under runsc; `kata-qemu` names a handler containerd lacks, so
/// its pods fail with the runtime's real error, as on a cluster without Kata.
const RUNTIME_CLASSES: [(&str, &str); 2] = [("gvisor", "runsc"), ("kata-qemu", "kata-qemu")];

/// gVisor through runc's shim (see the script's header).
const RUNSC_WRAPPER: &str = include_str!("runsc-wrapper.sh");

const START_TIMEOUT: Duration = Duration::from_secs(30);
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// What tests and users need to know of a real node: `testbed.env`.
#[derive(Debug, Clone)]
pub struct NodeEnv {
    pub node_name: String,
    /// The node's address on the pod bridge (where the git server listens).
    pub node_ip: Ipv4Addr,
    /// `127.0.0.1:PORT`, the registry containerd pulls from.
    pub registry: String,
    pub devcontainer_image: String,
    pub envbuilder_image: String,
    pub tools_image: String,
    pub pause_image: String,
    /// `git://NODE_IP:PORT/NAME.git`: the served repository as pods see it.
    pub git_url: String,
}

impl NodeEnv {
    /// `KEY='value'` lines a shell can source.
    pub fn to_env_file(&self, kubeconfig: &Path) -> String {
        let pairs = [
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("NODE_NAME", self.node_name.clone()),
            ("NODE_IP", self.node_ip.to_string()),
            ("REGISTRY", self.registry.clone()),
            ("DEVCONTAINER_IMAGE", self.devcontainer_image.clone()),
            ("ENVBUILDER_IMAGE", self.envbuilder_image.clone()),
            ("TOOLS_IMAGE", self.tools_image.clone()),
            ("PAUSE_IMAGE", self.pause_image.clone()),
            ("GIT_URL", self.git_url.clone()),
        ];
        pairs
            .iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
            .collect()
    }
}

/// The kubelet's root folder.
pub(crate) fn kubelet_root(layout: &Layout) -> PathBuf {
    layout.node().join("kubelet")
}

/// What starting a real node takes.
pub(crate) struct NodeStart<'a> {
    pub layout: &'a Layout,
    pub binaries: &'a Binaries,
    pub images: &'a TestImages,
    pub git_repo: &'a Path,
    pub mode: Mode,
}

/// A running real node; [`RealNode::stop`] tears it down.
#[derive(Debug)]
pub(crate) struct RealNode {
    record: Record,
    env: NodeEnv,
    kubelet: tokio::sync::Mutex<Kubelet>,
}

/// The kubelet's process and how to start it again.
#[derive(Debug)]
struct Kubelet {
    /// `None` only while restarting.
    process: Option<Process>,
    args: Vec<String>,
    layout: Layout,
    mode: Mode,
    /// Where its API listens (the API server's streams go there).
    address: Ipv4Addr,
    port: u16,
}

impl RealNode {
    /// Removes what dead testbeds left, then starts the registry, the git server, the network,
    /// containerd and the kubelet, and waits until the node is Ready and schedulable. A failure
    /// tears down what was made (the logs stay).
    pub async fn start(client: &Client, start: NodeStart<'_>) -> Result<Self, Error> {
        let record = {
            let lock = RecordsLock::acquire()?;
            record::sweep(&lock);
            let taken: Vec<u8> = lock.records().iter().map(|r| r.subnet).collect();
            let record = Record::new(start.layout, network::free_subnet(&taken)?);
            // Written before anything is made, so that a crash from here on is swept later.
            record.save()?;
            // Made under the lock: the next testbed sees the address as taken.
            if let Err(error) = network::create_bridge(&record.bridge(), record.subnet) {
                record::teardown(&record);
                return Err(error);
            }
            record
        };
        match start_processes(client, &start, &record).await {
            Ok((env, kubelet)) => {
                let text = env.to_env_file(&start.layout.kubeconfig());
                let path = start.layout.env_file();
                std::fs::write(&path, text).map_err(Error::io("writing", &path))?;
                Ok(Self {
                    record,
                    env,
                    kubelet: tokio::sync::Mutex::new(kubelet),
                })
            }
            Err(error) => {
                record::teardown(&record);
                Err(error)
            }
        }
    }

    pub fn env(&self) -> &NodeEnv {
        &self.env
    }

    /// Stops the kubelet (TERM, as a service manager restarting it does) and starts it again with
    /// the same configuration; returns once the node is Ready again. Containers keep running
    /// (containerd holds them); every exec, attach and port-forward stream through the kubelet
    /// is cut.
    pub async fn restart_kubelet(&self, client: &Client) -> Result<(), Error> {
        let mut kubelet = self.kubelet.lock().await;
        // The old one must be gone before the new one binds its port.
        if let Some(old) = kubelet.process.take() {
            tokio::task::spawn_blocking(move || old.stop())
                .await
                .expect("stopping the kubelet does not panic");
        }
        let mut fresh = Process::spawn(
            &kubelet.layout,
            KUBELET,
            Path::new("nsenter"),
            kubelet.args.clone(),
            kubelet.mode,
        )?;
        // The node still looks Ready from before: wait for the new kubelet's API first.
        let ready = match wait_port(&mut fresh, kubelet.address, kubelet.port).await {
            Ok(()) => wait_node_ready(client, &mut fresh).await,
            Err(error) => Err(error),
        };
        kubelet.process = Some(fresh);
        ready
    }

    /// Stops every process of the node and removes what it made outside the testbed directory.
    pub fn stop(&self) {
        record::teardown(&self.record);
    }

    /// Tears down the real node of the testbed in `layout`, if it had one (`kube-testbed stop`).
    pub fn stop_in(layout: &Layout) {
        let path = layout.node().join("record.json");
        if let Some(record) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Record>(&text).ok())
        {
            record::teardown(&record);
        } else {
            // A node that got no further than its files: still unmount what may be there.
            record::unmount_under(layout.dir());
        }
    }
}

async fn start_processes(
    client: &Client,
    start: &NodeStart<'_>,
    record: &Record,
) -> Result<(NodeEnv, Kubelet), Error> {
    let layout = start.layout;
    let node_dir = layout.node();
    std::fs::create_dir_all(&node_dir).map_err(Error::io("creating", &node_dir))?;
    let record_copy = node_dir.join("record.json");
    std::fs::write(
        &record_copy,
        serde_json::to_string_pretty(record).expect("JSON"),
    )
    .map_err(Error::io("writing", &record_copy))?;
    cgroups::create(&record.cgroup())?;

    // The registry (Debian's docker-registry, read-only on the build cache), on loopback:
    // containerd pulls from the machine's side.
    let registry_port = free_port(Ipv4Addr::LOCALHOST)?;
    let registry = format!("127.0.0.1:{registry_port}");
    let registry_config = node_dir.join("registry.yaml");
    write(
        &registry_config,
        &build::registry_config(&start.images.registry_root, &registry),
    )?;
    let mut registry_process = Process::spawn(
        layout,
        REGISTRY,
        Path::new("/usr/bin/docker-registry"),
        ["serve".as_ref(), registry_config.as_os_str()],
        start.mode,
    )?;
    wait_port(&mut registry_process, Ipv4Addr::LOCALHOST, registry_port).await?;
    let image = |name: &str| format!("{registry}/{name}");

    // The git server, on the node's bridge address, where pods reach it.
    let served = node_dir.join("git");
    let repo_name = git_server::snapshot(start.git_repo, &served)?;
    let git_port = free_port(record.node_ip())?;
    let mut git_process = Process::spawn(
        layout,
        GIT_SERVER,
        Path::new("git"),
        git_server::daemon_args(&served, record.node_ip(), git_port),
        start.mode,
    )?;
    wait_port(&mut git_process, record.node_ip(), git_port).await?;

    let namespace = start_mount_namespace(layout, start.mode).await?;
    let in_namespace = |program: &str, args: Vec<String>| {
        let mut all = vec![
            format!("--mount={namespace}"),
            "--".to_owned(),
            program.to_owned(),
        ];
        all.extend(args);
        all
    };

    // containerd.
    let pause_image = image(&start.images.pause);
    let cni_dir = node_dir.join("cni");
    write(
        &cni_dir.join("10-testbed.conflist"),
        &network::cni_config(&record.cni_network(), &record.bridge(), record.subnet),
    )?;
    // The testbed's registry, and the hosts of the upstream images it mirrors (the controller's):
    // their pulls go to it, so pods name those images as the upstream manifests do.
    let hosts_dir = node_dir.join("certs.d");
    for host in std::iter::once(registry.clone()).chain(start.images.mirrored_hosts()) {
        write(
            &hosts_dir.join(&host).join("hosts.toml"),
            &containerd::registry_hosts(&registry),
        )?;
    }
    let wrapper = node_dir.join("bin/runsc");
    write(&wrapper, RUNSC_WRAPPER)?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .map_err(Error::io("changing the permissions of", &wrapper))?;
    let socket = node_dir.join("containerd.sock");
    let config = containerd::ContainerdConfig {
        root: &node_dir.join("containerd"),
        state: &node_dir.join("state"),
        socket: &socket,
        cni_conf_dir: &cni_dir,
        registry_hosts: &hosts_dir,
        pause_image: &pause_image,
        runc_root: &node_dir.join("runc"),
        runsc_wrapper: &wrapper,
        runsc_root: &node_dir.join("runsc"),
    };
    let containerd_config = node_dir.join("containerd.toml");
    write(&containerd_config, &config.render())?;
    let mut containerd_process = Process::spawn(
        layout,
        CONTAINERD,
        Path::new("nsenter"),
        in_namespace(
            "containerd",
            vec![
                "--config".to_owned(),
                containerd_config.display().to_string(),
            ],
        ),
        start.mode,
    )?;
    wait_socket(&mut containerd_process, &socket).await?;

    // The kubelet.
    let kubelet_port = free_port(record.node_ip())?;
    let kubelet_config = node_dir.join("kubelet.yaml");
    let ca = Pki::paths(&layout.pki()).ca_cert;
    write(
        &kubelet_config,
        &kubelet::KubeletConfig {
            address: record.node_ip(),
            port: kubelet_port,
            cgroup_root: &record.cgroup(),
            client_ca: &ca,
            volume_plugin_dir: &node_dir.join("volume-plugins"),
        }
        .render(),
    )?;
    let args = vec![
        format!("--config={}", kubelet_config.display()),
        format!("--kubeconfig={}", layout.kubelet_kubeconfig().display()),
        "--container-runtime=remote".to_owned(),
        format!("--container-runtime-endpoint=unix://{}", socket.display()),
        "--runtime-request-timeout=5m".to_owned(),
        format!("--pod-infra-container-image={pause_image}"),
        format!("--hostname-override={NODE_NAME}"),
        format!("--node-ip={}", record.node_ip()),
        format!("--root-dir={}", kubelet_root(layout).display()),
        format!("--cert-dir={}", node_dir.join("kubelet-pki").display()),
        "--v=2".to_owned(),
    ];
    let kubelet_program = start.binaries.kubelet.display().to_string();
    let kubelet_args = in_namespace(&kubelet_program, args);
    let mut kubelet_process = Process::spawn(
        layout,
        KUBELET,
        Path::new("nsenter"),
        kubelet_args.clone(),
        start.mode,
    )?;
    wait_node_ready(client, &mut kubelet_process).await?;
    create_runtime_classes(client).await?;
    let kubelet = Kubelet {
        process: Some(kubelet_process),
        args: kubelet_args,
        layout: layout.clone(),
        mode: start.mode,
        address: record.node_ip(),
        port: kubelet_port,
    };

    let env = NodeEnv {
        node_name: NODE_NAME.to_owned(),
        node_ip: record.node_ip(),
        registry: registry.clone(),
        devcontainer_image: image(&start.images.devcontainer),
        envbuilder_image: image(&start.images.envbuilder),
        tools_image: image(&start.images.tools),
        pause_image,
        git_url: git_server::clone_url(record.node_ip(), git_port, &repo_name),
    };
    Ok((env, kubelet))
}

/// Starts the holder of the node's mount namespace, where containerd and the kubelet (and so every
/// container) run: the kubelet's hard-coded pod-log folders are bind mounts of the testbed's own
/// there, and every mount the node makes — root filesystems, volumes, network namespaces — lives
/// and dies with it, out of the machine's sight. Returns the namespace's path for `nsenter`.
async fn start_mount_namespace(layout: &Layout, mode: Mode) -> Result<String, Error> {
    let mut script = String::from("set -e; mount --make-rprivate /");
    for (machine_dir, own) in HARD_CODED_LOG_DIRS {
        let own = layout.node().join(own);
        std::fs::create_dir_all(&own).map_err(Error::io("creating", &own))?;
        std::fs::create_dir_all(machine_dir).map_err(Error::io("creating", machine_dir))?;
        script.push_str(&format!("; mount --bind '{}' {machine_dir}", own.display()));
    }
    // Then waits until stopped, as a process whose command line names the testbed directory (as
    // `stop` and the guard require of the processes they stop): `tail -f` of a file of the node's.
    let marker = layout.node().join(MOUNT_NAMESPACE);
    std::fs::write(
        &marker,
        "The kubelet's and containerd's mount namespace is held by `tail -f` of this file.\n",
    )
    .map_err(Error::io("writing", &marker))?;
    script.push_str(&format!("; exec tail -f '{}'", marker.display()));
    let mut holder = Process::spawn(
        layout,
        MOUNT_NAMESPACE,
        Path::new("unshare"),
        ["--mount", "--propagation", "private", "sh", "-c", &script],
        mode,
    )?;
    let namespace = format!("/proc/{}/ns/mnt", holder.pid());
    let mountinfo = format!("/proc/{}/mountinfo", holder.pid());
    wait_for(&mut holder, "its mount namespace", || {
        std::fs::read_to_string(&mountinfo).is_ok_and(|m| {
            HARD_CODED_LOG_DIRS
                .iter()
                .all(|(dir, _)| m.contains(&format!(" {dir} ")))
        })
    })
    .await?;
    Ok(namespace)
}

/// Waits until the kubelet's Node is Ready and carries no `not-ready`/`unreachable` taint (the
/// node lifecycle controller lifts them once it sees Ready).
async fn wait_node_ready(client: &Client, kubelet: &mut Process) -> Result<(), Error> {
    let nodes = Api::<Node>::all(client.clone());
    let deadline = Instant::now() + NODE_READY_TIMEOUT;
    loop {
        if let Some(status) = kubelet.exited() {
            return Err(kubelet.error(format!("exited ({status})")));
        }
        if let Some(node) = nodes.get_opt(NODE_NAME).await? {
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let tainted = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .any(|t| t.key.starts_with("node.kubernetes.io/"));
            if ready && !tainted {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(kubelet.error(format!(
                "did not make node {NODE_NAME} Ready within {} s",
                NODE_READY_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn create_runtime_classes(client: &Client) -> Result<(), Error> {
    let classes = Api::<RuntimeClass>::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for (name, handler) in RUNTIME_CLASSES {
        let class = json!({
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": { "name": name },
            "handler": handler,
        });
        classes.patch(name, &params, &Patch::Apply(&class)).await?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
    }
    std::fs::write(path, text).map_err(Error::io("writing", path))
}

fn free_port(address: Ipv4Addr) -> Result<u16, Error> {
    let listener = TcpListener::bind((address, 0))
        .map_err(Error::io("binding a port on", address.to_string()))?;
    Ok(listener
        .local_addr()
        .map_err(Error::io("binding a port on", address.to_string()))?
        .port())
}

async fn wait_port(process: &mut Process, address: Ipv4Addr, port: u16) -> Result<(), Error> {
    let target = SocketAddr::from((address, port));
    wait_for(process, &format!("to listen on {target}"), || {
        TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
    })
    .await
}

async fn wait_socket(process: &mut Process, socket: &Path) -> Result<(), Error> {
    wait_for(
        process,
        &format!("to listen on {}", socket.display()),
        || std::os::unix::net::UnixStream::connect(socket).is_ok(),
    )
    .await
}

async fn wait_for(
    process: &mut Process,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = process.exited() {
            return Err(process.error(format!("exited ({status})")));
        }
        if done() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(process.error(format!(
                "did not start {what} within {} s",
                START_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
