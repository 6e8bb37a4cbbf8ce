//! Named result types for candid.
//!
//! A Rust `Result<T, E>` in a candid interface becomes `Result_1`,
//! `Result_2`, … in the `.did`, renumbered whenever a method is added.
//! [`named_result!`] declares an enum of the same shape (`Ok`, `Err`) with
//! a name of its own, and the conversions to and from `Result`.
//!
//! ```
//! use candid::CandidType;
//! #[derive(CandidType, serde::Deserialize, Clone, Debug, PartialEq)]
//! pub enum MyError { Nope }
//! worker_api::named_result!(
//!     /// What `my_method` returns.
//!     MyResult, u64, MyError
//! );
//! let r: MyResult = Ok::<u64, MyError>(7).into();
//! assert_eq!(r.into_result(), Ok(7));
//! ```

/// Declares `pub enum $name { Ok($ok), Err($err) }` (candid `variant { Ok :
/// $ok; Err : $err }`) with `From<Result<$ok, $err>>` and `into_result`.
#[macro_export]
macro_rules! named_result {
    ($(#[$meta:meta])* $name:ident, $ok:ty, $err:ty) => {
        $(#[$meta])*
        #[derive(candid::CandidType, serde::Deserialize, Clone, Debug, PartialEq)]
        pub enum $name {
            Ok($ok),
            Err($err),
        }

        impl $name {
            /// As a plain `Result`.
            pub fn into_result(self) -> Result<$ok, $err> {
                match self {
                    $name::Ok(v) => Ok(v),
                    $name::Err(e) => Err(e),
                }
            }
        }

        impl From<Result<$ok, $err>> for $name {
            fn from(r: Result<$ok, $err>) -> $name {
                match r {
                    Ok(v) => $name::Ok(v),
                    Err(e) => $name::Err(e),
                }
            }
        }

        impl From<$name> for Result<$ok, $err> {
            fn from(r: $name) -> Result<$ok, $err> {
                r.into_result()
            }
        }
    };
}
