//! The programs a pod's image has: the host's, unless the pod's `missing-programs` names some.
//! Then the pod's `bin/` holds symlinks to every host program but those, and is all of its `PATH`
//! (programs reached by absolute path still work: this is about what `PATH` finds).

use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use crate::error::Error;

/// Where the host's programs are, in `PATH` order.
const SYSTEM_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];
/// What follows the pod's `bin/` on `PATH` when the image has every program.
const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The `PATH` of the pod's processes: its `bin/` first, or alone when the image lacks programs.
pub(crate) fn path(bin: &Path, missing: &BTreeSet<String>) -> String {
    if missing.is_empty() {
        format!("{}:{SYSTEM_PATH}", bin.display())
    } else {
        bin.display().to_string()
    }
}

/// With `missing` programs, fills `bin` with symlinks to every other host program (the first of
/// a name in [`SYSTEM_DIRS`] wins). What is there already stays (a test's stub commands), except
/// symlinks to missing programs (left by an earlier pod of the same name).
pub(crate) async fn link(bin: &Path, missing: &BTreeSet<String>) -> Result<(), Error> {
    if missing.is_empty() {
        return Ok(());
    }
    let (bin, missing) = (bin.to_owned(), missing.clone());
    tokio::task::spawn_blocking(move || link_blocking(&bin, &missing))
        .await
        .map_err(|e| Error::Process(format!("linking the pod's programs: {e}")))?
}

fn link_blocking(bin: &Path, missing: &BTreeSet<String>) -> Result<(), Error> {
    for name in missing {
        let path = bin.join(name);
        if path.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
    }
    for (name, target) in host_programs() {
        if missing.contains(&name) {
            continue;
        }
        let link = bin.join(&name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(&target, &link)
                .map_err(|e| Error::io(format!("linking {}", link.display()), e))?;
        }
    }
    Ok(())
}

/// Every executable file in the system directories by name, the first of each name.
fn host_programs() -> Vec<(String, PathBuf)> {
    let mut seen = BTreeSet::new();
    let mut programs = Vec::new();
    for dir in SYSTEM_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let executable = std::fs::metadata(&path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if executable && seen.insert(name.clone()) {
                programs.push((name, path));
            }
        }
    }
    programs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn path_is_the_pod_bin_alone_when_programs_are_missing() {
        let bin = Path::new("/pods/ns/p/bin");
        assert_eq!(
            path(bin, &BTreeSet::new()),
            "/pods/ns/p/bin:/usr/local/bin:/usr/bin:/bin"
        );
        assert_eq!(path(bin, &names(&["tar"])), "/pods/ns/p/bin");
    }

    #[tokio::test]
    async fn every_program_but_the_missing_ones_is_linked() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        std::fs::write(bin.join("stub"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/usr/bin/tar", bin.join("tar")).unwrap();
        link(bin, &names(&["tar", "bash"])).await.unwrap();

        assert!(
            !bin.join("tar").exists(),
            "an earlier link to a missing program goes"
        );
        assert!(!bin.join("bash").exists());
        assert!(bin.join("sh").exists() && bin.join("ls").exists());
        assert_eq!(
            std::fs::read_to_string(bin.join("stub")).unwrap(),
            "#!/bin/sh\n"
        );
        let found = |program: &str| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .env("PATH", path(bin, &names(&["tar"])))
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(found("ls") && !found("tar"));

        link(bin, &BTreeSet::new()).await.unwrap();
        assert!(
            !bin.join("tar").exists(),
            "nothing to do without missing programs"
        );
    }
}
