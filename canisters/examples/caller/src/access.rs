//! Who may make the example spend, and who manages it.
//!
//! The example is a user of the task manager like any other: every job it
//! starts is paid from *its* rate-limit bucket there. So it asks and polls
//! only for its controllers and the principals they put on its allow list
//! ([`AllowList`], at most [`MAX_ALLOWED`]); everyone else gets
//! [`ExampleError::NotAllowed`]. The check is in each method itself (a
//! canister's call never passes `inspect_message`); `inspect_message`
//! (`crate::inspect`) refuses the same ingress before the example pays for
//! it.
//!
//! ```
//! use candid::Principal;
//! use example_caller::access::{AllowList, Caller};
//! let alice = Principal::from_slice(&[1; 10]);
//! let mut list = AllowList::default();
//! let as_alice = Caller { principal: alice, is_controller: false };
//! assert!(as_alice.may_spend(&list).is_err());
//! list.allow(alice).unwrap();
//! assert!(as_alice.may_spend(&list).is_ok());
//! ```

use std::collections::BTreeSet;

use candid::Principal;

use crate::types::{AdminError, ExampleError};

/// The most principals the allow list holds (about 30 KiB in `allowed`'s
/// answer and in stable memory).
pub const MAX_ALLOWED: usize = 1_000;

/// The principals, besides the controllers, the example spends for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(BTreeSet<Principal>);

impl AllowList {
    /// A list as stored (no check of its size: a list saved under a larger
    /// bound stays whole; it only takes no more).
    pub fn from_stored(principals: Vec<Principal>) -> AllowList {
        AllowList(principals.into_iter().collect())
    }

    pub fn contains(&self, principal: &Principal) -> bool {
        self.0.contains(principal)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The principals in order.
    pub fn principals(&self) -> Vec<Principal> {
        self.0.iter().copied().collect()
    }

    /// Adds `principal`; allowing it again is not an error. Refused for the
    /// anonymous principal and when the list is full.
    pub fn allow(&mut self, principal: Principal) -> Result<(), AdminError> {
        if principal == Principal::anonymous() {
            return Err(AdminError::AnonymousPrincipal);
        }
        if !self.0.contains(&principal) && self.0.len() >= MAX_ALLOWED {
            return Err(AdminError::AllowListFull {
                max: MAX_ALLOWED as u32,
            });
        }
        self.0.insert(principal);
        Ok(())
    }

    /// Removes `principal`; removing one that is not there is not an error.
    pub fn disallow(&mut self, principal: &Principal) {
        self.0.remove(principal);
    }
}

/// Who sent the message: `msg_caller` and whether it is a controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub is_controller: bool,
}

impl Caller {
    /// The sender of the message being executed.
    pub fn current() -> Caller {
        Caller::of(ic_cdk::api::msg_caller())
    }

    /// `principal`, with whether it is a controller now.
    pub fn of(principal: Principal) -> Caller {
        Caller {
            principal,
            is_controller: ic_cdk::api::is_controller(&principal),
        }
    }

    /// Whether the example spends for this caller: a controller, or a
    /// principal on the allow list.
    pub fn may_spend(&self, allow_list: &AllowList) -> Result<(), ExampleError> {
        if self.is_controller || allow_list.contains(&self.principal) {
            Ok(())
        } else {
            Err(ExampleError::NotAllowed {
                caller: self.principal,
            })
        }
    }

    /// Whether this caller manages the example.
    pub fn must_be_controller(&self) -> Result<(), AdminError> {
        if self.is_controller {
            Ok(())
        } else {
            Err(AdminError::NotController {
                caller: self.principal,
            })
        }
    }
}

/// Callers for the tests of this crate.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn id(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    pub fn user(n: u8) -> Caller {
        Caller {
            principal: id(n),
            is_controller: false,
        }
    }

    pub fn controller() -> Caller {
        Caller {
            principal: id(99),
            is_controller: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{id, user};
    use super::*;

    #[test]
    fn controllers_and_allowed_principals_spend_no_one_else() {
        let mut list = AllowList::default();
        let controller = Caller {
            principal: id(9),
            is_controller: true,
        };
        assert_eq!(controller.may_spend(&list), Ok(()));
        assert_eq!(
            user(1).may_spend(&list),
            Err(ExampleError::NotAllowed { caller: id(1) })
        );
        let anonymous = Caller {
            principal: Principal::anonymous(),
            is_controller: false,
        };
        assert_eq!(
            anonymous.may_spend(&list),
            Err(ExampleError::NotAllowed {
                caller: Principal::anonymous()
            })
        );

        list.allow(id(1)).unwrap();
        assert_eq!(user(1).may_spend(&list), Ok(()));
        assert!(user(2).may_spend(&list).is_err());

        list.disallow(&id(1));
        assert!(user(1).may_spend(&list).is_err());
        // Removing what is not there changes nothing.
        list.disallow(&id(1));
        assert!(list.is_empty());
    }

    #[test]
    fn only_controllers_manage() {
        assert_eq!(
            user(1).must_be_controller(),
            Err(AdminError::NotController { caller: id(1) })
        );
        let controller = Caller {
            principal: id(1),
            is_controller: true,
        };
        assert_eq!(controller.must_be_controller(), Ok(()));
        // Being allowed to spend is not managing.
        let mut list = AllowList::default();
        list.allow(id(1)).unwrap();
        assert!(user(1).must_be_controller().is_err());
    }

    #[test]
    fn the_anonymous_principal_is_never_allowed() {
        let mut list = AllowList::default();
        assert_eq!(
            list.allow(Principal::anonymous()),
            Err(AdminError::AnonymousPrincipal)
        );
        assert!(list.is_empty());
    }

    #[test]
    fn the_list_is_bounded_and_allowing_twice_counts_once() {
        let mut list = AllowList::default();
        let principal = |i: usize| Principal::from_slice(&(i as u32).to_be_bytes());
        for i in 0..MAX_ALLOWED {
            list.allow(principal(i)).unwrap();
        }
        assert_eq!(list.len(), MAX_ALLOWED);
        assert_eq!(
            list.allow(principal(MAX_ALLOWED)),
            Err(AdminError::AllowListFull {
                max: MAX_ALLOWED as u32
            })
        );
        // One already there is still fine, and changes nothing.
        assert_eq!(list.allow(principal(0)), Ok(()));
        assert_eq!(list.len(), MAX_ALLOWED);
        // A place freed is a place taken.
        list.disallow(&principal(0));
        assert_eq!(list.allow(principal(MAX_ALLOWED)), Ok(()));
        assert!(!list.contains(&principal(0)));
    }

    #[test]
    fn the_list_answers_in_order_without_duplicates() {
        let list = AllowList::from_stored(vec![id(3), id(1), id(3), id(2)]);
        assert_eq!(list.principals(), vec![id(1), id(2), id(3)]);
    }
}
