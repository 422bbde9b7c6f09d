//! The host programs the kubelet runs pods' processes with, by absolute path (a pod's `PATH` may
//! lack them), each checked with the Debian package to install when it is missing.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// A program the kubelet runs, and the Debian package that has it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Program {
    /// Where Debian installs it; the first that exists is used.
    paths: &'static [&'static str],
    package: &'static str,
}

/// util-linux's `setpriv`: changes users, and kills a process when its parent dies.
pub(crate) const SETPRIV: Program = Program::new(&["/usr/bin/setpriv"], "util-linux");
/// util-linux's `unshare`: starts a pod's init process in namespaces of its own.
pub(crate) const UNSHARE: Program = Program::new(&["/usr/bin/unshare"], "util-linux");
/// util-linux's `nsenter`: runs exec'd commands and sshd in a pod's namespaces.
pub(crate) const NSENTER: Program = Program::new(&["/usr/bin/nsenter"], "util-linux");
/// iproute2's `ip`: brings up the loopback interface of a pod's network namespace.
pub(crate) const IP: Program = Program::new(
    &["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"],
    "iproute2",
);
/// OpenSSH's server, the sshd stand-in.
pub(crate) const SSHD: Program = Program::new(&["/usr/sbin/sshd"], "openssh-server");
/// Makes the sshd stand-in's host keys.
pub(crate) const SSH_KEYGEN: Program = Program::new(&["/usr/bin/ssh-keygen"], "openssh-client");
/// coreutils' `sleep`: what a pod's init process runs, as envbuilder's default init script does.
pub(crate) const SLEEP: Program = Program::new(&["/usr/bin/sleep", "/bin/sleep"], "coreutils");

impl Program {
    const fn new(paths: &'static [&'static str], package: &'static str) -> Self {
        Self { paths, package }
    }

    /// Where the program is, or an error naming the package to install.
    pub fn find(self) -> Result<PathBuf, Error> {
        self.paths
            .iter()
            .map(Path::new)
            .find(|path| path.exists())
            .map(Path::to_owned)
            .ok_or_else(|| Error::MissingProgram {
                program: self.paths[0].into(),
                package: self.package,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_programs_name_their_package() {
        let missing = Program::new(&["/no/such/tool"], "tool-package")
            .find()
            .unwrap_err();
        assert_eq!(
            missing.to_string(),
            "/no/such/tool not found: install Debian's `tool-package` package (apt-get install tool-package)"
        );
        assert!(SLEEP.find().unwrap().ends_with("bin/sleep"));
    }
}
