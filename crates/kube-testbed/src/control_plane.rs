//! etcd, kube-apiserver, kube-controller-manager and kube-scheduler (REFERENCE §6 step 5), on free
//! loopback ports so that several testbeds run side by side.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    error::Error,
    kubeconfig::{self, ClusterAccess},
    layout::Layout,
    options::NodeKind,
    paths::Binaries,
    pki::Pki,
    process::{self, Mode, Process},
};

/// Service cluster IPs: a loopback range, so that no address outside this machine ever appears.
/// (No traffic goes to service IPs: there is no kube-proxy.)
const SERVICE_CLUSTER_IP_RANGE: &str = "127.2.0.0/16";

/// Controllers that need a cloud or a network plugin are off.
const CONTROLLERS: &str = "*,-nodeipam,-cloud-node-lifecycle,-route,-service";

/// The controllers for a node kind: the node lifecycle controller would mark the fake node
/// unreachable (it posts no heartbeats), while a real kubelet needs it to lift the `not-ready`
/// taint once the node is Ready, as on any cluster.
fn controllers(node: NodeKind) -> String {
    match node {
        NodeKind::Real => CONTROLLERS.to_owned(),
        NodeKind::Simulated => format!("{CONTROLLERS},-nodelifecycle"),
    }
}

/// The API server's bearer tokens.
struct Tokens<'a> {
    admin: &'a str,
    node: &'a str,
}

/// Tries at starting on free ports (see [`ControlPlane::start`]).
const PORT_ATTEMPTS: u32 = 3;

/// How long a restarted API server gets to stop before it is killed.
const RESTART_GRACE: Duration = Duration::from_secs(2);

const ETCD_TIMEOUT: Duration = Duration::from_secs(30);
const APISERVER_TIMEOUT: Duration = Duration::from_secs(90);

/// The running control plane of one testbed.
#[derive(Debug)]
pub(crate) struct ControlPlane {
    layout: Layout,
    binaries: Binaries,
    mode: Mode,
    node: NodeKind,
    apiserver_args: Vec<String>,
    /// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, while running.
    processes: Vec<Process>,
    /// The admin client configuration.
    config: kube::Config,
}

impl ControlPlane {
    /// Generates the PKI and admin kubeconfig, starts etcd and the API server, waits until the API
    /// server is ready, then starts the controller manager and the scheduler. A port taken between
    /// choosing it and binding it (by a testbed starting beside this one) means another try.
    pub async fn start(
        layout: &Layout,
        binaries: Binaries,
        mode: Mode,
        node: NodeKind,
    ) -> Result<Self, Error> {
        let pki = Pki::generate(&layout.pki())?;
        let token = kubeconfig::random_token()?;
        let node_token = kubeconfig::random_token()?;
        let node_user = format!("system:node:{}", crate::node::NODE_NAME);
        std::fs::write(
            layout.tokens(),
            format!(
                "{token},admin,admin,system:masters\n{node_token},{node_user},{node_user},system:nodes\n"
            ),
        )
        .map_err(Error::io("writing", layout.tokens()))?;
        let tokens = Tokens {
            admin: &token,
            node: &node_token,
        };
        let mut attempt = 1;
        loop {
            match Self::start_on_free_ports(layout, &binaries, mode, node, &pki, &tokens).await {
                Err(error) if attempt < PORT_ATTEMPTS && is_port_clash(&error) => {
                    tracing::debug!(%error, "port clash: starting again on other ports");
                    attempt += 1;
                    // etcd remembers its peer address: start it afresh.
                    let data = layout.etcd_data();
                    let _ = std::fs::remove_dir_all(&data);
                }
                result => return result,
            }
        }
    }

    async fn start_on_free_ports(
        layout: &Layout,
        binaries: &Binaries,
        mode: Mode,
        node: NodeKind,
        pki: &Pki,
        tokens: &Tokens<'_>,
    ) -> Result<Self, Error> {
        let apiserver_port = free_port()?;
        let access = ClusterAccess {
            server: format!("https://127.0.0.1:{apiserver_port}"),
            ca_pem: Some(pki.ca_pem.clone()),
            insecure: false,
        };
        access.write_kubeconfig(&layout.kubeconfig(), "admin", tokens.admin)?;
        // A real node's kubelet authenticates as its node (the Node authorizer's user).
        access.write_kubeconfig(
            &layout.kubelet_kubeconfig(),
            &format!("system:node:{}", crate::node::NODE_NAME),
            tokens.node,
        )?;
        let config = kubeconfig::load(&layout.kubeconfig()).await?;
        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let mut control_plane = Self {
            layout: layout.clone(),
            apiserver_args: apiserver_args(layout, pki, apiserver_port, etcd_port),
            binaries: binaries.clone(),
            mode,
            node,
            processes: Vec::new(),
            config,
        };
        let started = control_plane
            .start_processes(etcd_port, etcd_peer_port, pki)
            .await;
        if let Err(error) = started {
            control_plane.stop();
            return Err(error);
        }
        Ok(control_plane)
    }

    async fn start_processes(
        &mut self,
        etcd_port: u16,
        etcd_peer_port: u16,
        pki: &Pki,
    ) -> Result<(), Error> {
        let etcd = self.binaries.etcd.clone();
        self.spawn(
            process::ETCD,
            &etcd,
            &etcd_args(&self.layout, etcd_port, etcd_peer_port),
        )?;
        self.wait_for_port(process::ETCD, etcd_port, ETCD_TIMEOUT)
            .await?;
        self.spawn_apiserver()?;
        self.wait_apiserver_ready().await?;
        let kubeconfig = self.layout.kubeconfig().display().to_string();
        let controller_manager = self.binaries.kube_controller_manager.clone();
        self.spawn(
            process::CONTROLLER_MANAGER,
            &controller_manager,
            &[
                format!("--kubeconfig={kubeconfig}"),
                format!("--controllers={}", controllers(self.node)),
                format!(
                    "--service-account-private-key-file={}",
                    pki.service_account_key.display()
                ),
                format!("--root-ca-file={}", pki.ca_cert.display()),
                // No serving ports: nothing scrapes them, and fixed defaults would clash between testbeds.
                "--port=0".to_owned(),
                "--secure-port=0".to_owned(),
                "--leader-elect=false".to_owned(),
                // A safety net behind the event-driven binding of provisioned volumes.
                "--pvclaimbinder-sync-period=5s".to_owned(),
            ],
        )?;
        let scheduler = self.binaries.kube_scheduler.clone();
        self.spawn(
            process::SCHEDULER,
            &scheduler,
            &[
                format!("--kubeconfig={kubeconfig}"),
                "--port=0".to_owned(),
                "--secure-port=0".to_owned(),
                "--leader-elect=false".to_owned(),
            ],
        )?;
        Ok(())
    }

    /// The admin client configuration (the CA embedded, a token in `system:masters`).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// Stops the API server and starts it again on the same port with the same data, waiting
    /// until it is ready: clients see it go away and come back, as during an upgrade.
    pub async fn restart_apiserver(&mut self) -> Result<(), Error> {
        if let Some(index) = self
            .processes
            .iter()
            .position(|p| p.name() == process::APISERVER)
        {
            // With clients connected, a TERMed 1.20 API server waits up to a minute for their
            // watches to end: a short grace, then it is killed.
            self.processes.remove(index).stop_within(RESTART_GRACE);
        }
        self.spawn_apiserver()?;
        self.wait_apiserver_ready().await
    }

    /// An error if one of the processes has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        for process in &mut self.processes {
            if let Some(status) = process.exited() {
                return Err(process.error(format!("exited ({status})")));
            }
        }
        Ok(())
    }

    /// Stops the processes, the API server's clients first and etcd last.
    pub fn stop(&mut self) {
        while let Some(process) = self.processes.pop() {
            process.stop();
        }
    }

    fn spawn(&mut self, name: &str, program: &Path, args: &[String]) -> Result<(), Error> {
        let process = Process::spawn(&self.layout, name, program, args, self.mode)?;
        self.processes.push(process);
        Ok(())
    }

    fn spawn_apiserver(&mut self) -> Result<(), Error> {
        let program = self.binaries.kube_apiserver.clone();
        let args = self.apiserver_args.clone();
        // Keep the stop order: the API server goes before etcd, after its clients.
        let process = Process::spawn(&self.layout, process::APISERVER, &program, &args, self.mode)?;
        let at = self
            .processes
            .iter()
            .position(|p| p.name() == process::ETCD)
            .map_or(0, |i| i + 1);
        self.processes.insert(at, process);
        Ok(())
    }

    async fn wait_for_port(
        &mut self,
        name: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            self.check_running()?;
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::timeout(
                    format!("{name} to listen on 127.0.0.1:{port}"),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls `/readyz` (etcd reachable, bootstrap RBAC and priority classes in place).
    async fn wait_apiserver_ready(&mut self) -> Result<(), Error> {
        let client = kubeconfig::client(&self.config)?;
        let deadline = Instant::now() + APISERVER_TIMEOUT;
        loop {
            self.check_running()?;
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a valid request");
            match client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                Ok(body) => tracing::debug!(%body, "API server not ready yet"),
                Err(error) => tracing::debug!(%error, "API server not ready yet"),
            }
            if Instant::now() > deadline {
                let message = format!(
                    "did not become ready within {} s",
                    APISERVER_TIMEOUT.as_secs()
                );
                let apiserver = self
                    .processes
                    .iter()
                    .find(|p| p.name() == process::APISERVER);
                return Err(apiserver.map_or_else(
                    || Error::timeout("the API server", APISERVER_TIMEOUT),
                    |p| p.error(message),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn etcd_args(layout: &Layout, port: u16, peer_port: u16) -> Vec<String> {
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=testbed".to_owned(),
        format!("--data-dir={}", layout.etcd_data().display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=testbed={peer}"),
        "--logger=zap".to_owned(),
        "--log-level=warn".to_owned(),
    ]
}

fn apiserver_args(layout: &Layout, pki: &Pki, port: u16, etcd_port: u16) -> Vec<String> {
    let path = |p: &PathBuf| p.display().to_string();
    vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--secure-port={port}"),
        "--insecure-port=0".to_owned(),
        format!("--cert-dir={}", layout.pki().display()),
        format!("--tls-cert-file={}", path(&pki.serving_cert)),
        format!("--tls-private-key-file={}", path(&pki.serving_key)),
        format!("--token-auth-file={}", layout.tokens().display()),
        // Node: the kubelet of a real node (user `system:node:<name>`) gets exactly its rights.
        "--authorization-mode=Node,RBAC".to_owned(),
        format!(
            "--kubelet-client-certificate={}",
            path(&pki.kubelet_client_cert)
        ),
        format!("--kubelet-client-key={}", path(&pki.kubelet_client_key)),
        "--allow-privileged=true".to_owned(),
        format!(
            "--service-account-key-file={}",
            path(&pki.service_account_pub)
        ),
        format!(
            "--service-account-signing-key-file={}",
            path(&pki.service_account_key)
        ),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
        format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
        "--kubelet-preferred-address-types=InternalIP".to_owned(),
        // The `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints reject (loopback):
        // without this the API server logs that error every 10 s.
        "--endpoint-reconciler-type=none".to_owned(),
        "--profiling=false".to_owned(),
    ]
}

/// Whether a process exited because its port was taken.
fn is_port_clash(error: &Error) -> bool {
    matches!(error, Error::Component { log_tail, .. } if log_tail.contains("address already in use"))
}

/// A port free on 127.0.0.1 at the time of asking.
pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(Error::io("binding a port on", "127.0.0.1"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("binding a port on", "127.0.0.1"))?
        .port();
    Ok(port)
}
