//! The replica's keys: the BLS12-381 root key that signs certificates, and
//! the node's Ed25519 key that signs query responses.
//!
//! Both are made from OS randomness at first start and kept under
//! `<state_dir>/keys/` (files readable by their owner only), so the root
//! key that clients pin stays the same across restarts.
//!
//! - BLS: secret scalar `sk`, public key `sk·g2` (96-byte compressed G2),
//!   signature `sk·H(m)` (48-byte compressed G1) where `H` hashes to G1 with
//!   the ciphersuite `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_`.
//! - The root key is DER-wrapped as the IC wraps it (OIDs
//!   1.3.6.1.4.1.44668.5.3.1.2.1 for the algorithm, 1.3.6.1.4.1.44668.5.3.2.1
//!   for the curve).
//! - The subnet id is the self-authenticating principal of the DER root key:
//!   what `ic-agent` takes as the id of a subnet that certifies without a
//!   delegation (the root subnet). The node id is the self-authenticating
//!   principal of the node's DER Ed25519 key.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use candid::Principal;
use ed25519_dalek::{Signer, SigningKey};
use ic_bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use ic_bls12_381::{G1Affine, G1Projective, G2Affine, Scalar};

use super::CertificationError;

/// The DER prefix of a BLS12-381 G2 public key, as the IC writes it.
pub const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// The DER prefix of an Ed25519 public key (RFC 8410).
pub const ED25519_DER_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The hash-to-curve domain of the IC's BLS signatures.
const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

const KEYS_DIR: &str = "keys";
const BLS_FILE: &str = "root_bls12381.key";
const NODE_FILE: &str = "node_ed25519.key";

/// The replica's signing keys.
pub struct Keys {
    bls_secret: Scalar,
    bls_public: [u8; 96],
    node: SigningKey,
    subnet_id: Principal,
    node_id: Principal,
}

impl std::fmt::Debug for Keys {
    /// Public parts only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("root_key", &hex::encode(self.bls_public))
            .field("subnet_id", &self.subnet_id.to_text())
            .field("node_id", &self.node_id.to_text())
            .finish_non_exhaustive()
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], CertificationError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| CertificationError::Randomness(e.to_string()))?;
    Ok(b)
}

fn new_bls_secret() -> Result<Scalar, CertificationError> {
    loop {
        let s = Scalar::from_bytes_wide(&random_bytes::<64>()?);
        if s != Scalar::zero() {
            return Ok(s);
        }
    }
}

fn bls_secret_from_bytes(bytes: &[u8], path: &Path) -> Result<Scalar, CertificationError> {
    let corrupt = |reason: &str| CertificationError::CorruptKey {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let b: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt(&format!("expected 32 bytes, found {}", bytes.len())))?;
    let s: Option<Scalar> = Scalar::from_bytes(&b).into();
    match s {
        Some(s) if s != Scalar::zero() => Ok(s),
        Some(_) => Err(corrupt("the secret scalar is zero")),
        None => Err(corrupt("the secret scalar is not below the group order")),
    }
}

impl Keys {
    /// Fresh keys from OS randomness.
    pub fn generate() -> Result<Keys, CertificationError> {
        Ok(Keys::from_parts(
            new_bls_secret()?,
            SigningKey::from_bytes(&random_bytes::<32>()?),
        ))
    }

    /// The keys kept under `<state_dir>/keys/`, made there at first start;
    /// fresh keys in memory when `state_dir` is `None`.
    pub fn load_or_create(state_dir: Option<&Path>) -> Result<Keys, CertificationError> {
        let Some(state_dir) = state_dir else {
            return Keys::generate();
        };
        let dir = state_dir.join(KEYS_DIR);
        create_private_dir(&dir)?;
        let bls_path = dir.join(BLS_FILE);
        let bls_secret = match read_if_exists(&bls_path)? {
            Some(bytes) => bls_secret_from_bytes(&bytes, &bls_path)?,
            None => {
                let s = new_bls_secret()?;
                write_private(&bls_path, &s.to_bytes())?;
                s
            }
        };
        let node_path = dir.join(NODE_FILE);
        let node =
            match read_if_exists(&node_path)? {
                Some(bytes) => {
                    let b: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                        CertificationError::CorruptKey {
                            path: node_path.clone(),
                            reason: format!("expected 32 bytes, found {}", bytes.len()),
                        }
                    })?;
                    SigningKey::from_bytes(&b)
                }
                None => {
                    let b = random_bytes::<32>()?;
                    write_private(&node_path, &b)?;
                    SigningKey::from_bytes(&b)
                }
            };
        Ok(Keys::from_parts(bls_secret, node))
    }

    fn from_parts(bls_secret: Scalar, node: SigningKey) -> Keys {
        let bls_public = G2Affine::from(G2Affine::generator() * bls_secret).to_compressed();
        let mut root_der = BLS_DER_PREFIX.to_vec();
        root_der.extend_from_slice(&bls_public);
        let mut node_der = ED25519_DER_PREFIX.to_vec();
        node_der.extend_from_slice(node.verifying_key().as_bytes());
        Keys {
            bls_secret,
            bls_public,
            subnet_id: Principal::self_authenticating(&root_der),
            node_id: Principal::self_authenticating(&node_der),
            node,
        }
    }

    /// The root key, DER-wrapped as the IC's (133 bytes): what
    /// `/api/v2/status` gives and what clients verify certificates with.
    pub fn root_key_der(&self) -> Vec<u8> {
        let mut der = BLS_DER_PREFIX.to_vec();
        der.extend_from_slice(&self.bls_public);
        der
    }

    /// The raw 96-byte BLS12-381 G2 public key.
    pub fn root_key_raw(&self) -> [u8; 96] {
        self.bls_public
    }

    pub fn subnet_id(&self) -> Principal {
        self.subnet_id
    }

    pub fn node_id(&self) -> Principal {
        self.node_id
    }

    /// The node's Ed25519 public key, DER-wrapped (44 bytes).
    pub fn node_public_key_der(&self) -> Vec<u8> {
        let mut der = ED25519_DER_PREFIX.to_vec();
        der.extend_from_slice(self.node.verifying_key().as_bytes());
        der
    }

    /// The BLS signature (48 bytes) of `message`.
    pub fn bls_sign(&self, message: &[u8]) -> [u8; 48] {
        let h = <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(
            message, BLS_DST,
        );
        G1Affine::from(h * self.bls_secret).to_compressed()
    }

    /// The node's Ed25519 signature (64 bytes) of `message`.
    pub fn node_sign(&self, message: &[u8]) -> [u8; 64] {
        self.node.sign(message).to_bytes()
    }
}

fn io_error(path: &Path, source: std::io::Error) -> CertificationError {
    CertificationError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, CertificationError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), CertificationError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| io_error(dir, e))
}

/// Writes a secret to a file only its owner can read (mode 0600 on Unix),
/// through a temporary file renamed into place, so a crash never leaves a
/// half-written key behind.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertificationError> {
    let tmp: PathBuf = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(|e| io_error(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
    f.sync_all().map_err(|e| io_error(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}
