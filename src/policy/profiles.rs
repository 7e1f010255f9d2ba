//! Built-in profiles: the flows each KB scenario needs, between roles.

/// A built-in profile.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub name: &'static str,
    /// One line: the KB scenario and article.
    pub description: &'static str,
}

/// Every built-in profile (filled by the policy helper).
pub static PROFILES: &[Profile] = &[];

pub fn lookup(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}
