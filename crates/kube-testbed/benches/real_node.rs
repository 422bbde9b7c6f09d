//! Figures of the real node, measured, never asserted: testbed start, pod create→Ready under runc
//! and gVisor (p50 and p90 over N pods, created one after another), and the resident memory of the
//! kubelet and containerd afterwards.
//!
//! `cargo bench -p kube-testbed --bench real_node [-- PODS]` (default 10; needs root and
//! `kube-testbed build`).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{DeleteParams, PostParams},
    runtime::wait::await_condition,
};
use kube_testbed::{NodeKind, Testbed, TestbedOptions};

#[tokio::main]
async fn main() {
    let pods: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let started = Instant::now();
    let testbed = Testbed::start_with(TestbedOptions::default().no_crds().node(NodeKind::Real))
        .await
        .expect("a testbed with a real node");
    println!(
        "testbed start (control plane + real node): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let tools = testbed.node_env().unwrap().tools_image.clone();
    let client = testbed.client().unwrap();
    let api = Api::<Pod>::namespaced(client, "default");

    println!("| runtime | pods | p50 create→Ready | p90 | max |");
    println!("| --- | --- | --- | --- | --- |");
    for runtime in [None, Some("gvisor")] {
        let mut times = Vec::new();
        for i in 0..pods {
            let name = format!("bench-{}-{i}", runtime.unwrap_or("runc"));
            let mut pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": { "name": name },
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{ "name": "main", "image": tools, "command": ["sleep", "3600"] }],
                },
            }))
            .unwrap();
            if let Some(class) = runtime {
                pod.spec.as_mut().unwrap().runtime_class_name = Some(class.to_owned());
            }
            let begin = Instant::now();
            api.create(&PostParams::default(), &pod).await.unwrap();
            tokio::time::timeout(
                Duration::from_secs(120),
                await_condition(api.clone(), &name, is_pod_ready()),
            )
            .await
            .expect("Ready in time")
            .unwrap();
            times.push(begin.elapsed());
        }
        for i in 0..pods {
            let name = format!("bench-{}-{i}", runtime.unwrap_or("runc"));
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize].as_secs_f64();
        println!(
            "| {} | {pods} | {:.2} s | {:.2} s | {:.2} s |",
            runtime.unwrap_or("runc"),
            at(0.5),
            at(0.9),
            at(1.0)
        );
    }
    for process in ["kubelet", "containerd"] {
        let pid = std::fs::read_to_string(testbed.dir().join(format!("{process}.pid"))).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or("VmRSS: ?");
        println!("{process} {}", rss.trim_start_matches("VmRSS:").trim());
    }
}

/// The pod's Ready condition is True.
fn is_pod_ready() -> impl kube::runtime::wait::Condition<Pod> {
    |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }
}
