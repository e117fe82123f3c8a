//! Crash-safe file replacement (PROTOCOL.md §4.1): every JSON file under the
//! data directory is written through [`write_atomic`], and [`remove_leftover_temps`]
//! deletes what an interrupted write left behind.
//!
//! A reader therefore sees either the old file or the new one, never a torn mix,
//! and after a power loss the rename is durable because the directory is fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Marker between the target's name and the random suffix of a temp file.
/// Chosen so that no real target (`*.json`, `*.jsonl`, `*.log`) can contain it.
pub const TEMP_MARKER: &str = ".tmp-";

/// Replaces `path` with `bytes` atomically: a temp file `<name>.tmp-<random>` in
/// the same directory (rename is only atomic within one filesystem), write,
/// fsync, rename over the target, fsync the directory (makes the rename itself
/// durable). On any error the temp file is removed and the target is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "atomic write target has no file name",
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = name.to_os_string();
    temp_name.push(TEMP_MARKER);
    temp_name.push(uuid::Uuid::new_v4().simple().to_string());
    let temp = dir.join(temp_name);

    let result = (|| {
        // create_new: never clobber another writer's temp file, however unlikely.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        // Best effort: if the rename already happened the temp is gone anyway.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// fsyncs a directory so that entries created, renamed or removed in it survive
/// a power loss. A no-op where directories cannot be opened as files.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// True for names [`write_atomic`] uses for its temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.contains(TEMP_MARKER)
}

/// Deletes every `*.tmp-*` file under `dir`, recursively (symlinks are not
/// followed). Run at startup, before anything writes: a leftover is the trace of
/// a write interrupted by a crash, and its target still holds the previous
/// complete version. Returns how many files were removed; a missing `dir` is
/// not an error. Individual failures are logged and skipped so one bad entry
/// does not keep the server from starting.
pub fn remove_leftover_temps(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                ::log::warn!("store: cannot list {}: {e}", dir.display());
                continue;
            }
        };
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                ::log::warn!("store: cannot stat {}: {e}", path.display());
                continue;
            }
        };
        if file_type.is_dir() {
            match remove_leftover_temps(&path) {
                Ok(n) => removed += n,
                Err(e) => ::log::warn!("store: cannot clean {}: {e}", path.display()),
            }
        } else if file_type.is_file() && is_temp_name(&entry.file_name().to_string_lossy()) {
            match fs::remove_file(&path) {
                Ok(()) => {
                    ::log::info!("store: removed leftover temp file {}", path.display());
                    removed += 1;
                }
                Err(e) => ::log::warn!("store: cannot remove leftover {}: {e}", path.display()),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("huddle-atomic-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_and_replaces_without_leaving_temps() {
        let dir = temp_dir();
        let target = dir.join("a.json");
        write_atomic(&target, b"{\"v\":1}").unwrap();
        write_atomic(&target, b"{\"v\":2}").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"{\"v\":2}");
        assert_eq!(names(&dir), vec!["a.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_write_leaves_target_alone() {
        let dir = temp_dir();
        // The target is a directory: rename fails, the temp must be cleaned up.
        let target = dir.join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"x").unwrap();
        assert!(write_atomic(&target, b"data").is_err());
        assert_eq!(names(&dir), vec!["busy"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn removes_temps_recursively_and_keeps_the_rest() {
        let dir = temp_dir();
        fs::create_dir(dir.join("sub")).unwrap();
        fs::write(dir.join("a.json"), b"{}").unwrap();
        fs::write(dir.join("a.json.tmp-123"), b"{").unwrap();
        fs::write(dir.join("sub").join("b.json.tmp-abc"), b"").unwrap();
        fs::write(dir.join("sub").join("b.json"), b"{}").unwrap();
        assert_eq!(remove_leftover_temps(&dir).unwrap(), 2);
        assert_eq!(names(&dir), vec!["a.json", "sub"]);
        assert_eq!(names(&dir.join("sub")), vec!["b.json"]);
        assert_eq!(remove_leftover_temps(&dir.join("missing")).unwrap(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
