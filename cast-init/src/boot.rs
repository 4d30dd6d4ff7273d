//! The first steps in the initramfs: API filesystems and kernel modules.
//!
//! Module loading is the largest part of the guest's own start-up under emulation, so
//! modules load in parallel: each in its own thread, once the modules it depends on
//! (from the list the host wrote) have loaded.

use crate::log::Log;
use nix::mount::{mount, MsFlags};
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::sync::{Arc, Condvar, Mutex};

/// The modules the initrd carries: `NAME PATH DEP,DEP…` per line.
const MODULE_LIST: &str = "/cast/modules.list";

/// Mounts /dev (devtmpfs), /proc and /sys inside the initramfs.
pub fn mount_early() -> io::Result<()> {
    for (fstype, target) in [("devtmpfs", "/dev"), ("proc", "/proc"), ("sysfs", "/sys")] {
        std::fs::create_dir_all(target)?;
        mount(
            Some(fstype),
            target,
            Some(fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| io::Error::other(format!("mounting {fstype} on {target}: {e}")))?;
    }
    Ok(())
}

/// One line of the module list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Module {
    name: String,
    path: String,
    deps: Vec<String>,
}

fn parse_list(list: &str) -> Vec<Module> {
    list.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?.to_owned();
            let path = fields.next()?.to_owned();
            let deps = fields
                .next()
                .map(|d| {
                    d.split(',')
                        .filter(|d| !d.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Some(Module { name, path, deps })
        })
        .collect()
}

/// Outcome of each module by name, and a signal when one finishes.
type Done = Arc<(Mutex<HashMap<String, Result<(), String>>>, Condvar)>;

/// Loads the listed modules `wanted` picks, each after its dependencies (one not
/// picked counts as loaded); one already loaded is fine. No list (a kernel with
/// everything built in) loads nothing.
pub fn load_modules(log: &Log, wanted: impl Fn(&str) -> bool) -> io::Result<()> {
    let list = match std::fs::read_to_string(MODULE_LIST) {
        Ok(list) => parse_list(&list)
            .into_iter()
            .filter(|m| wanted(&m.name))
            .collect::<Vec<_>>(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let listed: Vec<String> = list.iter().map(|m| m.name.clone()).collect();
    let done: Done = Arc::new((Mutex::new(HashMap::new()), Condvar::new()));
    let threads: Vec<_> = list
        .into_iter()
        .map(|mut module| {
            // Dependencies the list does not carry are built into the kernel.
            module.deps.retain(|d| listed.contains(d));
            let done = done.clone();
            std::thread::spawn(move || {
                let result = wait_for(&done, &module.deps).and_then(|()| load(&module.path));
                let (lock, cvar) = &*done;
                lock.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(module.name, result);
                cvar.notify_all();
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let results = done.0.lock().unwrap_or_else(|e| e.into_inner());
    for name in &listed {
        match results.get(name) {
            Some(Ok(())) => log.step(&format!("module {name}")),
            Some(Err(e)) => return Err(io::Error::other(e.clone())),
            None => return Err(io::Error::other(format!("module {name} was not loaded"))),
        }
    }
    Ok(())
}

/// Blocks until every dependency has an outcome; fails if one failed.
fn wait_for(done: &Done, deps: &[String]) -> Result<(), String> {
    let (lock, cvar) = &**done;
    let mut results = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(failed) = deps
            .iter()
            .find(|d| matches!(results.get(*d), Some(Err(_))))
        {
            return Err(format!("module {failed}, a dependency, failed to load"));
        }
        if deps.iter().all(|d| results.contains_key(d)) {
            return Ok(());
        }
        results = cvar.wait(results).unwrap_or_else(|e| e.into_inner());
    }
}

fn load(path: &str) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("opening module {path}: {e}"))?;
    match nix::kmod::finit_module(
        &file,
        &CString::default(),
        nix::kmod::ModuleInitFlags::empty(),
    ) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(format!("loading module {path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_lists_parse_with_and_without_dependencies() {
        let list = parse_list(
            "virtio /cast/mod/virtio.ko \nerofs /cast/mod/erofs.ko libcrc32c\nx /x.ko a,b\n",
        );
        assert_eq!(list.len(), 3);
        assert!(list[0].deps.is_empty());
        assert_eq!(list[1].deps, vec!["libcrc32c"]);
        assert_eq!(list[2].deps, vec!["a", "b"]);
    }
}
