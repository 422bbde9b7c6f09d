# claude-sandbox cp, upload side: unpacks a tar stream on stdin whose one top-level entry is NAME,
# into DEST when DEST is a folder, else as DEST itself (as `cp` and `docker cp` do).
# Arguments: DEST NAME
set -u
fail() {
    printf 'claude-sandbox: %s\n' "$*" >&2
    exit 125
}
command -v tar >/dev/null 2>&1 || fail "the sandbox image has no tar, which cp needs; install it in the devcontainer"
dest=$1 name=$2
if [ -d "$dest" ]; then
    exec tar -x -p -f - -C "$dest"
fi
parent=$(dirname -- "$dest")
[ -d "$parent" ] || fail "$parent: no such folder in the sandbox"
staging=$(mktemp -d "$parent/.claude-sandbox-cp.XXXXXX") || fail "cannot write to $parent"
trap 'rm -rf "$staging"' EXIT
tar -x -p -f - -C "$staging" || exit
mv -f -- "$staging/$name" "$dest"
