//! A fake kubelet for kube-testbed: pod status, logs, exec and port-forward served to a real API server.
//!
//! It watches the pods bound to its node and plays their lifecycle (phases, container states,
//! conditions, crash loops, image pull failures, log scripts) as the pods' annotations ask, merged
//! over the rules in ConfigMap `kube-system/kube-testbed-behaviours` (key `rules.json`). Its HTTPS
//! API is the part of the kubelet's the API server proxies to: `containerLogs`, `exec` (WebSocket)
//! and `portForward` (WebSocket and SPDY). Nothing runs in a container image. As root, a pod with
//! stand-ins gets a container-like environment when its main containers start: an init process
//! (PID 1 of PID, mount and network namespaces of its own, as user [`POD_USER`], in the workspace
//! folder `<pod dir>/<ENVBUILDER_WORKSPACE_FOLDER>`, with the container's environment minus
//! `ENVBUILDER_*`), exec runs commands as root inside those namespaces, the stand-ins listen on
//! their container ports there, and port-forward connects to any port there. Without root, exec
//! runs local processes in the pod's directory and port-forward dials stand-ins on free host ports.
//! `POST /testbed/drop-streams/{ns}/{pod}` cuts a pod's exec and port-forward sessions.
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
//! | `forward-<port>: <localPort>` | port-forward to the host's `127.0.0.1:<localPort>` |
//! | `stand-ins` | overrides [`KubeletConfig::stand_ins`] |
//! | `stand-in-code-server`, `stand-in-sshd` (`true`) | `false`: that stand-in is not started |
//! | `missing-programs: a,b` | the image lacks these: `PATH` is `bin/` alone, filled with links to every host program but those |
//!
//! Per pod `pods_dir/<ns>/<pod>/`: `bin/` (first on the pod's `PATH`), `root/` (exec's working and
//! home directory), `home/` (the pod user's), `workspaces/…`, `<container>.log` and
//! `<container>.previous.log`, `init.log`, and the stand-ins' files (`sshd_config`, host key,
//! `sshd.log`; sshd reads `home/.ssh/authorized_keys`). The directory stays after the pod.

mod api;
mod behaviour;
mod config;
mod container_env;
mod container_log;
mod error;
mod http_server;
mod image_programs;
mod init_process;
mod kubelet;
mod lifecycle;
mod log_script;
mod network;
mod pod_runtime;
mod pod_user;
mod process;
mod programs;
mod spdy;
mod stand_ins;
mod stream_sessions;
mod tls;

pub use config::{KubeletConfig, pod_dir};
pub use error::Error;
pub use kubelet::Kubelet;
pub use pod_user::POD_USER;
