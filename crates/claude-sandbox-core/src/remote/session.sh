# claude-sandbox session: runs a command, or a login shell, in the devcontainer the way its user
# gets it. `kubectl exec` starts processes as the image's user (root, for envbuilder) with only the
# pod spec's environment; the devcontainer's init process (PID 1, started by envbuilder) has the
# built image's user, working folder and environment, so a session takes all three from it.
#
# Arguments: USER WORKDIR TERM [COMMAND [ARG...]]
#   USER     a user name, or empty for PID 1's user
#   WORKDIR  a folder, or empty for PID 1's (the workspace folder)
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

init_env=()
while IFS= read -r -d '' var; do
    init_env+=("$var")
done </proc/1/environ || fail "cannot read the environment of the devcontainer's init process (/proc/1/environ)"
init_user=$(stat -c %U /proc/1) || fail "cannot tell who runs the devcontainer's init process (PID 1)"
user=${user:-$init_user}
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd "$user") || fail "the sandbox has no user $user"
if [ -z "$dir" ]; then
    dir=$(readlink /proc/1/cwd) || fail "cannot tell the working folder of the devcontainer's init process"
fi

init_path=/usr/local/bin:/usr/bin:/bin
for var in "${init_env[@]}"; do
    case $var in PATH=*) init_path=${var#PATH=} ;; esac
done
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
