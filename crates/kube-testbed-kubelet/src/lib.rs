//! A fake kubelet for kube-testbed: pod status, logs, exec and port-forward served to a real API server.
//!
//! It watches the pods bound to its node and plays their lifecycle (phases, container states,
//! conditions, crash loops, image pull failures, log scripts) as the pods' annotations ask, merged
//! over the rules in ConfigMap `kube-system/kube-testbed-behaviours` (key `rules.json`). Its HTTPS
//! API is the part of the kubelet's the API server proxies to: `containerLogs`, `exec` (WebSocket)
//! and `portForward` (WebSocket and SPDY). Nothing runs in a container: exec runs local processes
//! in the pod's directory, port-forward dials local stand-in services or ports named by annotations.
//!
//! Annotations (prefix `testbed.claude-sandbox.dev/`):
//!
//! | annotation | effect |
//! | --- | --- |
//! | `start-delay` (`200ms`) | Pending/ContainerCreating → Running |
//! | `ready-delay` (`0s`), `never-ready` | Running → Ready, or never |
//! | `image-pull-failure` | `ErrImagePull` then `ImagePullBackOff`, never runs |
//! | `crash-loop`, `exit-code` (1), `run-seconds` (1) | runs end with the exit code; restarted per `restartPolicy` (CrashLoopBackOff, ~2 s apart) or Succeeded/Failed |
//! | `log-script` | `envbuilder`, `envbuilder-error` (exits 1) or lines `<delay-ms> <text>` |
//! | `forward-<port>: <localPort>` | port-forward to `127.0.0.1:<localPort>` |
//! | `stand-ins` | overrides [`KubeletConfig::stand_ins`] |
//!
//! Per pod `pods_dir/<ns>/<pod>/`: `bin/` (first on exec's `PATH`), `root/` (exec's working and
//! home directory), `<container>.log` and `<container>.previous.log`, and the stand-ins' files
//! (`sshd_config`, host key, `authorized_keys`, `sshd.log`). The directory stays after the pod.

mod api;
mod behaviour;
mod config;
mod container_log;
mod error;
mod http_server;
mod kubelet;
mod lifecycle;
mod log_script;
mod pod_runtime;
mod process;
mod spdy;
mod stand_ins;
mod tls;

pub use config::{KubeletConfig, pod_dir};
pub use error::Error;
pub use kubelet::Kubelet;
