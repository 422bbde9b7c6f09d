#!/bin/sh
# Removes the Claude Code sandbox: a thin wrapper around `claude-sandbox down`. The workspace
# volume is kept unless --delete-volume is given.
#   ./teardown.sh [my-sandbox -n team-a] [--delete-volume]
set -eu
exec claude-sandbox down "$@"
