//! A real node's pod network: a bridge of the testbed's own carrying the node's address, and CNI's
//! `bridge` plugin with no gateway, no masquerade and no routes (REFERENCE §7). Pods reach each
//! other and the node's address and nothing else: they have no default route and the machine's
//! `ip_forward` is never touched.

use std::{net::Ipv4Addr, process::Command};

use serde_json::json;

use crate::error::Error;

/// The pod subnets are `10.213.N.0/24`, N chosen per testbed among those no interface uses.
const SUBNET_BASE: [u8; 2] = [10, 213];

/// The node's address on the bridge (`.1`) of subnet `n`.
pub(crate) fn node_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], n, 1)
}

pub(crate) fn subnet(n: u8) -> String {
    format!("{}.{}.{n}.0/24", SUBNET_BASE[0], SUBNET_BASE[1])
}

/// A subnet number that no interface of the machine uses and that is not in `taken`.
pub(crate) fn free_subnet(taken: &[u8]) -> Result<u8, Error> {
    let output = ip(&["-4", "-o", "addr", "show"])?;
    let prefix = format!("inet {}.{}.", SUBNET_BASE[0], SUBNET_BASE[1]);
    let used: Vec<u8> = output
        .lines()
        .filter_map(|line| line.split_once(&prefix))
        .filter_map(|(_, rest)| rest.split('.').next()?.parse().ok())
        .collect();
    (1..=254u8)
        .find(|n| !used.contains(n) && !taken.contains(n))
        .ok_or_else(|| Error::State("no free pod subnet in 10.213.0.0/16".to_owned()))
}

/// Creates the bridge with the node's address (replacing a leftover of the same name).
pub(crate) fn create_bridge(name: &str, n: u8) -> Result<(), Error> {
    delete_bridge(name);
    ip(&["link", "add", name, "type", "bridge"])?;
    ip(&["addr", "add", &format!("{}/24", node_ip(n)), "dev", name])?;
    ip(&["link", "set", name, "up"])?;
    Ok(())
}

/// Deletes the bridge and every link still attached to it (pods' host-side veths); quiet when
/// there is none.
pub(crate) fn delete_bridge(name: &str) {
    if let Ok(links) = ip(&["-o", "link", "show", "master", name]) {
        for link in links.lines() {
            // "7: vethXXXX@if2: <…>": the name sits between the first ": " and the '@' or ':'.
            let Some(rest) = link.split(": ").nth(1) else {
                continue;
            };
            let veth = rest.split(['@', ':']).next().unwrap_or_default();
            if !veth.is_empty() {
                let _ = ip(&["link", "del", veth]);
            }
        }
    }
    let _ = ip(&["link", "del", name]);
}

/// The CNI configuration list containerd reads: the bridge (host-local addresses from `.10` on)
/// and the loopback, with no route and no masquerade.
pub(crate) fn cni_config(network: &str, bridge: &str, n: u8) -> String {
    let config = json!({
        "cniVersion": "0.4.0",
        "name": network,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            // A gateway would turn on ip_forward; masquerade would give pods a way out.
            "isGateway": false,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{
                    "subnet": subnet(n),
                    "rangeStart": format!("{}.{}.{n}.10", SUBNET_BASE[0], SUBNET_BASE[1]),
                }]],
                "routes": [],
            },
        }],
    });
    serde_json::to_string_pretty(&config).expect("JSON")
}

fn ip(args: &[&str]) -> Result<String, Error> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(Error::io("running", "ip"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Build {
            step: format!("ip {}", args.join(" ")),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cni_network_has_no_way_out() {
        let config: serde_json::Value = serde_json::from_str(&cni_config("n", "ktb-1", 7)).unwrap();
        let bridge = &config["plugins"][0];
        assert_eq!(bridge["isGateway"], false);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["routes"], json!([]));
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.213.7.0/24");
        assert_eq!(node_ip(7).to_string(), "10.213.7.1");
    }
}
