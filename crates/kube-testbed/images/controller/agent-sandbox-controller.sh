#!/bin/sh
# The entrypoint of the controller placeholder image, at /agent-sandbox-controller: the tools
# image's busybox plus this script, run as user 65532. `kube-testbed build` stores the image under
# the repository path and tag of every agent-sandbox controller image the upstream manifests name,
# and a real node's containerd pulls those from the testbed's registry, so that a release
# manifest's Deployment (or v0.1.0's StatefulSet) runs as written. Upstream's workload gives
# `args` and no `command`: they arrive here.
#
# The controller itself is simulated in the testbed's own process (crates/kube-testbed-controller),
# which reconciles while this pod is Ready. This placeholder only says so, shows its arguments and
# waits until it is stopped, exiting at once on TERM (as PID 1 it gets no default handler).
echo "kube-testbed: placeholder for the agent-sandbox controller, which the testbed simulates in its own process (crates/kube-testbed-controller)"
echo "kube-testbed: arguments: $*"
sleeper=
trap 'if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null; fi; exit 0' TERM INT
sleep 2147483647 &
sleeper=$!
wait "$sleeper"
