//! LDAP and Active Directory: search bind, one group search per login, filters built with
//! escaping (no LDAP injection).
//!
//! A login searches the user under `base_dn` as the search account, binds as the user's DN with
//! the password on a separate connection, then finds every group whose membership attribute
//! names the user in a single query (Harbor runs one query per group, and its logins time out
//! for users in many groups).

use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};

/// How to reach and search the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// Verify the server's certificate (turn off only for testing).
    pub verify_certificate: bool,
    /// DN of the account that searches; `None` searches anonymously.
    pub search_dn: Option<String>,
    /// Its password.
    pub search_password: Option<String>,
    /// Where users are.
    pub base_dn: String,
    /// Extra filter users must match, e.g. `(objectClass=inetOrgPerson)`.
    pub user_filter: String,
    /// Attribute holding the login name: `uid`, or `sAMAccountName` on Active Directory.
    pub uid_attribute: String,
    /// Where groups are; `None`: no groups.
    pub group_base_dn: Option<String>,
    /// Filter groups must match, e.g. `(objectClass=groupOfNames)`.
    pub group_filter: String,
    /// Group attribute listing member DNs, e.g. `member`.
    pub group_membership_attribute: String,
    /// Members of this group are system administrators.
    pub admin_group_dn: Option<String>,
    /// Connection and operation timeout.
    pub timeout: Duration,
}

/// A user the directory vouched for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LdapUser {
    /// The user's DN.
    pub dn: String,
    /// Login name.
    pub username: String,
    /// `mail`, when present.
    pub email: Option<String>,
    /// DNs of the user's groups.
    pub groups: Vec<String>,
    /// Member of the administrators' group.
    pub admin: bool,
}

/// The directory could not be asked (unreachable, search account refused, timeout).
#[derive(Debug, thiserror::Error)]
#[error("LDAP: {0}")]
pub struct LdapError(pub String);

impl From<ldap3::LdapError> for LdapError {
    fn from(e: ldap3::LdapError) -> Self {
        Self(e.to_string())
    }
}

/// Longest user name or password sent to the directory.
const MAX_INPUT: usize = 256;

async fn connect(s: &LdapSettings) -> Result<ldap3::Ldap, LdapError> {
    let settings = LdapConnSettings::new()
        .set_conn_timeout(s.timeout)
        .set_starttls(s.starttls)
        .set_no_tls_verify(!s.verify_certificate);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &s.url).await?;
    ldap3::drive!(conn);
    ldap.with_timeout(s.timeout);
    Ok(ldap)
}

/// Checks that the directory answers with these settings: connects (with StartTLS when
/// set), binds as the search account (anonymously without one) and reads the entry of the
/// user base DN.
pub async fn ping(s: &LdapSettings) -> Result<(), LdapError> {
    let mut ldap = connect(s).await?;
    if let Some(dn) = &s.search_dn {
        ldap.simple_bind(dn, s.search_password.as_deref().unwrap_or(""))
            .await?
            .success()?;
    }
    let (entries, _) = ldap
        .search(&s.base_dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .await?
        .success()?;
    let _ = ldap.unbind().await;
    if entries.is_empty() {
        return Err(LdapError(format!(
            "the base DN {} was not found",
            s.base_dn
        )));
    }
    Ok(())
}

/// Checks `username`/`password` against the directory. `Ok(None)`: not a user there, or the
/// wrong password. An empty password is refused without asking (an LDAP "unauthenticated
/// bind" would otherwise succeed).
pub async fn authenticate(
    s: &LdapSettings,
    username: &str,
    password: &str,
) -> Result<Option<LdapUser>, LdapError> {
    if username.is_empty()
        || password.is_empty()
        || username.len() > MAX_INPUT
        || password.len() > MAX_INPUT
    {
        return Ok(None);
    }
    let mut ldap = connect(s).await?;
    if let Some(dn) = &s.search_dn {
        ldap.simple_bind(dn, s.search_password.as_deref().unwrap_or(""))
            .await?
            .success()?;
    }
    let filter = format!(
        "(&{}({}={}))",
        s.user_filter,
        s.uid_attribute,
        ldap_escape(username)
    );
    let (entries, _) = ldap
        .search(
            &s.base_dn,
            Scope::Subtree,
            &filter,
            vec!["mail", s.uid_attribute.as_str()],
        )
        .await?
        .success()?;
    let [entry] = entries.as_slice() else {
        let _ = ldap.unbind().await;
        return Ok(None); // unknown, or ambiguous
    };
    let entry = SearchEntry::construct(entry.clone());
    // The password is checked by binding as the user, on a connection of its own.
    let mut user = connect(s).await?;
    let bound = user
        .simple_bind(&entry.dn, password)
        .await?
        .success()
        .is_ok();
    let _ = user.unbind().await;
    if !bound {
        let _ = ldap.unbind().await;
        return Ok(None);
    }
    let mut groups = Vec::new();
    if let Some(group_base) = &s.group_base_dn {
        let filter = format!(
            "(&{}({}={}))",
            s.group_filter,
            s.group_membership_attribute,
            ldap_escape(&entry.dn)
        );
        let (found, _) = ldap
            .search(group_base, Scope::Subtree, &filter, vec!["1.1"])
            .await?
            .success()?;
        groups = found
            .into_iter()
            .map(|g| SearchEntry::construct(g).dn)
            .collect();
    }
    let _ = ldap.unbind().await;
    let admin = s
        .admin_group_dn
        .as_ref()
        .is_some_and(|a| groups.iter().any(|g| g.eq_ignore_ascii_case(a)));
    // The directory's spelling of the name (it matched without regard to case or surrounding
    // spaces): one person is one account whichever way they type it.
    let canonical = entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&s.uid_attribute))
        .and_then(|(_, values)| {
            values
                .iter()
                .find(|v| v.trim().eq_ignore_ascii_case(username.trim()))
        })
        .map_or_else(|| username.to_owned(), |v| v.trim().to_owned());
    Ok(Some(LdapUser {
        dn: entry.dn,
        username: canonical,
        email: entry.attrs.get("mail").and_then(|m| m.first()).cloned(),
        groups,
        admin,
    }))
}
