# claude-sandbox cp, download side: writes a tar stream of SOURCE (a file or a folder) to stdout,
# its one top-level entry named as SOURCE's last component.
# Argument: SOURCE
set -u
fail() {
    printf 'claude-sandbox: %s\n' "$*" >&2
    exit 125
}
command -v tar >/dev/null 2>&1 || fail "the sandbox image has no tar, which cp needs; install it in the devcontainer"
source=$1
[ -e "$source" ] || fail "$source: no such file or folder in the sandbox"
exec tar -c -f - -C "$(dirname -- "$source")" -- "$(basename -- "$source")"
