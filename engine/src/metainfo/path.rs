//! Path sanitising: a torrent's file names become safe relative paths, or are refused.
//!
//! Each component must be non-empty UTF-8 and must not be `.` or `..` or contain `/`, `\` or
//! NUL. A path made only of such components, joined under the download directory, can only
//! name something inside it. (Windows-reserved names such as `CON` or trailing dots are not
//! checked: the engine targets Linux.)

use std::path::{Path, PathBuf};

use super::error::PathError;

/// Checks one component given as raw bytes and returns it as text.
pub(super) fn component(raw: &[u8]) -> Result<&str, PathError> {
    let s = std::str::from_utf8(raw).map_err(|_| PathError::NotUtf8)?;
    check_component(s)?;
    Ok(s)
}

/// Checks one component given as text.
pub(super) fn check_component(s: &str) -> Result<(), PathError> {
    match s {
        "" => Err(PathError::EmptyComponent),
        "." => Err(PathError::CurrentDir),
        ".." => Err(PathError::ParentDir),
        _ if s.contains(['/', '\\']) => Err(PathError::Separator),
        _ if s.contains('\0') => Err(PathError::Nul),
        _ => Ok(()),
    }
}

/// Splits a caller's relative path (for the builder) into checked components.
///
/// The path is read as `/`-separated UTF-8 text, not normalised: `a/./b`, `a//b` and a trailing
/// `/` are refused just as they would be in a torrent.
pub(super) fn components_of(path: &Path) -> Result<Vec<String>, PathError> {
    let s = path.to_str().ok_or(PathError::NotUtf8)?;
    if path.is_absolute() || s.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if s.is_empty() {
        return Err(PathError::NoComponents);
    }
    s.split('/')
        .map(|c| {
            check_component(c)?;
            Ok(c.to_owned())
        })
        .collect()
}

/// Joins checked components into a relative path.
pub(super) fn join<'s>(parts: impl IntoIterator<Item = &'s str>) -> PathBuf {
    parts.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_checked() {
        assert_eq!(component(b"ok.txt"), Ok("ok.txt"));
        assert_eq!(component(b"..."), Ok("..."));
        assert_eq!(component(b".hidden"), Ok(".hidden"));
        assert_eq!(component(b""), Err(PathError::EmptyComponent));
        assert_eq!(component(b"."), Err(PathError::CurrentDir));
        assert_eq!(component(b".."), Err(PathError::ParentDir));
        assert_eq!(component(b"a/b"), Err(PathError::Separator));
        assert_eq!(component(b"/etc"), Err(PathError::Separator));
        assert_eq!(component(b"..\\x"), Err(PathError::Separator));
        assert_eq!(component(b"a\0b"), Err(PathError::Nul));
        assert_eq!(component(b"\xff"), Err(PathError::NotUtf8));
    }

    #[test]
    fn builder_paths_are_checked() {
        assert_eq!(components_of(Path::new("a/b.txt")), Ok(vec!["a".to_owned(), "b.txt".to_owned()]));
        assert_eq!(components_of(Path::new("/etc/passwd")), Err(PathError::Absolute));
        assert_eq!(components_of(Path::new("")), Err(PathError::NoComponents));
        assert_eq!(components_of(Path::new("a/../b")), Err(PathError::ParentDir));
        assert_eq!(components_of(Path::new("a/./b")), Err(PathError::CurrentDir));
        assert_eq!(components_of(Path::new("a//b")), Err(PathError::EmptyComponent));
        assert_eq!(join(["a", "b"]), PathBuf::from("a/b"));
    }
}
