//! Files an API client names: read only from inside `[api] media_dir`.
//!
//! The path is judged by its text first (joined to the directory, `.`
//! and `..` folded), so a path outside is refused without any system call
//! touching it: the answer is the same whether it exists or not, and the
//! API cannot be used to learn what the host holds. Only then is it
//! resolved on disk (symlinks followed) and judged again, so a symlink
//! inside the directory cannot lead out of it.

use std::path::{Component, Path, PathBuf};

/// Why a file name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileRefused {
    /// No `media_dir`: files are not read at all.
    #[error("files are not allowed here (set api.media_dir)")]
    NotAllowed,
    /// The path (or a symlink on it) leads out of `media_dir`.
    #[error("only files inside api.media_dir are read")]
    Outside,
    /// Inside `media_dir`, but nothing usable is there.
    #[error("no such file in api.media_dir")]
    Missing,
}

/// `[api] media_dir`, resolved once at start.
#[derive(Debug, Clone, Default)]
pub struct MediaDir {
    root: Option<PathBuf>,
}

impl MediaDir {
    /// No directory: every file is refused.
    pub fn none() -> MediaDir {
        MediaDir { root: None }
    }

    /// `dir`, which must be a directory; kept as its canonical path.
    pub fn new(dir: &Path) -> std::io::Result<MediaDir> {
        let root = dir.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::other("not a directory"));
        }
        Ok(MediaDir { root: Some(root) })
    }

    /// The file `given` names (relative to the directory, or absolute
    /// inside it), resolved on disk. The directory itself is inside (a
    /// provisioned entry's `prompts_dir` may be it).
    pub fn resolve(&self, given: &str) -> Result<PathBuf, FileRefused> {
        let root = self.root.as_ref().ok_or(FileRefused::NotAllowed)?;
        let joined = fold(&root.join(given)).ok_or(FileRefused::Outside)?;
        if !joined.starts_with(root) {
            return Err(FileRefused::Outside);
        }
        let real = joined.canonicalize().map_err(|_| FileRefused::Missing)?;
        if !real.starts_with(root) {
            return Err(FileRefused::Outside);
        }
        Ok(real)
    }
}

/// `path` with `.` dropped and `..` taking off the part before it; None
/// when `..` would climb above the root.
fn fold(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (PathBuf, MediaDir) {
        let base = std::env::temp_dir().join(format!("pinless-media-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(base.join("media/sub")).unwrap();
        std::fs::write(base.join("media/a.wav"), b"x").unwrap();
        std::fs::write(base.join("media/sub/b.wav"), b"x").unwrap();
        std::fs::write(base.join("secret"), b"x").unwrap();
        let media = MediaDir::new(&base.join("media")).unwrap();
        (base, media)
    }

    #[test]
    fn paths_resolve_only_inside_the_directory() {
        let (base, media) = dir();
        let root = base.join("media").canonicalize().unwrap();
        assert_eq!(media.resolve("a.wav").unwrap(), root.join("a.wav"));
        assert_eq!(media.resolve("sub/../a.wav").unwrap(), root.join("a.wav"));
        assert_eq!(
            media.resolve("./sub/b.wav").unwrap(),
            root.join("sub/b.wav")
        );
        let absolute = root.join("sub/b.wav");
        assert_eq!(media.resolve(absolute.to_str().unwrap()).unwrap(), absolute);
        // Out, whether the target exists or not: the same answer.
        for out in [
            "../secret",
            "../nothing",
            "/etc/hostname",
            "/no/such",
            "sub/../../secret",
        ] {
            assert_eq!(media.resolve(out), Err(FileRefused::Outside), "{out:?}");
        }
        assert_eq!(media.resolve("missing.wav"), Err(FileRefused::Missing));
        assert_eq!(media.resolve(".").unwrap(), root);
        std::os::unix::fs::symlink(base.join("secret"), base.join("media/link.wav")).unwrap();
        assert_eq!(media.resolve("link.wav"), Err(FileRefused::Outside));
        assert_eq!(
            MediaDir::none().resolve("a.wav"),
            Err(FileRefused::NotAllowed)
        );
        assert_eq!(
            MediaDir::none().resolve("/etc/shadow"),
            Err(FileRefused::NotAllowed)
        );
        assert!(MediaDir::new(&base.join("secret")).is_err());
        std::fs::remove_dir_all(base).unwrap();
    }
}
