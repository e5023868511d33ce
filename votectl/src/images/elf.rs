//! What a binary needs at run time, read from the binary itself.
//!
//! A static binary (musl, static-pie) needs nothing. A dynamically linked one needs its program
//! interpreter (`PT_INTERP`) and the closure of its `DT_NEEDED` libraries. The names come from the ELF
//! files (the binary, then each library in turn); `ldd` only resolves a name to the file the host's
//! loader would pick, so the image gets the same files the binary was tested with. A name `ldd` cannot
//! resolve is an error, never a silently smaller image.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use goblin::elf::Elf;

use super::{Error, Result};

/// How a binary is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    /// No interpreter and no shared libraries.
    Static,
    /// Needs `interpreter` and the libraries named in `needed` (direct `DT_NEEDED` entries).
    Dynamic {
        interpreter: String,
        needed: Vec<String>,
    },
}

impl Linkage {
    pub fn label(&self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::Dynamic { .. } => "dynamic",
        }
    }
}

/// A file from the host the image must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedObject {
    /// Where the loader will look for it in the image (the path `PT_INTERP` or `ldd` names).
    pub image_path: String,
    /// The file on the host, symlinks resolved.
    pub host_path: PathBuf,
}

/// Reads the linkage of an x86-64 Linux executable.
pub fn inspect(path: &Path, bytes: &[u8]) -> Result<Linkage> {
    let not_elf = |reason: String| Error::NotElf {
        path: path.to_owned(),
        reason,
    };
    let elf = Elf::parse(bytes).map_err(|e| not_elf(e.to_string()))?;
    if !elf.is_64 || elf.header.e_machine != goblin::elf::header::EM_X86_64 {
        return Err(not_elf(format!(
            "machine {} ({}-bit)",
            goblin::elf::header::machine_to_str(elf.header.e_machine),
            if elf.is_64 { 64 } else { 32 }
        )));
    }
    if !matches!(
        elf.header.e_type,
        goblin::elf::header::ET_EXEC | goblin::elf::header::ET_DYN
    ) {
        return Err(not_elf("not an executable".to_owned()));
    }
    let needed: Vec<String> = elf.libraries.iter().map(|s| (*s).to_owned()).collect();
    match elf.interpreter {
        None if needed.is_empty() => Ok(Linkage::Static),
        None => Err(not_elf(format!(
            "needs {} but names no interpreter",
            needed.join(", ")
        ))),
        Some(interpreter) => Ok(Linkage::Dynamic {
            interpreter: interpreter.to_owned(),
            needed,
        }),
    }
}

/// The interpreter and every library `binary` needs, directly or through another library, sorted by
/// image path. Empty for a static binary.
pub fn shared_objects(binary: &Path) -> Result<Vec<SharedObject>> {
    let bytes = read(binary)?;
    let Linkage::Dynamic {
        interpreter,
        needed,
    } = inspect(binary, &bytes)?
    else {
        return Ok(Vec::new());
    };
    let resolved = ldd(binary)?;
    let mut out = BTreeMap::new();
    out.insert(interpreter.clone(), canonical(Path::new(&interpreter))?);

    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<(String, PathBuf)> =
        needed.into_iter().map(|n| (n, binary.to_owned())).collect();
    while let Some((name, needed_by)) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        // libc names the loader as a library; it is the interpreter, already included.
        if Path::new(&interpreter).file_name() == Some(std::ffi::OsStr::new(&name)) {
            continue;
        }
        let Some(path) = resolved.get(&name) else {
            return Err(Error::MissingLibrary {
                library: name,
                needed_by,
            });
        };
        let host_path = canonical(Path::new(path))?;
        let lib_bytes = read(&host_path)?;
        let lib = Elf::parse(&lib_bytes).map_err(|e| Error::NotElf {
            path: host_path.clone(),
            reason: e.to_string(),
        })?;
        for next in &lib.libraries {
            queue.push_back(((*next).to_owned(), host_path.clone()));
        }
        out.insert(path.clone(), host_path);
    }
    Ok(out
        .into_iter()
        .map(|(image_path, host_path)| SharedObject {
            image_path,
            host_path,
        })
        .collect())
}

/// `ldd`'s answer: library name -> absolute path (unresolved names are left out).
fn ldd(binary: &Path) -> Result<BTreeMap<String, String>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| Error::ToolMissing {
            tool: "ldd".to_owned(),
            why: format!("needed to find the libraries of {}: {e}", binary.display()),
        })?;
    if !output.status.success() {
        return Err(Error::ToolFailed {
            command: format!("ldd {}", binary.display()),
            status: output.status.to_string(),
            detail: format!(": {}", String::from_utf8_lossy(&output.stderr).trim()),
        });
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&output.stdout)))
}

fn parse_ldd(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((name, rest)) = line.split_once(" => ") {
            let path = rest.split(" (").next().unwrap_or("").trim();
            if path.starts_with('/') {
                map.insert(name.trim().to_owned(), path.to_owned());
            }
        }
    }
    map
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_map_names_to_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \tlibgone.so.2 => not found\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        let map = parse_ldd(text);
        assert_eq!(map.len(), 2);
        assert_eq!(map["libc.so.6"], "/lib/x86_64-linux-gnu/libc.so.6");
        assert!(!map.contains_key("libgone.so.2"));
    }

    #[test]
    fn a_host_tool_is_dynamic_with_libc() {
        let ls = Path::new("/bin/ls");
        let bytes = std::fs::read(ls).unwrap();
        let Linkage::Dynamic {
            interpreter,
            needed,
        } = inspect(ls, &bytes).unwrap()
        else {
            panic!("/bin/ls is dynamically linked");
        };
        assert!(interpreter.starts_with('/'), "{interpreter}");
        assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
        let objects = shared_objects(ls).unwrap();
        assert!(objects.iter().any(|o| o.image_path == interpreter));
        assert!(objects.iter().any(|o| o.image_path.ends_with("/libc.so.6")));
        assert!(objects.iter().all(|o| o.host_path.is_file()));
    }

    #[test]
    fn not_an_executable_is_named() {
        let err = inspect(Path::new("/etc/passwd"), b"root:x:0:0\n").unwrap_err();
        assert!(err.to_string().contains("/etc/passwd"), "{err}");
    }
}
