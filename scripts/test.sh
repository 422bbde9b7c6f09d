#!/usr/bin/env bash
# Runs every test of the project, from a fresh Debian machine: installs what the tests need,
# then checks formatting and lints, builds (once, then cached) the test control plane, then runs
# the unit and integration tests.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages the tests run: shellcheck (entrypoint.sh), Chromium (phase 7 opens the IDE in
# a browser), openssl (phase 7's Vault TLS server); kubectl with kustomize (asset tests).
install_packages() {
  local missing=()
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v kubectl >/dev/null; then
    echo "kubectl (with its built-in kustomize) is needed by the asset tests; install kubectl 1.27 or later" >&2
    exit 1
  fi
}

install_packages

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The integration tests run a real Kubernetes control plane: its binaries are built from Debian's
# source the first time (about 5 minutes on 2 cores, then 2 more for the test images) and cached
# under ~/.cache/claude-sandbox; later runs only check the cache.
log "kube-testbed build"
cargo run --locked --quiet -p kube-testbed -- build

log "cargo test"
cargo test --workspace --locked "$@"
