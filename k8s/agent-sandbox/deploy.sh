#!/bin/sh
# Deploys the Claude Code sandbox: a thin wrapper around `claude-sandbox up`, which installs
# agent-sandbox when the cluster lacks it and waits until the sandbox is ready.
#   OVERLAY=gvisor ./deploy.sh            # runc (default), gvisor or kata
#   ./deploy.sh my-sandbox -n team-a      # any other `claude-sandbox up` flags pass through
set -eu
overlay=${OVERLAY:-runc}
case "$overlay" in
  base) overlay=runc ;;
esac
exec claude-sandbox up --runtime "$overlay" "$@"
