//! Reading plugin files: regular files only, never more than the cap.
//!
//! A plugin directory is writable by whoever installs plugins, so a
//! `x.wasm` there may be a FIFO (opening it waits for a writer forever), a
//! symlink to `/dev/zero` (reading it never ends) or a huge sparse file.
//! Each is refused by its metadata before a byte is read.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::SandboxError;

/// The `*.wasm` files in `dir`, sorted by name: what a plugin directory holds.
///
/// Every entry must be a regular file once symlinks are followed; the first
/// that is not (a FIFO, a device, a directory, a dangling symlink) fails the
/// listing with an error naming it. Sizes are checked when each file is
/// loaded, against [`SandboxConfig::max_plugin_size`](crate::SandboxConfig::max_plugin_size).
///
/// ```
/// let missing = std::path::Path::new("/nonexistent/plugins");
/// let err = warden_sandbox::plugin_files(missing).unwrap_err();
/// assert!(err.to_string().contains("/nonexistent/plugins"));
/// ```
///
/// # Errors
/// [`SandboxError::Io`], naming the directory, when it cannot be read, or
/// naming an entry whose target cannot be read; [`SandboxError::NotAFile`]
/// for an entry that is not a regular file.
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let io = |error| SandboxError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut files = Vec::new();
    for entry in fs_err::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            // `metadata` follows symlinks: the target is what gets read.
            let meta = fs_err::metadata(&path).map_err(|error| SandboxError::Io {
                path: path.clone(),
                error,
            })?;
            check_regular(&path, &meta)?;
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The bytes of the plugin at `path`, which must be a regular file of at
/// most `limit` bytes.
pub(crate) fn read_plugin(path: &Path, limit: u64) -> Result<Vec<u8>, SandboxError> {
    let io = |error| SandboxError::Io {
        path: path.to_path_buf(),
        error,
    };
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let meta = fs_err::metadata(path).map_err(io)?;
    check_regular(path, &meta)?;
    check_size(path, meta.len(), limit)?;
    // The path may have been swapped since; non-blocking open returns at
    // once even for a FIFO, and the open file is checked again.
    let file = open_nonblocking(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_regular(path, &meta)?;
    check_size(path, meta.len(), limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // A file that grows while being read stops at the limit + 1 byte.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    check_size(path, bytes.len() as u64, limit)?;
    Ok(bytes)
}

#[cfg(unix)]
pub(crate) fn open_nonblocking(path: &Path) -> std::io::Result<fs_err::File> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    fs_err::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn open_nonblocking(path: &Path) -> std::io::Result<fs_err::File> {
    fs_err::File::open(path)
}

fn check_size(path: &Path, size: u64, limit: u64) -> Result<(), SandboxError> {
    if size > limit {
        return Err(SandboxError::FileTooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    Ok(())
}

fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), SandboxError> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(SandboxError::NotAFile {
        path: path.to_path_buf(),
        kind: describe(&kind).to_string(),
    })
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "an unknown kind of file"
}
