#!/bin/sh
# runsc (gVisor) behind containerd's runc shim: io.containerd.runc.v2 with options.BinaryName =
# this file. Debian ships runsc but no containerd-shim-runsc-v1, so runc's shim drives runsc with
# runc's command line (global flags, then create, start, state, kill, delete, exec, ps, ...).
# This wrapper gives runsc the flags it knows (always --platform=ptrace: kvm hangs here) and
# smooths the four differences REFERENCE §7 lists:
#  1. Network. Starting a pod's first (sandbox) container, runsc copies the pod's network
#     namespace into gVisor's own netstack, but first refuses if /proc/sys/net/core/rmem_default
#     exists, which it takes for the root network namespace; newer kernels show it in every one.
#     That start alone runs in a private mount namespace with a tmpfs over /proc/sys/net.
#  2. kill. runsc fails on a created-but-not-started container and on a dead one, in words the
#     shim does not recognise. A created container is killed by killing the process the shim
#     watches (see 4); a dead or unknown one gets runc's "container not running", which the shim
#     takes for "already finished". delete always forces.
#  3. stdio. runsc hands an application the stdio of `runsc start`, while the shim passes the
#     container's stdio to `create` only (and reads start's output to its end). The waiter (see 4),
#     started by create, keeps the create-time stdio open; start hands runsc the waiter's fds.
#  4. Exits. runsc writes the sandbox's pid as every container's pid. For an application
#     container the shim gets the waiter's pid instead: once start succeeds the waiter runs
#     `runsc wait` and exits with the application's status (128+n after signal n), so the shim, a
#     subreaper, reaps it as the container's exit. A sandbox container keeps the sandbox's pid:
#     the sandbox process ends with it.
# exec passes through: `runsc exec --detach` leaves a child that writes its own pid to
# --pid-file, waits for the process and exits with its status; --console-socket gives TTY exec.
#
# Per-container state: ROOT/wrapper/ID (ROOT: the --root the shim passes). Handled anomalies are
# noted in ROOT/wrapper/wrapper.log (rotated at 256 KiB). Debugging: while the directory
# ROOT/wrapper/debug exists, runsc writes debug logs into it (large: remove it afterwards).

RUNSC=${RUNSC_WRAPPER_RUNSC:-/usr/bin/runsc}
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

# Global flags, as go-runc passes them: --root R --log F --log-format json [--debug]
# [--systemd-cgroup] [--rootless=B] [--criu P].
root=/run/runsc
log=
log_format=
systemd_cgroup=
while [ $# -gt 0 ]; do
    case $1 in
        --root | -root) root=$2; shift 2 ;;
        --root=* | -root=*) root=${1#*=}; shift ;;
        --log | -log) log=$2; shift 2 ;;
        --log=* | -log=*) log=${1#*=}; shift ;;
        --log-format | -log-format) log_format=$2; shift 2 ;;
        --log-format=* | -log-format=*) log_format=${1#*=}; shift ;;
        --systemd-cgroup | -systemd-cgroup) systemd_cgroup=1; shift ;;
        --criu | -criu | --rootless | -rootless) shift 2 ;;
        --) shift; break ;;
        # --debug would send runsc's debug output into the shim's log.json: see debug_dir.
        -*) shift ;;
        *) break ;;
    esac
done
command=${1:-}
[ $# -gt 0 ] && shift

state_root=$root/wrapper
debug_dir=$state_root/debug

# Runs runsc with the global flags: `runsc_as child|exec|start-hiding-net ARGS...`, as a child,
# in place of this shell, or in place of this shell with /proc/sys/net hidden (1).
runsc_as() {
    how=$1
    shift
    if [ -d "$debug_dir" ]; then
        set -- --debug "--debug-log=$debug_dir/" "$@"
    fi
    [ -n "$systemd_cgroup" ] && set -- --systemd-cgroup "$@"
    [ -n "$log_format" ] && set -- "--log-format=$log_format" "$@"
    [ -n "$log" ] && set -- "--log=$log" "$@"
    set -- "$RUNSC" "--root=$root" --platform=ptrace "$@"
    case $how in
        child) "$@" ;;
        exec) exec "$@" ;;
        start-hiding-net)
            exec unshare --mount --propagation private -- /bin/sh -c \
                'mount -t tmpfs -o size=4k,mode=0555 runsc-hides-proc-sys-net /proc/sys/net &&
                exec "$@"' runsc-start "$@"
            ;;
    esac
}

runsc() {
    runsc_as child "$@"
}

# A line in the wrapper's own small log.
note() {
    mkdir -p "$state_root" || return 0
    log_file=$state_root/wrapper.log
    size=$(wc -c 2>/dev/null <"$log_file" || echo 0)
    [ "$size" -gt 262144 ] && mv -f "$log_file" "$log_file.old"
    printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$command" "$*" >>"$log_file"
}

# A field of `runsc state ID` (status: created, running, paused, stopped; pid: the sandbox's),
# empty if runsc has no such container.
state_field() {
    runsc_state=$("$RUNSC" "--root=$root" state "$1" 2>/dev/null) || return 0
    case $runsc_state in *"\"$2\":"*) ;; *) return 0 ;; esac
    value=${runsc_state#*\""$2"\":}
    value=${value#"${value%%[!\" ]*}"}
    printf '%s\n' "${value%%[\",
]*}"
}

# Whether pid $1 is a live process (not a zombie) whose command line holds $2. (Pids of dead
# processes get reused: never signal a pid from a file without this check.)
alive() {
    [ -n "$1" ] || return 1
    proc_stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    case ${proc_stat##*)} in
        " Z"* | " X"* | "") return 1 ;;
    esac
    grep -qF -e "$2" "/proc/$1/cmdline" 2>/dev/null
}

# Writes a file atomically, without a newline (the shim parses pid files strictly).
write() {
    printf '%s' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# The waiter of application container $1 (fd 3: its start fifo, open read and write): blocks
# until start says go, then waits for the application and exits with its status.
waiter() {
    read -r go <&3 || exit 137
    exec 3<&-
    [ "$go" = go ] || exit 137
    result=$("$RUNSC" "--root=$root" wait "$1" </dev/null 2>/dev/null)
    case $result in
        *'"exitStatus":'*) ;;
        *) exit 137 ;; # no status: the sandbox went away, taking the application with it
    esac
    code=${result#*\"exitStatus\":}
    code=${code#"${code%%[0-9]*}"}
    code=${code%%[!0-9]*}
    exit "${code:-137}"
}

# Kills the gofers serving bundle $1. runsc kills a container's gofer when it deletes the
# container, but a start that fails after launching the gofer leaves it running, unrecorded.
kill_gofers() {
    grep -lsF -e "$1" /proc/[0-9]*/cmdline 2>/dev/null | while read -r cmdline; do
        gofer=${cmdline#/proc/}
        gofer=${gofer%/cmdline}
        [ "$(head -c 12 "$cmdline" 2>/dev/null | tr '\0' ' ')" = "runsc-gofer " ] &&
            kill -s KILL "$gofer" 2>/dev/null && note "$id: killed a stray gofer ($gofer)"
    done
}

# A command's last argument: the container id.
last_arg() {
    for arg; do :; done
    printf '%s\n' "${arg:-}"
}

case $command in
create)
    bundle=.
    pid_file=
    console_socket=
    id=
    while [ $# -gt 0 ]; do
        case $1 in
            --bundle | -bundle | -b) bundle=$2; shift 2 ;;
            --bundle=* | -bundle=*) bundle=${1#*=}; shift ;;
            --pid-file | -pid-file) pid_file=$2; shift 2 ;;
            --pid-file=* | -pid-file=*) pid_file=${1#*=}; shift ;;
            --console-socket | -console-socket) console_socket=$2; shift 2 ;;
            --console-socket=* | -console-socket=*) console_socket=${1#*=}; shift ;;
            --preserve-fds | -preserve-fds) shift 2 ;;
            -*) shift ;; # --no-pivot, --no-new-keyring: nothing for runsc
            *) id=$1; shift ;;
        esac
    done
    case $bundle in /*) ;; *) bundle=$(pwd)/$bundle ;; esac
    dir=$state_root/$id
    rm -rf "$dir"
    mkdir -p "$dir" || exit 1
    write "$dir/bundle" "$bundle"
    # CRI marks a pod's first container "sandbox" and the others "container"; runsc reads the
    # same annotation to start a sandbox or join one.
    if ! grep -q '"io.kubernetes.cri.container-type": *"container"' "$bundle/config.json"; then
        write "$dir/kind" sandbox
        runsc create --bundle "$bundle" ${pid_file:+--pid-file "$pid_file"} \
            ${console_socket:+--console-socket "$console_socket"} "$id"
        status=$?
        [ $status -eq 0 ] || rm -rf "$dir"
        exit $status
    fi
    write "$dir/kind" container
    mkfifo "$dir/go" || exit 1
    exec 3<>"$dir/go"
    if [ -n "$console_socket" ]; then
        # runsc sets the terminal up at create, and the shim reads this call's output to its
        # end: the waiter must not hold it. (exec, not a redirection of the function call: dash
        # keeps copies of redirected fds open while a function runs.)
        (
            exec </dev/null >/dev/null 2>&1
            waiter "$id"
        ) &
    else
        waiter "$id" &
    fi
    waiter_pid=$!
    write "$dir/waiter" "$waiter_pid"
    runsc create --bundle "$bundle" --pid-file "$dir/sandbox.pid" \
        ${console_socket:+--console-socket "$console_socket"} "$id" 3<&-
    status=$?
    exec 3<&-
    if [ $status -ne 0 ]; then
        kill -s KILL "$waiter_pid" 2>/dev/null
        rm -rf "$dir"
        exit $status
    fi
    # The waiter in the container's cgroup (runsc creates it and leaves it empty), where the
    # shim reads the container's stats and watches for OOM, rather than in the node's.
    cgroups_path=$(grep -o '"cgroupsPath": *"[^"]*"' "$bundle/config.json" | sed 's/.*"\([^"]*\)"$/\1/')
    if [ -n "$cgroups_path" ]; then
        for hierarchy in /sys/fs/cgroup/*/; do
            [ -e "$hierarchy$cgroups_path/cgroup.procs" ] &&
                echo "$waiter_pid" >"$hierarchy$cgroups_path/cgroup.procs" 2>/dev/null
        done
    fi
    if [ -n "$pid_file" ]; then
        write "$pid_file" "$waiter_pid" || exit 1
    fi
    exit 0
    ;;

start)
    id=$(last_arg "$@")
    dir=$state_root/$id
    if [ "$(cat "$dir/kind" 2>/dev/null)" != container ]; then
        runsc_as start-hiding-net start "$id"
    fi
    waiter_pid=$(cat "$dir/waiter" 2>/dev/null)
    if ! alive "$waiter_pid" "$id"; then
        echo "container $id: its waiter is gone (killed before start)" >&2
        exit 1
    fi
    # The application gets start's stdio: give runsc the create-time stdio the waiter holds.
    runsc start "$id" <"/proc/$waiter_pid/fd/0" >"/proc/$waiter_pid/fd/1" 2>"/proc/$waiter_pid/fd/2"
    status=$?
    [ $status -eq 0 ] && echo go 1<>"$dir/go"
    exit $status
    ;;

kill)
    all=
    id=
    signal=
    while [ $# -gt 0 ]; do
        case $1 in
            --all | -all | -a) all=1; shift ;;
            -*) shift ;;
            *) if [ -z "$id" ]; then id=$1; else signal=$1; fi; shift ;;
        esac
    done
    if output=$(runsc kill ${all:+--all} "$id" ${signal:+"$signal"} 2>&1); then
        exit 0
    fi
    dir=$state_root/$id
    case $(state_field "$id" status) in
    created)
        # As runc's init, blocked before exec, would: end the process the shim watches (a
        # sandbox container's: the sandbox; an application container's: its waiter). Any signal
        # ends a container that has not started.
        if [ "$(cat "$dir/kind" 2>/dev/null)" = container ]; then
            victim=$(cat "$dir/waiter" 2>/dev/null)
            is=$id
        else
            victim=$(state_field "$id" pid)
            is=runsc-sandbox
        fi
        if alive "$victim" "$is"; then
            note "$id: created, not started: signal ${signal:-TERM}: killing pid $victim"
            kill -s KILL "$victim"
            exit 0
        fi
        echo "container not running" >&2
        exit 1
        ;;
    running | paused)
        printf '%s\n' "$output" >&2
        exit 1
        ;;
    *)
        # Stopped, or gone: runc's wording, which the shim takes for "already finished".
        printf 'container not running (runsc: %s)\n' "$output" >&2
        exit 1
        ;;
    esac
    ;;

delete)
    id=$(last_arg "$@")
    dir=$state_root/$id
    # A waiter still waiting (its container never started) goes first, out of the container's
    # cgroup, which runsc removes.
    waiter_pid=$(cat "$dir/waiter" 2>/dev/null)
    alive "$waiter_pid" "$id" && kill -s KILL "$waiter_pid"
    # Forced: the shim deletes after the exit it watches, or a never-started container.
    runsc delete --force "$id"
    status=$?
    bundle=$(cat "$dir/bundle" 2>/dev/null)
    [ -n "$bundle" ] && kill_gofers "$bundle"
    [ $status -eq 0 ] && rm -rf "$dir"
    exit $status
    ;;

update)
    # go-runc passes the resources on stdin ("--resources -").
    case " $* " in *" - "*) cat >/dev/null ;; esac
    echo "runsc does not support update" >&2
    exit 1
    ;;

*)
    # state, exec, ps (runsc prints the JSON array of pids go-runc wants, with the pids inside
    # the sandbox), events, pause, resume, ...: the same command line.
    runsc_as exec "$command" "$@"
    ;;
esac
