//! LDAP against a real OpenLDAP (slapd): search bind, one group search, admin group,
//! injection-proof filters.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use berth_auth::ldap::{LdapSettings, authenticate};
use support::Slapd;

fn settings(url: &str) -> LdapSettings {
    LdapSettings {
        url: url.to_owned(),
        starttls: false,
        verify_certificate: true,
        search_dn: Some("cn=admin,dc=example,dc=org".into()),
        search_password: Some("adminpw".into()),
        base_dn: "ou=people,dc=example,dc=org".into(),
        user_filter: "(objectClass=inetOrgPerson)".into(),
        uid_attribute: "uid".into(),
        group_base_dn: Some("ou=groups,dc=example,dc=org".into()),
        group_filter: "(objectClass=groupOfNames)".into(),
        group_membership_attribute: "member".into(),
        admin_group_dn: Some("cn=admins,ou=groups,dc=example,dc=org".into()),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_logins() {
    let slapd = Slapd::start();
    let s = settings(&slapd.url);
    let alice = authenticate(&s, "alice", "alicepw").await.unwrap().unwrap();
    assert_eq!(alice.dn, "uid=alice,ou=people,dc=example,dc=org");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert!(alice.admin);
    assert_eq!(alice.groups.len(), 2);
    let bob = authenticate(&s, "bob", "bobpw").await.unwrap().unwrap();
    assert!(!bob.admin);
    assert_eq!(
        bob.groups,
        vec!["cn=developers,ou=groups,dc=example,dc=org"]
    );
    // Sixty groups, one query.
    let carol = authenticate(&s, "carol", "carolpw").await.unwrap().unwrap();
    assert_eq!(carol.groups.len(), 60);
    // Wrong password, unknown user, empty password (no unauthenticated bind), injection.
    for (user, password) in [
        ("alice", "bobpw"),
        ("nobody", "x"),
        ("alice", ""),
        ("*)(uid=*", "alicepw"),
        ("*", "alicepw"),
        ("alice)(|(uid=*", "alicepw"),
        ("ali*", "alicepw"),
    ] {
        assert!(
            authenticate(&s, user, password).await.unwrap().is_none(),
            "{user:?}/{password:?}"
        );
    }
    assert!(
        authenticate(&s, &"a".repeat(300), "x")
            .await
            .unwrap()
            .is_none()
    );
    // A wrong search account or an unreachable server is an error, not a wrong password.
    let mut wrong = settings(&slapd.url);
    wrong.search_password = Some("nope".into());
    assert!(authenticate(&wrong, "alice", "alicepw").await.is_err());
    let down = settings("ldap://127.0.0.1:1");
    assert!(authenticate(&down, "alice", "alicepw").await.is_err());
}
