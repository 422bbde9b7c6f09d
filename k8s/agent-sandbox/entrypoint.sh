#!/bin/sh
# claude-sandbox init script: PID 1 of the Sandbox pod's devcontainer.
#
# envbuilder builds devcontainer.json, runs postCreateCommand (`entrypoint.sh install-claude`) and
# then runs this script as PID 1 (`exec /bin/sh $CLAUDE_SANDBOX_DIR/entrypoint.sh`) as the
# devcontainer's containerUser, in the workspace folder. Ours is root, and CLAUDE_SANDBOX_USER
# (vscode) is the user the IDE, Claude Code and every session run as: the init needs no sudo, which
# gVisor cannot give (it ignores setuid bits, so sudo fails there). A devcontainer whose init runs as
# a non-root user with passwordless sudo works too: root's share then goes through sudo. envbuilder
# runs none of the features' entrypoints, so this script does their work:
#   1. trusts the Vault TLS CA when it is mounted (system store, NODE_EXTRA_CA_CERTS, login shells);
#   2. configures sshd for keys only (plus the Vault SSH user CA when mounted) on port 2222, with
#      host keys kept on the workspace volume, and starts it as root;
#   3. starts code-server on 0.0.0.0:13337 as the user;
#   4. starts dockerd through the docker-in-docker feature, only when the pod is privileged for it;
#   5. makes sure Claude Code is installed at the wanted version;
#   6. stays up as PID 1: restarts a daemon that exits (at most once per restart delay), and on
#      SIGTERM/SIGINT stops every daemon and exits 0.
# Every start rewrites what it configures (nothing is appended), so a restart on stale state is safe.
#
# Usage:
#   entrypoint.sh                  the init described above
#   entrypoint.sh install-claude   only step 5 (idempotent; devcontainer.json's postCreateCommand)
#
# Environment (all optional):
#   CLAUDE_SANDBOX_ROOT           tests only: prefix for every system path this script reads or
#                                 writes (/etc, /usr/local/share, /var/log, /run, /workspaces
#                                 defaults). Values given in the variables below are used as given.
#                                 /proc is always the real one.
#   CLAUDE_SANDBOX_USER           when this script runs as root: the user code-server, Claude Code's
#                                 install and the folders they write belong to (empty: root)
#   CLAUDE_SANDBOX_WORKSPACE      folder code-server opens (default: the current directory)
#   CLAUDE_SANDBOX_LOG_DIR        daemon logs (default $ROOT/var/log/claude-sandbox): sshd.log,
#                                 code-server.log, dockerd.log, claude-install.log
#   CLAUDE_SANDBOX_STATE_DIR      persistent state (default $ROOT/workspaces/.claude-sandbox): the
#                                 sshd host keys, so the host key survives pod restarts
#   CLAUDE_CODE_VERSION           stable (default), latest, or an exact X.Y.Z
#   CODE_SERVER_PASSWORD          non-empty: code-server --auth password, the password handed over
#                                 in code-server's environment (PASSWORD), never on a command line
#                                 and never printed; empty: --auth none
#   VAULT_CACERT                  Vault TLS CA (default $ROOT/etc/claude-sandbox/vault-ca/ca.crt)
#   CLAUDE_SANDBOX_SSH_CA         Vault SSH user CA
#                                 (default $ROOT/etc/claude-sandbox/vault-ssh-ca/trusted-user-ca-keys.pem)
#   CLAUDE_SANDBOX_DOCKER         true: the pod is privileged for docker-in-docker; start dockerd
#   CLAUDE_SANDBOX_RESTART_DELAY  seconds between restarts of one daemon (default 30)
#
# Commands are called by name through PATH (so tests can stub them); root's share goes through
# `sudo -n` unless the script already runs as root, the user's through setpriv when it does.

set -eu

ROOT=${CLAUDE_SANDBOX_ROOT:-}
WORKSPACE=${CLAUDE_SANDBOX_WORKSPACE:-$PWD}
LOG_DIR=${CLAUDE_SANDBOX_LOG_DIR:-$ROOT/var/log/claude-sandbox}
STATE_DIR=${CLAUDE_SANDBOX_STATE_DIR:-$ROOT/workspaces/.claude-sandbox}
CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION:-stable}
VAULT_CACERT=${VAULT_CACERT:-$ROOT/etc/claude-sandbox/vault-ca/ca.crt}
SSH_CA=${CLAUDE_SANDBOX_SSH_CA:-$ROOT/etc/claude-sandbox/vault-ssh-ca/trusted-user-ca-keys.pem}
DOCKER=${CLAUDE_SANDBOX_DOCKER:-false}
RESTART_DELAY=${CLAUDE_SANDBOX_RESTART_DELAY:-30}

# The password stays in a shell variable that no child inherits; only code-server gets it.
CS_PASSWORD=${CODE_SERVER_PASSWORD:-}
unset CODE_SERVER_PASSWORD PASSWORD

CODE_SERVER_PORT=13337
SSH_PORT=2222
CLAUDE_INSTALLER_URL=https://claude.ai/install.sh
CA_INSTALLED=$ROOT/usr/local/share/ca-certificates/claude-sandbox-vault-ca.crt
PROFILE_SCRIPT=$ROOT/etc/profile.d/claude-sandbox.sh
SSHD_DROP_IN=$ROOT/etc/ssh/sshd_config.d/claude-sandbox.conf
DOCKER_INIT=$ROOT/usr/local/share/docker-init.sh
DOCKER_PID_FILE=$ROOT/var/run/docker.pid
# Seconds shutdown waits for the daemons before it kills them.
STOP_TIMEOUT=10
NL='
'
case $0 in
    /*) SELF=$0 ;;
    *) SELF=$PWD/$0 ;;
esac

say() { printf 'claude-sandbox: %s\n' "$*"; }
warn() { printf 'claude-sandbox: warning: %s\n' "$*"; }
now() { date +%s; }

if [ "$(id -u)" = 0 ]; then IS_ROOT=true; else IS_ROOT=false; fi
if [ -z "${HOME:-}" ]; then
    HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
    export HOME
fi

# The user's side runs as CLAUDE_SANDBOX_USER when this script is root (SWITCH_USER=true), else as
# this script's own user.
SWITCH_USER=false
USER_HOME=$HOME
DEV_USER=${CLAUDE_SANDBOX_USER:-}
if [ "$IS_ROOT" = true ] && [ -n "$DEV_USER" ] && [ "$DEV_USER" != root ]; then
    if dev_entry=$(getent passwd "$DEV_USER"); then
        DEV_UID=$(printf '%s\n' "$dev_entry" | cut -d: -f3)
        DEV_GID=$(printf '%s\n' "$dev_entry" | cut -d: -f4)
        USER_HOME=$(printf '%s\n' "$dev_entry" | cut -d: -f6)
        SWITCH_USER=true
    else
        printf 'claude-sandbox: warning: CLAUDE_SANDBOX_USER %s does not exist: the IDE runs as root\n' "$DEV_USER"
    fi
fi

# as_user CMD...: run CMD as the user, with the user's HOME, USER and ~/.local/bin first on PATH
# (directly when this script is that user). The environment passes through.
as_user() {
    if [ "$SWITCH_USER" = true ]; then
        setpriv "--reuid=$DEV_UID" "--regid=$DEV_GID" --init-groups -- \
            env HOME="$USER_HOME" USER="$DEV_USER" LOGNAME="$DEV_USER" \
            PATH="$USER_HOME/.local/bin:$PATH" "$@"
    else
        "$@"
    fi
}

# as_root CMD...: run CMD as root (directly when already root).
as_root() {
    if [ "$IS_ROOT" = true ]; then "$@"; else sudo -n "$@"; fi
}

# as_root_bg LOG CMD...: start CMD as root in the background (its pid in $!), output appended to
# LOG, which this script opens as the current user.
as_root_bg() {
    bg_log=$1
    shift
    if [ "$IS_ROOT" = false ]; then set -- sudo -n "$@"; fi
    "$@" >>"$bg_log" 2>&1 &
}

# write_root_file FILE: standard input to FILE (replaced, never appended), mode 0644, as root.
write_root_file() {
    as_root mkdir -p "${1%/*}" </dev/null &&
        as_root tee "$1" >/dev/null &&
        as_root chmod 0644 "$1" </dev/null
}

# shell_quote VALUE: VALUE as one single-quoted shell word.
shell_quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# ensure_user_dir DIR: DIR exists and belongs to the user (the current one, unless switching).
ensure_user_dir() {
    mkdir -p "$1" 2>/dev/null || as_root mkdir -p "$1" || return 1
    if [ "$SWITCH_USER" = true ]; then
        chown "$DEV_UID:$DEV_GID" "$1"
        return
    fi
    [ -w "$1" ] || as_root chown "$(id -u)" "$1" || return 1
    [ -w "$1" ]
}

setup_log_dir() {
    if ! ensure_user_dir "$LOG_DIR"; then
        warn "cannot create $LOG_DIR; logging to $STATE_DIR/log instead"
        LOG_DIR=$STATE_DIR/log
        mkdir -p "$LOG_DIR" 2>/dev/null || LOG_DIR=$(mktemp -d)
    fi
}

# ---- Claude Code -------------------------------------------------------------------------------

add_local_bin_to_path() {
    case ":$PATH:" in
        *":$USER_HOME/.local/bin:"*) ;;
        *) PATH=$USER_HOME/.local/bin:$PATH ;;
    esac
    export PATH
}

# claude_version: the first line of `claude --version`; fails when claude does not run.
claude_version() {
    cv_out=$(claude --version 2>/dev/null) || return 1
    printf '%s\n' "${cv_out%%"$NL"*}"
}

install_claude() {
    add_local_bin_to_path
    case $CLAUDE_CODE_VERSION in
        stable | latest) ;;
        *[!0-9A-Za-z.-]* | "")
            warn "CLAUDE_CODE_VERSION '$CLAUDE_CODE_VERSION' is not stable, latest or X.Y.Z; not installing Claude Code"
            return 0
            ;;
    esac
    if current=$(claude_version); then
        case $CLAUDE_CODE_VERSION in
            stable | latest)
                say "Claude Code: $current is installed"
                return 0
                ;;
        esac
        case $current in
            "$CLAUDE_CODE_VERSION" | "$CLAUDE_CODE_VERSION "*)
                say "Claude Code: $current is installed (pinned)"
                return 0
                ;;
        esac
        say "Claude Code: $current is installed, $CLAUDE_CODE_VERSION wanted: installing it"
    else
        say "Claude Code: not installed: installing $CLAUDE_CODE_VERSION"
    fi
    setup_log_dir
    install_log=$LOG_DIR/claude-install.log
    printf '=== %s: installing Claude Code %s\n' "$(date)" "$CLAUDE_CODE_VERSION" >>"$install_log"
    # Download first, so that a failed download is not mistaken for a successful empty install.
    if installer=$(curl -fsSL "$CLAUDE_INSTALLER_URL" 2>>"$install_log") &&
        printf '%s\n' "$installer" | bash -s -- "$CLAUDE_CODE_VERSION" >>"$install_log" 2>&1; then
        hash -r
        if current=$(claude_version); then
            say "Claude Code: installed $current"
            return 0
        fi
    fi
    warn "Claude Code could not be installed (see $install_log); the IDE comes up without it"
}

# install_claude_as_user: install_claude as the user who runs Claude Code (its installer writes to
# ~/.local), logging where this script logs.
install_claude_as_user() {
    if [ "$SWITCH_USER" = true ]; then
        setup_log_dir
        as_user env CLAUDE_SANDBOX_LOG_DIR="$LOG_DIR" CLAUDE_SANDBOX_STATE_DIR="$STATE_DIR" \
            sh "$SELF" install-claude || warn "installing Claude Code as $DEV_USER failed"
    else
        install_claude
    fi
}

# ---- Vault TLS CA ------------------------------------------------------------------------------

setup_vault_ca() {
    {
        echo "# Written by claude-sandbox entrypoint.sh on every start; edits are lost."
        if [ -f "$VAULT_CACERT" ] && [ -r "$VAULT_CACERT" ] && [ -s "$VAULT_CACERT" ]; then
            echo "export VAULT_CACERT=$(shell_quote "$VAULT_CACERT")"
            echo "export NODE_EXTRA_CA_CERTS=$(shell_quote "$VAULT_CACERT")"
        else
            echo "# The Vault TLS CA is not mounted: VAULT_CACERT would name a missing file."
            echo "unset VAULT_CACERT"
        fi
        # sshd sessions do not inherit the pod's environment: give login shells the
        # non-secret Claude Code settings.
        for var in CLAUDE_CONFIG_DIR DISABLE_AUTOUPDATER; do
            eval "val=\${$var:-}"
            if [ -n "$val" ]; then echo "export $var=$(shell_quote "$val")"; fi
        done
    } | write_root_file "$PROFILE_SCRIPT" || warn "could not write $PROFILE_SCRIPT"

    if [ -f "$VAULT_CACERT" ] && [ -r "$VAULT_CACERT" ] && [ -s "$VAULT_CACERT" ]; then
        NODE_EXTRA_CA_CERTS=$VAULT_CACERT
        export VAULT_CACERT NODE_EXTRA_CA_CERTS
        if write_root_file "$CA_INSTALLED" <"$VAULT_CACERT" && as_root update-ca-certificates >/dev/null; then
            say "vault TLS CA: installed ($VAULT_CACERT trusted system-wide and by Node)"
        else
            warn "vault TLS CA: could not add $VAULT_CACERT to the system trust store; NODE_EXTRA_CA_CERTS is set"
        fi
    else
        unset VAULT_CACERT
        if [ ! -e "$CA_INSTALLED" ]; then
            say "vault TLS CA: not mounted"
        elif as_root rm -f "$CA_INSTALLED" && as_root update-ca-certificates >/dev/null; then
            say "vault TLS CA: not mounted (removed the copy an earlier start installed)"
        else
            warn "vault TLS CA: not mounted, and the stale $CA_INSTALLED could not be removed"
        fi
    fi
}

# ---- sshd --------------------------------------------------------------------------------------

SSHD=
setup_sshd() {
    if ! SSHD=$(command -v sshd); then
        SSHD=
        warn "sshd is not installed (the sshd feature is missing): no SSH access"
        return 0
    fi
    key_dir=$STATE_DIR/ssh
    sshd_failed=false
    # The workspace volume's root belongs to root: a non-root init makes the state folder its own.
    if { [ "$IS_ROOT" = false ] && ! ensure_user_dir "$STATE_DIR"; } ||
        ! mkdir -p "$key_dir" || ! chmod 700 "$key_dir"; then
        warn "cannot create $key_dir: sshd stays off"
        SSHD=
        return 0
    fi
    for type in ed25519 rsa; do
        key=$key_dir/ssh_host_${type}_key
        if [ ! -s "$key" ]; then
            rm -f "$key" "$key.pub"
            if ! ssh-keygen -q -N '' -t "$type" -f "$key" >/dev/null; then
                warn "ssh-keygen failed for $key: sshd stays off"
                SSHD=
                return 0
            fi
            say "sshd: generated the $type host key in $key_dir"
        fi
    done
    {
        echo "# Written by claude-sandbox entrypoint.sh on every start; edits are lost."
        echo "Port $SSH_PORT"
        echo "PasswordAuthentication no"
        echo "KbdInteractiveAuthentication no"
        echo "PubkeyAuthentication yes"
        echo "PermitRootLogin no"
        echo "HostKey $key_dir/ssh_host_ed25519_key"
        echo "HostKey $key_dir/ssh_host_rsa_key"
        if [ -s "$SSH_CA" ]; then echo "TrustedUserCAKeys $SSH_CA"; fi
    } | write_root_file "$SSHD_DROP_IN" || sshd_failed=true
    if [ "$sshd_failed" = true ] || ! as_root mkdir -p "$ROOT/run/sshd"; then
        warn "could not configure sshd: it stays off"
        SSHD=
        return 0
    fi
    if [ -s "$SSH_CA" ]; then
        say "sshd: keys only, plus certificates from the Vault SSH CA $SSH_CA"
    else
        say "sshd: keys only (Vault SSH CA not mounted)"
    fi
}

# sshd re-executes itself, so it must be started by its absolute path (`command -v` resolves it).
start_sshd() {
    as_root_bg "$LOG_DIR/sshd.log" "$SSHD" -D -e -p "$SSH_PORT"
}

# ---- code-server -------------------------------------------------------------------------------

start_code_server() {
    code_server_log=$LOG_DIR/code-server.log
    if [ -n "$CS_PASSWORD" ]; then
        (
            PASSWORD=$CS_PASSWORD
            export PASSWORD
            as_user code-server --bind-addr "0.0.0.0:$CODE_SERVER_PORT" --auth password \
                --disable-telemetry "$WORKSPACE"
        ) >>"$code_server_log" 2>&1 &
    else
        as_user code-server --bind-addr "0.0.0.0:$CODE_SERVER_PORT" --auth none \
            --disable-telemetry "$WORKSPACE" >>"$code_server_log" 2>&1 &
    fi
}

# ---- dockerd -----------------------------------------------------------------------------------

# The feature's docker-init.sh starts dockerd in the background, waits for it, then execs its
# arguments: `entrypoint.sh watch-dockerd` lives as long as dockerd does, so the supervisor sees
# dockerd exit.
start_dockerd() {
    as_root_bg "$LOG_DIR/dockerd.log" "$DOCKER_INIT" sh "$SELF" watch-dockerd "$DOCKER_PID_FILE"
}

# watch_dockerd PIDFILE: return once the process named in PIDFILE is gone.
watch_dockerd() {
    while wd_pid=$(cat "$1" 2>/dev/null) && [ -n "$wd_pid" ] && kill -0 "$wd_pid" 2>/dev/null; do
        sleep 5
    done
}

# ---- supervision -------------------------------------------------------------------------------

DAEMONS=
TICK_PID=

label() {
    case $1 in
        code_server) echo code-server ;;
        *) echo "$1" ;;
    esac
}

# launch KEY: start daemon KEY (function start_KEY, which leaves its pid in $!) and remember its
# pid and start time.
launch() {
    "start_$1"
    eval "PID_$1=\$! STARTED_$1=\$(now)"
    case " $DAEMONS " in
        *" $1 "*) ;;
        *) DAEMONS="$DAEMONS $1" ;;
    esac
}

# alive PID: PID is running (a zombie counts as gone). /proc, because `kill -0` cannot tell a
# root daemon from a dead one when this script is not root.
alive() {
    { read -r alive_stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    alive_state=${alive_stat##*) }
    [ "${alive_state%% *}" != Z ]
}

# supervise KEY: when daemon KEY has exited, say so once and restart it once RESTART_DELAY seconds
# have passed since its last start.
supervise() {
    sv_pid=
    sv_started=0
    eval "sv_pid=\${PID_$1:-} sv_started=\${STARTED_$1:-0}"
    [ -n "$sv_pid" ] || return 0
    if [ "$sv_pid" != exited ]; then
        if alive "$sv_pid"; then return 0; fi
        sv_status=0
        wait "$sv_pid" || sv_status=$?
        eval "PID_$1=exited"
        say "$(label "$1") exited (status $sv_status); see $LOG_DIR/$(label "$1").log"
    fi
    if [ $(($(now) - sv_started)) -ge "$RESTART_DELAY" ]; then
        say "restarting $(label "$1")"
        launch "$1"
    fi
}

# daemon_pids: the pids of the running daemons and of every process they started, one a line.
daemon_pids() {
    dp_table=$(
        for dp_stat in /proc/[0-9]*/stat; do
            { read -r dp_line <"$dp_stat"; } 2>/dev/null || continue
            dp_rest=${dp_line##*) }
            dp_rest=${dp_rest#* }
            dp_child=${dp_stat#/proc/}
            echo "${dp_child%/stat} ${dp_rest%% *}"
        done
    )
    dp_found=" "
    for dp_key in $DAEMONS; do
        eval "dp_pid=\${PID_$dp_key:-}"
        case $dp_pid in
            '' | exited) ;;
            *) dp_found="$dp_found$dp_pid " ;;
        esac
    done
    dp_more=true
    while [ "$dp_more" = true ]; do
        dp_more=false
        while read -r dp_pid dp_ppid; do
            case $dp_found in
                *" $dp_ppid "*)
                    case $dp_found in
                        *" $dp_pid "*) ;;
                        *)
                            dp_found="$dp_found$dp_pid "
                            dp_more=true
                            ;;
                    esac
                    ;;
            esac
        done <<EOF
$dp_table
EOF
    done
    for dp_pid in $dp_found; do echo "$dp_pid"; done
}

# signal_daemons SIGNAL: send SIGNAL to the daemons and their descendants, as root, since sudo
# does not relay a signal that comes from this script's own process group.
signal_daemons() {
    sd_signal=$1
    sd_pids=$(daemon_pids)
    [ -n "$sd_pids" ] || return 0
    set --
    for sd_pid in $sd_pids; do set -- "$@" "$sd_pid"; done
    as_root kill "-$sd_signal" "$@" 2>/dev/null || kill "-$sd_signal" "$@" 2>/dev/null || true
}

any_daemon_alive() {
    for ad_key in $DAEMONS; do
        ad_pid=
        eval "ad_pid=\${PID_$ad_key:-}"
        case $ad_pid in '' | exited) continue ;; esac
        if alive "$ad_pid"; then return 0; fi
    done
    return 1
}

shutdown() {
    trap '' TERM INT
    say "stopping"
    if [ -n "$TICK_PID" ]; then kill "$TICK_PID" 2>/dev/null || true; fi
    signal_daemons TERM
    sh_deadline=$(($(now) + STOP_TIMEOUT))
    while any_daemon_alive && [ "$(now)" -lt "$sh_deadline" ]; do sleep 1; done
    if any_daemon_alive; then
        warn "daemons still running after ${STOP_TIMEOUT}s: killing them"
        signal_daemons KILL
    fi
    for sh_key in $DAEMONS; do
        sh_pid=
        eval "sh_pid=\${PID_$sh_key:-}"
        case $sh_pid in '' | exited) continue ;; esac
        wait "$sh_pid" 2>/dev/null || true
    done
    say "stopped"
    exit 0
}

# ---- init --------------------------------------------------------------------------------------

init() {
    trap shutdown TERM INT
    case $RESTART_DELAY in
        '' | *[!0-9]*)
            warn "CLAUDE_SANDBOX_RESTART_DELAY '$RESTART_DELAY' is not a number of seconds: using 30"
            RESTART_DELAY=30
            ;;
    esac
    tick=5
    if [ "$RESTART_DELAY" -lt "$tick" ]; then tick=$RESTART_DELAY; fi
    if [ "$tick" -lt 1 ]; then tick=1; fi

    say "starting (workspace $WORKSPACE, logs $LOG_DIR)"
    setup_log_dir
    # Without a repository to clone, envbuilder creates the workspace folder as root.
    if ! ensure_user_dir "$WORKSPACE"; then
        warn "cannot make the workspace $WORKSPACE writable"
    fi
    # Claude Code keeps its settings on the workspace volume, whose root belongs to root.
    if [ -n "${CLAUDE_CONFIG_DIR:-}" ] && ! ensure_user_dir "$CLAUDE_CONFIG_DIR"; then
        warn "cannot make $CLAUDE_CONFIG_DIR writable: Claude Code will not keep its settings"
    fi
    setup_vault_ca
    add_local_bin_to_path

    setup_sshd
    if [ -n "$SSHD" ]; then
        launch sshd
        say "sshd: started on port $SSH_PORT (log $LOG_DIR/sshd.log)"
    fi

    if command -v code-server >/dev/null; then
        launch code_server
        if [ -n "$CS_PASSWORD" ]; then cs_auth=password; else cs_auth=none; fi
        if [ "$SWITCH_USER" = true ]; then cs_user=" as $DEV_USER"; else cs_user=; fi
        say "code-server: started on 0.0.0.0:$CODE_SERVER_PORT$cs_user, auth $cs_auth (log $LOG_DIR/code-server.log)"
    else
        warn "code-server is not installed (the code-server feature is missing): no IDE"
    fi

    if [ -f "$DOCKER_INIT" ]; then
        if [ "$DOCKER" = true ]; then
            launch dockerd
            say "dockerd: starting (log $LOG_DIR/dockerd.log)"
        else
            say "docker-in-docker: off (it needs a privileged pod); turn it on with 'claude-sandbox up --docker'"
        fi
    elif [ "$DOCKER" = true ]; then
        warn "CLAUDE_SANDBOX_DOCKER=true but the docker-in-docker feature is not installed"
    fi

    install_claude_as_user
    say "ready"

    while :; do
        sleep "$tick" &
        TICK_PID=$!
        wait "$TICK_PID" || true
        TICK_PID=
        for key in $DAEMONS; do supervise "$key"; done
    done
}

case ${1:-} in
    '') init ;;
    install-claude) install_claude_as_user ;;
    watch-dockerd) watch_dockerd "${2:?watch-dockerd needs the dockerd pid file}" ;;
    *)
        echo "usage: entrypoint.sh [install-claude]" >&2
        exit 2
        ;;
esac
