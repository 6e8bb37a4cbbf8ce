//! The certified state tree and its certificates.
