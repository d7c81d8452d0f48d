//! A small in-memory filesystem behind `cat`, `rm`, `ls`, dump files, push and pull.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FsError {
    // Wording follows toybox/bionic strerror so callers can match real messages.
    #[error("No such file or directory")]
    NotFound,
    #[error("Is a directory")]
    IsDir,
    #[error("Read-only file system")]
    ReadOnly,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStat {
    pub mode: u32,
    pub size: u64,
    pub mtime: i64,
    pub ino: u64,
}

#[derive(Debug, Clone)]
struct File {
    data: Vec<u8>,
    mode: u32,
    mtime: i64,
    ino: u64,
}

pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;

#[derive(Debug, Clone)]
pub struct MemFs {
    files: BTreeMap<String, File>,
    dirs: BTreeSet<String>,
    next_ino: u64,
}

impl Default for MemFs {
    fn default() -> Self {
        let mut fs = MemFs {
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            next_ino: 1000,
        };
        for d in [
            "/",
            "/sdcard",
            "/sdcard/Download",
            "/sdcard/DCIM",
            "/sdcard/Pictures",
            "/data",
            "/data/local",
            "/data/local/tmp",
            "/system",
            "/system/bin",
            "/dev",
        ] {
            fs.dirs.insert(d.to_string());
        }
        fs
    }
}

/// Resolves `.`/`..`, doubled slashes, and the aliases Android has for shared storage.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut s = format!("/{}", parts.join("/"));
    for alias in [
        "/storage/emulated/0",
        "/storage/self/primary",
        "/mnt/sdcard",
    ] {
        if s == alias || s.starts_with(&format!("{alias}/")) {
            s = format!("/sdcard{}", &s[alias.len()..]);
        }
    }
    s
}

impl MemFs {
    pub fn stat(&self, path: &str) -> Option<FileStat> {
        let p = normalize(path);
        if let Some(f) = self.files.get(&p) {
            return Some(FileStat {
                mode: f.mode,
                size: f.data.len() as u64,
                mtime: f.mtime,
                ino: f.ino,
            });
        }
        if self.is_dir(&p) {
            return Some(FileStat {
                mode: S_IFDIR | 0o771,
                size: 3488,
                mtime: 0,
                ino: 2,
            });
        }
        None
    }

    fn is_dir(&self, p: &str) -> bool {
        self.dirs.contains(p)
            || self
                .files
                .keys()
                .any(|k| k.starts_with(&format!("{}/", p.trim_end_matches('/'))))
    }

    pub fn read(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let p = normalize(path);
        match self.files.get(&p) {
            Some(f) => Ok(f.data.clone()),
            None if self.is_dir(&p) => Err(FsError::IsDir),
            None => Err(FsError::NotFound),
        }
    }

    pub fn write(
        &mut self,
        path: &str,
        data: Vec<u8>,
        mode: u32,
        mtime: i64,
    ) -> Result<(), FsError> {
        let p = normalize(path);
        if self.is_dir(&p) {
            return Err(FsError::IsDir);
        }
        if p.starts_with("/system/") || p.starts_with("/proc/") {
            return Err(FsError::ReadOnly);
        }
        let parent = p
            .rsplit_once('/')
            .map(|(d, _)| if d.is_empty() { "/" } else { d })
            .unwrap_or("/");
        if !self.is_dir(parent) {
            return Err(FsError::NotFound);
        }
        let mode = if mode & 0o170000 == 0 {
            S_IFREG | (mode & 0o7777)
        } else {
            mode
        };
        let ino = self.files.get(&p).map_or_else(
            || {
                self.next_ino += 1;
                self.next_ino
            },
            |f| f.ino,
        );
        self.files.insert(
            p,
            File {
                data,
                mode,
                mtime,
                ino,
            },
        );
        Ok(())
    }

    pub fn remove(&mut self, path: &str) -> Result<(), FsError> {
        let p = normalize(path);
        match self.files.remove(&p) {
            Some(_) => Ok(()),
            None if self.is_dir(&p) => Err(FsError::IsDir),
            None => Err(FsError::NotFound),
        }
    }

    /// Entries of a directory, `.` and `..` first as readdir gives them.
    pub fn list(&self, path: &str) -> Vec<(String, FileStat)> {
        let p = normalize(path);
        if !self.is_dir(&p) {
            return Vec::new();
        }
        let dir_stat = FileStat {
            mode: S_IFDIR | 0o771,
            size: 3488,
            mtime: 0,
            ino: 2,
        };
        let mut out = vec![
            (".".to_string(), dir_stat.clone()),
            ("..".to_string(), dir_stat.clone()),
        ];
        let prefix = if p == "/" {
            "/".to_string()
        } else {
            format!("{p}/")
        };
        let mut names = BTreeSet::new();
        for k in self.files.keys().chain(self.dirs.iter()) {
            if let Some(rest) = k.strip_prefix(&prefix)
                && !rest.is_empty()
            {
                names.insert(rest.split('/').next().unwrap_or(rest).to_string());
            }
        }
        for n in names {
            let full = format!("{prefix}{n}");
            if let Some(st) = self.stat(&full) {
                out.push((n, st));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_remove() {
        let mut fs = MemFs::default();
        fs.write("/sdcard/x.txt", b"hi".to_vec(), 0o644, 5)
            .expect("write");
        assert_eq!(fs.read("/storage/emulated/0/x.txt"), Ok(b"hi".to_vec()));
        assert_eq!(
            fs.stat("/sdcard//x.txt").map(|s| s.mode),
            Some(S_IFREG | 0o644)
        );
        assert!(fs.list("/sdcard").iter().any(|(n, _)| n == "x.txt"));
        assert_eq!(fs.read("/sdcard"), Err(FsError::IsDir));
        fs.remove("/sdcard/x.txt").expect("rm");
        assert_eq!(fs.read("/sdcard/x.txt"), Err(FsError::NotFound));
        assert_eq!(fs.write("/nodir/x", vec![], 0, 0), Err(FsError::NotFound));
    }
}
