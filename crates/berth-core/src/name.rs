//! Names: repositories (e.g. `library/ubuntu` or `team/app/api`), projects (`library`), and
//! the simple names projects and robot accounts are given.

use std::fmt;
use std::str::FromStr;

/// Longest repository name accepted (as in CNCF Distribution).
pub const MAX_NAME_LEN: usize = 255;

/// A validated repository name:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

/// Why a string is not a repository name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid repository name {name:?}: {reason}")]
pub struct NameError {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn valid_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("empty path component");
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err("components must start and end with a lowercase letter or digit");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return Err("only lowercase letters, digits, '.', '_', '-' and '/' are allowed"),
        }
        if i >= b.len() || !alnum(b[i]) || (b[start] == b'_' && i - start > 2) {
            return Err("separators must be '.', '_', '__' or dashes between letters or digits");
        }
    }
    Ok(())
}

impl RepositoryName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The project the repository belongs to: its first path component (the whole name when it
    /// has one component). The one rule that maps repositories to projects, for permissions
    /// and for what a project owns alike.
    pub fn project(&self) -> &str {
        project_of(&self.0)
    }
}

/// The project of a repository name (see [`RepositoryName::project`]), for names already
/// validated and kept as text.
pub fn project_of(repository: &str) -> &str {
    repository.split_once('/').map_or(repository, |(p, _)| p)
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| NameError {
            name: s.to_owned(),
            reason,
        };
        if s.len() > MAX_NAME_LEN {
            return Err(fail("longer than 255 characters"));
        }
        for component in s.split('/') {
            valid_component(component).map_err(fail)?;
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `name` is a simple name of at most `max` bytes: lower-case letters and digits,
/// in parts separated by single `.`, `_` or `-` (Harbor's rule for project names; Berth's for
/// robot names too).
pub fn is_simple_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Why a string is not a simple name (of a project or a robot account).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {name:?} is invalid: use 1 to {max} lower-case letters and digits, separated by single '.', '_' or '-'"
)]
pub struct SimpleNameError {
    /// What was being named ("project name", "robot name").
    pub what: &'static str,
    /// The rejected name.
    pub name: String,
    /// The longest allowed.
    pub max: usize,
}

/// Checks `name` with [`is_simple_name`].
pub fn check_simple_name(
    what: &'static str,
    name: &str,
    max: usize,
) -> Result<(), SimpleNameError> {
    if is_simple_name(name, max) {
        Ok(())
    } else {
        Err(SimpleNameError {
            what,
            name: name.to_owned(),
            max,
        })
    }
}

/// A validated project name: the first component of its repositories' names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);

impl ProjectName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ProjectName {
    type Err = SimpleNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_simple_name("project name", s, MAX_NAME_LEN)?;
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        for good in ["a", "team", "my-team.x_1", "0abc"] {
            assert_eq!(good.parse::<ProjectName>().unwrap().as_str(), good);
        }
        for bad in ["", "Team", "a--b", "-a", "a-", "a/b", "a b", "é"] {
            assert!(bad.parse::<ProjectName>().is_err(), "{bad}");
        }
        assert!("a".repeat(256).parse::<ProjectName>().is_err());
        let e = "A".parse::<ProjectName>().unwrap_err().to_string();
        assert!(e.starts_with("project name \"A\" is invalid"), "{e}");
    }

    #[test]
    fn accepts_the_spec_grammar() {
        for ok in [
            "a",
            "library/ubuntu",
            "a/b/c/d/e/f/g/h",
            "my.app",
            "my_app",
            "my__app",
            "my-app",
            "my---app",
            "0x/9-9.8_7__6",
        ] {
            let n: RepositoryName = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(n.as_str(), ok);
        }
    }

    #[test]
    fn rejects_what_the_grammar_rejects() {
        for bad in [
            "", "/", "a/", "/a", "a//b", "A", "a_", "_a", "a___b", "a..b", "a._b", "a-", "a b",
            "a:b", "a/B", "é",
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "{bad:?} accepted");
        }
        assert!("a".repeat(256).parse::<RepositoryName>().is_err());
        assert!("a".repeat(255).parse::<RepositoryName>().is_ok());
    }

    #[test]
    fn the_project_is_the_first_component() {
        let project = |n: &str| n.parse::<RepositoryName>().unwrap().project().to_owned();
        assert_eq!(project("team"), "team");
        assert_eq!(project("team/app"), "team");
        assert_eq!(project("team/a/b"), "team");
    }
}
