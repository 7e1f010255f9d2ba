//! Built-in profiles: the flows each KB scenario needs, between roles. The
//! scenarios themselves are rows of the knowledge table
//! ([`crate::kb::PROFILES`]); this is the policy's view of them.
//!
//! A profile rule applies to every pair of groups with its roles; a profile
//! whose roles have no group in the policy adds nothing (see
//! [`super::Policy::profile_warnings`]).

use super::Role;

pub use crate::kb::{Profile, ProfileRule, PROFILES};

pub fn lookup(name: &str) -> Option<&'static Profile> {
    crate::kb::profile(name)
}

/// Every built-in profile name, in documentation order.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROFILES.iter().map(|p| p.name)
}

impl Profile {
    /// The roles its rules speak of, sorted, without repeats.
    pub fn roles(&self) -> Vec<Role> {
        let mut roles: Vec<Role> = self.rules.iter().flat_map(|r| [r.from, r.to]).collect();
        roles.sort();
        roles.dedup();
        roles
    }
}
