//! A watchdog for in-process testbeds. A testbed shared by the tests of one binary lives in a
//! `static` and is never dropped, and a test process may be killed: the guard — a small shell
//! process reading a pipe whose only writer is us — sees end-of-file when we are gone, however we
//! went, then stops the testbed's processes (pid files whose command line names the directory,
//! TERM then KILL), then what a real node leaves running — containerd's shims (their command line
//! names the directory) and the processes of the node's cgroup — detaches every mount below the
//! directory (container root filesystems, volumes: removing through them would delete what they
//! show), removes what the testbed wrote, and the node's bridge, cgroup, CNI leases and record.
//! (A guard killed too leaves those to the next real node's start, which sweeps what dead testbeds
//! recorded.)

use std::{
    io::ErrorKind,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{error::Error, layout::Layout};

/// `$1`: the testbed directory; `$2`–`$5`: a real node's cgroup, bridge, CNI lease folder and
/// record (which may not exist); further arguments: paths to remove afterwards.
const SCRIPT: &str = r#"
while read -r _; do :; done
dir=$1; cgroup=$2; bridge=$3; leases=$4; record=$5; shift 5
ours() { tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$dir"; }
pids=
for f in $(find "$dir" -path "$dir/etcd" -prune -o -name '*.pid' -print 2>/dev/null); do
  pid=$(cat "$f" 2>/dev/null) || continue
  if ours "$pid"; then kill -TERM "$pid" 2>/dev/null; pids="$pids $pid"; fi
done
for _ in $(seq 100); do
  alive=
  for pid in $pids; do ours "$pid" && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
done
for pid in $pids; do ours "$pid" && kill -KILL "$pid" 2>/dev/null; done
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  read -r comm < "$p/comm" 2>/dev/null || continue
  [ "$comm" = containerd-shim ] && ours "$pid" && kill -KILL "$pid" 2>/dev/null
done
for _ in 1 2 3; do
  for f in /sys/fs/cgroup/*/"$cgroup"; do
    [ -n "$cgroup" ] && [ -d "$f" ] && find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  done
  sleep 0.2
done
grep -F " $dir/" /proc/self/mountinfo | cut -d' ' -f5 | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
[ $# -gt 0 ] && rm -rf -- "$@"
if [ -e "$record" ]; then
  ip link del "$bridge" 2>/dev/null
  for f in /sys/fs/cgroup/*/"$cgroup"; do [ -d "$f" ] && find "$f" -depth -type d -exec rmdir {} + 2>/dev/null; done
  rm -rf -- "$leases" "$record"
fi
exit 0
"#;

/// The running guard; dropping it lets it clean up (normally finding nothing left to do).
#[derive(Debug)]
pub(crate) struct Guard {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Guard {
    /// Starts the guard for `layout`, removing `remove` once we are gone.
    pub fn start(layout: &Layout, remove: &[PathBuf]) -> Result<Self, Error> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("kube-testbed-guard")
            .arg(layout.dir())
            .args(crate::real_node::record::Record::names_of(layout))
            .args(remove)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::io("starting the guard for", layout.dir()))?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// Lets the guard run its clean-up now and waits a little for it to finish.
    pub fn release(mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Err(e) if e.kind() != ErrorKind::Interrupted => return,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
