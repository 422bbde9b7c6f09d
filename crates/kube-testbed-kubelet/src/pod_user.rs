//! The unprivileged host user a pod's init process runs as, standing in for the devcontainer's
//! non-root user (`vscode` in the devcontainers base image).

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use nix::unistd::{Gid, Uid, User};

use crate::error::Error;

/// The pod user's name; `kube-testbed build` creates the user (with a login shell and a home).
pub const POD_USER: &str = "kube-testbed-user";

#[derive(Debug, Clone)]
pub(crate) struct PodUser {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

impl PodUser {
    /// The host user `name`, or an error saying how to create it.
    pub fn find(name: &str) -> Result<Self, Error> {
        let user = User::from_name(name)
            .map_err(|errno| Error::io(format!("looking up user {name}"), errno.into()))?
            .ok_or_else(|| Error::PodUserMissing(name.to_owned()))?;
        Ok(Self {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
        })
    }

    /// Makes `dir` (and its missing parents, owned by root) with `dir` itself owned by the user.
    pub async fn own_dir(&self, dir: &Path) -> Result<(), Error> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        std::os::unix::fs::chown(dir, Some(self.uid.as_raw()), Some(self.gid.as_raw()))
            .map_err(|e| Error::io(format!("giving {} to {}", dir.display(), self.name), e))
    }

    /// The first directory on the way to `path` the user cannot pass (no search permission),
    /// if any: the user's processes could not reach the pod's files.
    pub fn blocked_at(&self, path: &Path) -> Option<PathBuf> {
        let mut dirs: Vec<&Path> = path.ancestors().skip(1).collect();
        dirs.reverse();
        dirs.into_iter()
            .filter_map(|dir| Some((dir, std::fs::metadata(dir).ok()?)))
            .find(|(_, metadata)| {
                let mode = metadata.mode();
                let searchable = if metadata.uid() == self.uid.as_raw() {
                    mode & 0o100
                } else if metadata.gid() == self.gid.as_raw() {
                    mode & 0o010
                } else {
                    mode & 0o001
                };
                searchable == 0
            })
            .map(|(dir, _)| dir.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_missing_user_names_the_build_command() {
        let error = PodUser::find("kube-testbed-no-such-user").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("kube-testbed-no-such-user"), "{message}");
        assert!(message.contains("kube-testbed build"), "{message}");
    }

    #[test]
    fn directories_the_user_cannot_pass_are_found() {
        let nobody = PodUser::find("nobody").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().join("a");
        let file = closed.join("b/file");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mode = |path: &Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        mode(dir.path(), 0o711);
        mode(&closed, 0o700);
        assert_eq!(nobody.blocked_at(&file), Some(closed.clone()));
        mode(&closed, 0o711);
        assert_eq!(nobody.blocked_at(&file), None);
    }
}
