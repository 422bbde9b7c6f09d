#!/bin/sh
# Removes the Claude Code sandbox that deploy.sh made: a thin wrapper around `claude-sandbox`.
# The workspace volume (PVC workspaces-<name>) goes with the Sandbox that owns it.
#   ./teardown.sh [my-sandbox -n team-a]
set -eu
claude-sandbox render "$@" | kubectl delete --ignore-not-found --wait -f -
