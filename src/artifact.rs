//! The running `indutech` binary as the worker's deployable artifact: the binary that
//! provisions is the binary that is deployed, identified by its SHA-256.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// A binary file and its content digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Where it was read from (`/proc/self/exe` for the running binary).
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// File size, bytes.
    pub size_bytes: u64,
}

impl Artifact {
    /// The binary this process runs, hashed once per process. On Linux it is read through
    /// `/proc/self/exe`, so a binary rebuilt on disk since this process started is not mistaken
    /// for the one running.
    ///
    /// Errors: the executable cannot be read.
    pub fn current() -> anyhow::Result<&'static Artifact> {
        static CURRENT: OnceLock<Artifact> = OnceLock::new();
        if let Some(artifact) = CURRENT.get() {
            return Ok(artifact);
        }
        let path = if Path::new("/proc/self/exe").exists() {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe().context("locating the running executable")?
        };
        let artifact = Artifact::of_file(&path)?;
        Ok(CURRENT.get_or_init(|| artifact))
    }

    /// The digest of the file at `path` (streamed, 1 MiB at a time).
    ///
    /// Errors: the file cannot be read.
    pub fn of_file(path: &Path) -> anyhow::Result<Artifact> {
        let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut size_bytes = 0u64;
        loop {
            let n = file.read(&mut buffer).with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size_bytes += n as u64;
        }
        let sha256 = crate::digest::hex(&hasher.finalize());
        Ok(Artifact { path: path.to_owned(), sha256, size_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_a_known_file() {
        let dir = std::env::temp_dir().join(format!("indutech-artifact-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("abc");
        std::fs::write(&path, b"abc").unwrap();
        let artifact = Artifact::of_file(&path).unwrap();
        // FIPS 180-2, appendix B.1.
        assert_eq!(artifact.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(artifact.size_bytes, 3);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
