#!/bin/sh
# Deploys the Claude Code sandbox: a thin wrapper around `claude-sandbox`.
#   OVERLAY=gvisor ./deploy.sh            # runc (default), gvisor or kata
#   ./deploy.sh my-sandbox -n team-a      # any other claude-sandbox flags pass through
set -eu
overlay=${OVERLAY:-runc}
case "$overlay" in
  base) overlay=runc ;;
esac
if ! kubectl get crd sandboxes.agents.x-k8s.io >/dev/null 2>&1; then
  echo "deploy.sh: the agent-sandbox controller is not installed; install a release first:" >&2
  echo "  kubectl apply --server-side -f https://github.com/kubernetes-sigs/agent-sandbox/releases/download/v1.0.2/sandbox.yaml" >&2
  exit 1
fi
claude-sandbox render --runtime "$overlay" "$@" | kubectl apply --server-side --field-manager=claude-sandbox -f -
