//! The files of a checkpoint directory: manifests, content-addressed
//! blobs, temporary files (layout in the parent module's documentation).

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{CheckpointError, Hash, FORMAT_VERSION, OLDEST_READABLE_VERSION};

/// The first bytes of a manifest.
pub(crate) const MAGIC: &[u8; 8] = b"LRCKPT\r\n";
const HEADER: usize = MAGIC.len() + 4 + 8;
const TMP: &str = "tmp";
const BLOBS: &str = "blobs";

fn io(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io {
        operation,
        path,
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// The file name of manifest `seq`.
pub(crate) fn manifest_name(seq: u64) -> String {
    format!("checkpoint.{seq:020}.bin")
}

fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint.")?.strip_suffix(".bin")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(TMP);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through `path.tmp`: written, synced, renamed.
/// The directory is not synced.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(bytes).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("renaming into place", path))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Makes the entries of directory `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A checkpoint directory.
pub(crate) struct Dir {
    root: PathBuf,
}

impl Dir {
    /// The directory for writing, created if needed.
    pub fn create(dir: &Path) -> Result<Dir, CheckpointError> {
        std::fs::create_dir_all(dir.join(BLOBS)).map_err(io("creating", dir))?;
        let root = std::fs::canonicalize(dir).map_err(io("resolving", dir))?;
        Ok(Dir { root })
    }

    /// An existing directory, for reading.
    pub fn open(dir: &Path) -> Result<Dir, CheckpointError> {
        match std::fs::canonicalize(dir) {
            Ok(root) if root.is_dir() => Ok(Dir { root }),
            Ok(_) => Err(CheckpointError::NoCheckpoint {
                dir: dir.to_path_buf(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(CheckpointError::NoCheckpoint {
                    dir: dir.to_path_buf(),
                })
            }
            Err(e) => Err(io("resolving", dir)(e)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifests in the directory, by increasing number.
    pub fn manifests(&self) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io("listing", &self.root))? {
            let entry = entry.map_err(io("listing", &self.root))?;
            if let Some(seq) = entry.file_name().to_str().and_then(parse_manifest_name) {
                out.push((seq, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes temporary files left by an interrupted write: those of the
    /// top directory and, if `blobs`, those among the blobs. The number
    /// deleted.
    pub fn remove_tmp_files(&self, blobs: bool) -> Result<u64, CheckpointError> {
        let mut dirs = vec![self.root.clone()];
        if blobs {
            dirs.extend(self.blob_dirs()?);
        }
        let mut removed = 0;
        for dir in dirs {
            for entry in std::fs::read_dir(&dir).map_err(io("listing", &dir))? {
                let path = entry.map_err(io("listing", &dir))?.path();
                if path.extension().is_some_and(|e| e == TMP) && path.is_file() {
                    std::fs::remove_file(&path).map_err(io("deleting", &path))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn blob_dirs(&self) -> Result<Vec<PathBuf>, CheckpointError> {
        let blobs = self.root.join(BLOBS);
        let mut out = Vec::new();
        match std::fs::read_dir(&blobs) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry.map_err(io("listing", &blobs))?.path();
                    if path.is_dir() {
                        out.push(path);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("listing", &blobs)(e)),
        }
        Ok(out)
    }

    pub fn blob_path(&self, hash: &Hash) -> PathBuf {
        let name = hex::encode(hash);
        self.root.join(BLOBS).join(&name[..2]).join(name)
    }

    pub fn has_blob(&self, hash: &Hash) -> bool {
        self.blob_path(hash).is_file()
    }

    /// Every blob in the directory.
    pub fn list_blobs(&self) -> Result<HashSet<Hash>, CheckpointError> {
        let mut out = HashSet::new();
        for dir in self.blob_dirs()? {
            for entry in std::fs::read_dir(&dir).map_err(io("listing", &dir))? {
                let entry = entry.map_err(io("listing", &dir))?;
                let mut hash = [0u8; 32];
                let name = entry.file_name();
                if let Some(name) = name.to_str() {
                    if hex::decode_to_slice(name, &mut hash).is_ok() {
                        out.insert(hash);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes blob `hash` (the SHA-256 of `bytes`), synced; the directory
    /// entries are synced by [`Dir::sync_blobs`].
    pub fn write_blob(&self, hash: &Hash, bytes: &[u8]) -> Result<(), CheckpointError> {
        let path = self.blob_path(hash);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        write_atomic(&path, bytes)
    }

    /// Makes the entries of the blobs in `hashes` durable.
    pub fn sync_blobs<'a>(
        &self,
        hashes: impl IntoIterator<Item = &'a Hash>,
    ) -> Result<(), CheckpointError> {
        let dirs: HashSet<u8> = hashes.into_iter().map(|h| h[0]).collect();
        for d in dirs {
            sync_dir(&self.root.join(BLOBS).join(hex::encode([d])))?;
        }
        sync_dir(&self.root.join(BLOBS))
    }

    /// Blob `hash`, checked against its hash.
    pub fn read_blob(&self, hash: &Hash) -> Result<Vec<u8>, CheckpointError> {
        let path = self.blob_path(hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CheckpointError::MissingBlob { path })
            }
            Err(e) => return Err(io("reading", &path)(e)),
        };
        if sha256(&bytes) != *hash {
            return Err(corrupt(
                &path,
                format!(
                    "expected contents with SHA-256 {}, found {}",
                    hex::encode(hash),
                    hex::encode(sha256(&bytes))
                ),
            ));
        }
        Ok(bytes)
    }

    /// Deletes blob `hash`; whether it was there.
    pub fn remove_blob(&self, hash: &Hash) -> Result<bool, CheckpointError> {
        let path = self.blob_path(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("deleting", &path)(e)),
        }
    }

    /// Writes manifest `seq` with `payload` and makes it durable: from
    /// here on it is the latest checkpoint. The bytes written.
    pub fn write_manifest(&self, seq: u64, payload: &[u8]) -> Result<u64, CheckpointError> {
        let mut bytes = Vec::with_capacity(HEADER + payload.len() + 32);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(payload);
        let digest = sha256(&bytes);
        bytes.extend_from_slice(&digest);
        write_atomic(&self.root.join(manifest_name(seq)), &bytes)?;
        sync_dir(&self.root)?;
        Ok(bytes.len() as u64)
    }

    /// The format version and payload of the manifest at `path`, after
    /// checking its magic, format version, length and checksum.
    pub fn read_manifest(&self, path: &Path) -> Result<(u32, Vec<u8>), CheckpointError> {
        let bytes = std::fs::read(path).map_err(io("reading", path))?;
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt(
                path,
                "expected a local replica checkpoint manifest (starting with LRCKPT)",
            ));
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + 4]);
        let version = u32::from_le_bytes(version);
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(CheckpointError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[MAGIC.len() + 4..HEADER]);
        let len = u64::from_le_bytes(len);
        let expected = (HEADER as u64)
            .checked_add(len)
            .and_then(|n| n.checked_add(32));
        if expected != Some(bytes.len() as u64) {
            return Err(corrupt(
                path,
                format!(
                    "expected {} bytes for a payload of {len}, found {}",
                    expected.map_or_else(|| "more".to_string(), |n| n.to_string()),
                    bytes.len()
                ),
            ));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if sha256(body) != digest {
            return Err(corrupt(path, "the checksum does not match the contents"));
        }
        Ok((version, body[HEADER..].to_vec()))
    }

    /// Deletes manifest `seq`.
    pub fn remove_manifest(&self, seq: u64) -> Result<(), CheckpointError> {
        let path = self.root.join(manifest_name(seq));
        std::fs::remove_file(&path).map_err(io("deleting", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("local_replica_store_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn manifest_names_round_trip() {
        assert_eq!(parse_manifest_name(&manifest_name(42)), Some(42));
        assert_eq!(parse_manifest_name("checkpoint.7.bin"), Some(7));
        assert_eq!(parse_manifest_name("checkpoint..bin"), None);
        assert_eq!(
            parse_manifest_name("checkpoint.00000000000000000001.bin.tmp"),
            None
        );
        assert_eq!(parse_manifest_name("checkpoint.-1.bin"), None);
    }

    #[test]
    fn manifests_are_checked_before_decoding() {
        let root = temp("manifest");
        let dir = Dir::create(&root).unwrap();
        dir.write_manifest(3, b"payload").unwrap();
        let path = dir.manifests().unwrap()[0].1.clone();
        assert_eq!(
            dir.read_manifest(&path).unwrap(),
            (FORMAT_VERSION, b"payload".to_vec())
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            dir.read_manifest(&path),
            Err(CheckpointError::Corrupt { .. })
        ));
        std::fs::write(&path, &bytes[..n - 5]).unwrap();
        assert!(matches!(
            dir.read_manifest(&path),
            Err(CheckpointError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn blobs_are_checked_and_listed() {
        let root = temp("blobs");
        let dir = Dir::create(&root).unwrap();
        let hash = sha256(b"page");
        assert!(matches!(
            dir.read_blob(&hash),
            Err(CheckpointError::MissingBlob { .. })
        ));
        dir.write_blob(&hash, b"page").unwrap();
        dir.sync_blobs([&hash]).unwrap();
        assert_eq!(dir.read_blob(&hash).unwrap(), b"page");
        assert_eq!(dir.list_blobs().unwrap(), HashSet::from([hash]));
        std::fs::write(dir.blob_path(&hash), b"pagf").unwrap();
        assert!(matches!(
            dir.read_blob(&hash),
            Err(CheckpointError::Corrupt { .. })
        ));
        std::fs::write(tmp_path(&dir.blob_path(&hash)), b"half").unwrap();
        assert_eq!(dir.remove_tmp_files(true).unwrap(), 1);
        assert!(dir.remove_blob(&hash).unwrap());
        assert!(!dir.remove_blob(&hash).unwrap());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
