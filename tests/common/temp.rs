//! Scratch paths under the system temp dir, unique per test: a bare path for
//! a test (or the [`Server`](super::Server)) to create, and a directory that
//! removes itself on drop so failures do not pile up.

#![allow(dead_code)]

use std::path::PathBuf;

/// `<temp>/<prefix>-<pid>-<uuid>`: a path no other test or run uses. Nothing
/// is created.
pub fn temp_path(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// A fresh directory, created now and removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = temp_path("huddle-tmp");
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
