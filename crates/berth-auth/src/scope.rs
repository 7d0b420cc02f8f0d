//! Access scopes as clients ask for them: `type:name:actions`, e.g.
//! `repository:team/app:pull,push` or `registry:catalog:*`.

use std::fmt;
use std::str::FromStr;

/// Longest scope string accepted.
const MAX_SCOPE_LEN: usize = 1024;

/// One requested scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository`, `registry`, …
    pub resource_type: String,
    /// The resource name. It may itself contain `:`.
    pub name: String,
    /// Requested actions, e.g. `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

/// Why a scope string cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {0:?}: expected type:name:action[,action…]")]
pub struct ScopeError(pub String);

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || ScopeError(s.chars().take(100).collect());
        if s.len() > MAX_SCOPE_LEN {
            return Err(fail());
        }
        let (resource_type, rest) = s.split_once(':').ok_or_else(fail)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(fail)?;
        let actions: Vec<String> = actions.split(',').map(str::to_owned).collect();
        let word = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))
        };
        if !word(resource_type) || name.is_empty() || !actions.iter().all(|a| word(a)) {
            return Err(fail());
        }
        Ok(Self {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type,
            self.name,
            self.actions.join(",")
        )
    }
}

/// Parses the `scope` parameters of a token request; each may hold several space-separated
/// scopes (as Distribution's challenge for a cross-repository mount does).
pub fn parse_scopes<'a>(
    params: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, ScopeError> {
    params
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_clients_send() {
        let s: Scope = "repository:team/app:pull,push".parse().unwrap();
        assert_eq!(
            (s.resource_type.as_str(), s.name.as_str()),
            ("repository", "team/app")
        );
        assert_eq!(s.actions, ["pull", "push"]);
        assert_eq!(s.to_string(), "repository:team/app:pull,push");
        let port: Scope = "repository:localhost:5000/app:pull".parse().unwrap();
        assert_eq!(port.name, "localhost:5000/app");
        let catalog: Scope = "registry:catalog:*".parse().unwrap();
        assert_eq!(catalog.actions, ["*"]);
        let many = parse_scopes([
            "repository:a:pull repository:b:pull,push",
            "registry:catalog:*",
        ])
        .unwrap();
        assert_eq!(many.len(), 3);
    }

    #[test]
    fn rejects_malformed_scopes() {
        for bad in [
            "",
            "repository",
            "repository:a",
            "repository::pull",
            ":a:pull",
            "repository:a:",
            "repository:a:pull,",
            "repo sitory:a:pull",
            "repository:a:pu ll",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad:?}");
        }
        assert!(
            format!("repository:{}:pull", "a".repeat(2000))
                .parse::<Scope>()
                .is_err()
        );
    }
}
