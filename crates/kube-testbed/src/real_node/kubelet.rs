//! The kubelet's configuration for a real node (REFERENCE §7): cgroupfs under the testbed's own
//! cgroup, its API on the node's bridge address with webhook authentication and authorization
//! (only the API server's client certificate, in `system:masters`, gets through), no iptables
//! rules (they would masquerade), no fixed local ports that a second testbed would clash on.

use std::{net::Ipv4Addr, path::Path};

use serde_json::json;

pub(crate) struct KubeletConfig<'a> {
    pub address: Ipv4Addr,
    pub port: u16,
    pub cgroup_root: &'a str,
    pub client_ca: &'a Path,
    pub volume_plugin_dir: &'a Path,
}

impl KubeletConfig<'_> {
    /// The KubeletConfiguration (JSON is YAML).
    pub fn render(&self) -> String {
        let config = json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.address.to_string(),
            "port": self.port,
            "readOnlyPort": 0,
            "healthzPort": 0,
            "authentication": {
                "anonymous": { "enabled": false },
                "webhook": { "enabled": true },
                "x509": { "clientCAFile": self.client_ca.display().to_string() },
            },
            "authorization": { "mode": "Webhook" },
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": format!("/{}", self.cgroup_root),
            "cgroupsPerQOS": true,
            "enforceNodeAllocatable": ["pods"],
            "failSwapOn": false,
            // Else the kubelet adds a MASQUERADE rule: pods would get a way out.
            "makeIPTablesUtilChains": false,
            "volumePluginDir": self.volume_plugin_dir.display().to_string(),
            "serializeImagePulls": false,
            // The disk of a development machine is often fuller than a node's: evict only when
            // it is really full.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            // Pods see changes (ConfigMaps, Secrets, status) about as fast as on a small cluster.
            "syncFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
            "fileCheckFrequency": "10s",
            "staticPodPath": "",
        });
        serde_json::to_string_pretty(&config).expect("JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_never_masquerades_and_authenticates_callers() {
        let text = KubeletConfig {
            address: Ipv4Addr::new(10, 213, 1, 1),
            port: 10250,
            cgroup_root: "kube-testbed-ab",
            client_ca: Path::new("/tb/pki/ca.crt"),
            volume_plugin_dir: Path::new("/tb/node/plugins"),
        }
        .render();
        let config: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(config["makeIPTablesUtilChains"], false);
        assert_eq!(config["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(config["authorization"]["mode"], "Webhook");
        assert_eq!(config["cgroupRoot"], "/kube-testbed-ab");
        assert_eq!(config["address"], "10.213.1.1");
    }
}
