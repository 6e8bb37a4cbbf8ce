//! The representation-independent hash of the IC interface specification.
