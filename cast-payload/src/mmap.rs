//! A read-only, private memory map of a whole file: how the object writer reads a
//! payload that may be far larger than memory without copying it to the heap.
//!
//! Only used at build time, on a file this crate has just written and that nothing
//! else modifies while mapped.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// A mapped file; unmapped on drop.
#[derive(Debug)]
pub struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mmap {
    /// Maps all of `file` read-only. An empty file maps to an empty slice.
    pub fn map(file: &File) -> io::Result<Mmap> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        if len == 0 {
            return Ok(Mmap {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh private read-only mapping of an open fd; the kernel picks the
        // address; the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap { ptr, len })
    }

    /// The file's bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until drop, and the
        // returned borrow cannot outlive `self`. The file is not modified while mapped
        // (see the module docs).
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: unmaps exactly the mapping made in `map`; no borrow outlives self.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}
