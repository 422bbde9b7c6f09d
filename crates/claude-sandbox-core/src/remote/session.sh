# claude-sandbox session: runs a command, or a login shell, in the devcontainer the way its user
# gets it. `kubectl exec` starts processes as the image's user (root, for envbuilder) with only the
# pod spec's environment; the devcontainer's init process (PID 1, started by envbuilder) has the
# built image's user, working folder and environment, so a session takes all three from it.
#
# Arguments: USER WORKDIR TERM [COMMAND [ARG...]]
#   USER     a user name, or empty for the devcontainer's user: CLAUDE_SANDBOX_USER in PID 1's
#            environment (the init runs as root and its sessions as that user), else PID 1's user
#   WORKDIR  a folder, or empty for PID 1's (the workspace folder; CLAUDE_SANDBOX_WORKSPACE in its
#            environment where /proc hides it)
#   TERM     the terminal type to set, or empty for none
#   COMMAND  what to run; none means the user's login shell
# Exit status: the command's; 125 when the session cannot be set up (the reason on stderr).
set -u
fail() {
    printf 'claude-sandbox: %s\n' "$*" >&2
    exit 125
}
[ $# -ge 3 ] || fail "session: expected USER WORKDIR TERM [COMMAND...]"
user=$1 dir=$2 term=$3
shift 3

# PID 1's environment, and what a session takes from it.
init_env=()
init_path=/usr/local/bin:/usr/bin:/bin
dev_user=
workspace=
while IFS= read -r -d '' var; do
    init_env+=("$var")
    case $var in
        PATH=*) init_path=${var#PATH=} ;;
        CLAUDE_SANDBOX_USER=?*) dev_user=${var#CLAUDE_SANDBOX_USER=} ;;
        CLAUDE_SANDBOX_WORKSPACE=?*) workspace=${var#CLAUDE_SANDBOX_WORKSPACE=} ;;
    esac
done </proc/1/environ || fail "cannot read the environment of the devcontainer's init process (/proc/1/environ)"
# /proc/1/status, not stat(1): gVisor's /proc refuses statx.
init_uid=
while read -r key value _; do
    if [ "$key" = Uid: ]; then
        init_uid=$value
        break
    fi
done </proc/1/status
init_user=$(getent passwd "$init_uid" | cut -d: -f1)
[ -n "$init_user" ] || fail "cannot tell who runs the devcontainer's init process (PID 1)"
user=${user:-${dev_user:-$init_user}}
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd "$user") || fail "the sandbox has no user $user"
# gVisor does not show another process's cwd: the workspace the pod names stands in for it.
if [ -z "$dir" ]; then
    dir=$(readlink /proc/1/cwd 2>/dev/null) || dir=$workspace
    [ -n "$dir" ] || fail "cannot tell the working folder of the devcontainer's init process"
fi

# PID 1's identity stays as envbuilder set it; another user gets their own, as `su -` would.
session_env=()
if [ "$user" != "$init_user" ]; then
    session_env+=("HOME=$home" "USER=$user" "LOGNAME=$user" "SHELL=${shell:-/bin/sh}")
fi
# Claude Code's native installer puts it in ~/.local/bin; the init script adds it to its PATH too.
session_env+=("PATH=$home/.local/bin:$init_path")
[ -z "$term" ] || session_env+=("TERM=$term")

switch_user=()
if [ "$(id -u)" != "$uid" ]; then
    command -v setpriv >/dev/null 2>&1 || fail "switching to user $user needs setpriv (util-linux) in the sandbox image"
    switch_user=(setpriv "--reuid=$uid" "--regid=$gid" --init-groups --)
fi
cd "$dir" 2>/dev/null || fail "cannot enter $dir"
[ $# -gt 0 ] || set -- "${shell:-/bin/sh}" -l
exec env -i "${init_env[@]}" "${session_env[@]}" "${switch_user[@]}" "$@"
