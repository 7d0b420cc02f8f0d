//! Settings administrators change while the registry runs (Harbor's "configurations"): the
//! authentication mode and the directory, who may create projects, the token lifetime.
//!
//! The configuration file and the environment give their initial values; a key the operator
//! pinned there ([`SettingsBase::pinned`]) keeps that value and cannot be changed here. A
//! change is stored in the metadata database with its audit entry, in one transaction, and
//! every node reads the stored values every few seconds ([`Registry::refresh_settings`]), so
//! that it applies everywhere within seconds.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_auth::ProjectCreation;
use berth_auth::ldap::LdapSettings;
use serde_json::Value;

use crate::{Error, EventKind, Initiator, Registry};

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// `true` or `false`.
    Bool,
    /// A whole number in this range.
    Number(i64, i64),
    /// Free text (a DN, a filter, an attribute).
    Text,
    /// Text never shown back (a password).
    Secret,
    /// One of these words.
    Choice(&'static [&'static str]),
}

/// A setting: its key (Harbor's name) and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDef {
    /// Harbor's key.
    pub key: &'static str,
    /// Its values.
    pub kind: SettingKind,
}

const fn def(key: &'static str, kind: SettingKind) -> SettingDef {
    SettingDef { key, kind }
}

/// `auth_mode`: local accounts only.
pub const DB_AUTH: &str = "db_auth";
/// `auth_mode`: local accounts, and the directory for everyone else.
pub const LDAP_AUTH: &str = "ldap_auth";
/// Longest token lifetime, in minutes (a day).
pub const MAX_TOKEN_MINUTES: i64 = 1440;

/// Every setting, in the order the configuration page shows them.
pub const SETTINGS: [SettingDef; 16] = [
    def("auth_mode", SettingKind::Choice(&[DB_AUTH, LDAP_AUTH])),
    def("ldap_url", SettingKind::Text),
    def("ldap_starttls", SettingKind::Bool),
    def("ldap_verify_cert", SettingKind::Bool),
    def("ldap_search_dn", SettingKind::Text),
    def("ldap_search_password", SettingKind::Secret),
    def("ldap_base_dn", SettingKind::Text),
    def("ldap_filter", SettingKind::Text),
    def("ldap_uid", SettingKind::Text),
    def("ldap_group_base_dn", SettingKind::Text),
    def("ldap_group_search_filter", SettingKind::Text),
    def("ldap_group_membership_attribute", SettingKind::Text),
    def("ldap_group_admin_dn", SettingKind::Text),
    def("ldap_timeout", SettingKind::Number(1, 300)),
    def(
        "project_creation_restriction",
        SettingKind::Choice(&["everyone", "adminonly"]),
    ),
    def(
        "token_expiration",
        SettingKind::Number(1, MAX_TOKEN_MINUTES),
    ),
];

/// The definition of `key`.
pub fn setting(key: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|d| d.key == key)
}

/// Longest text value.
const MAX_TEXT: usize = 1024;

impl SettingDef {
    /// `value` if it fits this setting (numbers may come as JSON numbers or strings, as
    /// Harbor's clients send both), normalised.
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        let key = self.key;
        match self.kind {
            SettingKind::Bool => match value {
                Value::Bool(_) => Ok(value.clone()),
                Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
                _ => Err(format!("{key} is true or false")),
            },
            SettingKind::Number(min, max) => {
                let n = match value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                match n {
                    Some(n) if (min..=max).contains(&n) => Ok(Value::from(n)),
                    _ => Err(format!("{key} is a whole number from {min} to {max}")),
                }
            }
            SettingKind::Text | SettingKind::Secret => match value {
                Value::String(s) if s.len() <= MAX_TEXT && !s.chars().any(char::is_control) => {
                    Ok(Value::String(s.trim().to_owned()))
                }
                _ => Err(format!(
                    "{key} is text of at most {MAX_TEXT} bytes without control characters"
                )),
            },
            SettingKind::Choice(words) => match value {
                Value::String(s) if words.contains(&s.as_str()) => Ok(value.clone()),
                _ => Err(format!("{key} is one of {}", words.join(", "))),
            },
        }
    }
}

/// The settings as they apply: a value for every key of [`SETTINGS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    values: BTreeMap<&'static str, Value>,
}

impl Default for Settings {
    /// The defaults of a registry configured with nothing.
    fn default() -> Self {
        let mut values = BTreeMap::new();
        for d in &SETTINGS {
            let v = match d.key {
                "auth_mode" => Value::from(DB_AUTH),
                "ldap_verify_cert" => Value::Bool(true),
                "ldap_starttls" => Value::Bool(false),
                "ldap_filter" => Value::from("(objectClass=person)"),
                "ldap_uid" => Value::from("uid"),
                "ldap_group_search_filter" => Value::from("(objectClass=groupOfNames)"),
                "ldap_group_membership_attribute" => Value::from("member"),
                "ldap_timeout" => Value::from(5),
                "project_creation_restriction" => Value::from("everyone"),
                "token_expiration" => Value::from(30),
                _ => Value::from(""),
            };
            values.insert(d.key, v);
        }
        Self { values }
    }
}

impl Settings {
    /// The value of `key` (`Null` for an unknown key).
    pub fn get(&self, key: &str) -> &Value {
        self.values.get(key).unwrap_or(&Value::Null)
    }

    fn text(&self, key: &str) -> &str {
        self.get(key).as_str().unwrap_or_default()
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key).as_bool().unwrap_or_default()
    }

    fn number(&self, key: &str) -> i64 {
        self.get(key).as_i64().unwrap_or_default()
    }

    /// Sets `key` to `value` after checking it (for the binary's initial values).
    pub fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        let d = setting(key).ok_or_else(|| format!("unknown setting {key}"))?;
        let value = d.check(&value)?;
        self.values.insert(d.key, value);
        Ok(())
    }

    /// Who may create projects.
    pub fn project_creation(&self) -> ProjectCreation {
        self.text("project_creation_restriction")
            .parse()
            .unwrap_or_default()
    }

    /// How long issued tokens last.
    pub fn token_lifetime(&self) -> Duration {
        let minutes = self.number("token_expiration").clamp(1, MAX_TOKEN_MINUTES);
        Duration::from_secs(minutes as u64 * 60)
    }

    /// `db_auth` or `ldap_auth`.
    pub fn auth_mode(&self) -> &str {
        self.text("auth_mode")
    }

    /// The directory's settings as given, whether or not the directory is in use (to test a
    /// connection before switching to it).
    pub fn ldap_settings(&self) -> LdapSettings {
        let some = |key: &str| Some(self.text(key).to_owned()).filter(|s| !s.is_empty());
        LdapSettings {
            url: self.text("ldap_url").to_owned(),
            starttls: self.flag("ldap_starttls"),
            verify_certificate: self.flag("ldap_verify_cert"),
            search_dn: some("ldap_search_dn"),
            search_password: some("ldap_search_password"),
            base_dn: self.text("ldap_base_dn").to_owned(),
            user_filter: self.text("ldap_filter").to_owned(),
            uid_attribute: self.text("ldap_uid").to_owned(),
            group_base_dn: some("ldap_group_base_dn"),
            group_filter: self.text("ldap_group_search_filter").to_owned(),
            group_membership_attribute: self.text("ldap_group_membership_attribute").to_owned(),
            admin_group_dn: some("ldap_group_admin_dn"),
            timeout: Duration::from_secs(self.number("ldap_timeout").max(1) as u64),
        }
    }

    /// The directory, when the authentication mode uses it.
    pub fn ldap(&self) -> Option<LdapSettings> {
        (self.auth_mode() == LDAP_AUTH).then(|| self.ldap_settings())
    }

    /// Why these settings cannot apply together (the directory mode needs a directory).
    pub fn check_whole(&self) -> Result<(), String> {
        if self.auth_mode() == LDAP_AUTH {
            check_ldap(&self.ldap_settings())?;
        }
        Ok(())
    }
}

/// Why `s` cannot be used to reach a directory.
pub fn check_ldap(s: &LdapSettings) -> Result<(), String> {
    if !(s.url.starts_with("ldap://") || s.url.starts_with("ldaps://")) || s.url.len() < 9 {
        return Err("ldap_url is ldap://HOST[:PORT] or ldaps://HOST[:PORT]".into());
    }
    if s.base_dn.is_empty() || s.uid_attribute.is_empty() {
        return Err("ldap_base_dn and ldap_uid are needed to find users".into());
    }
    Ok(())
}

/// Where settings start from: the values of the configuration file and the environment (or
/// the defaults), and the keys pinned there, each with where it is pinned.
#[derive(Debug, Clone, Default)]
pub struct SettingsBase {
    /// Initial values.
    pub initial: Settings,
    /// Pinned keys → where (e.g. "configuration file /etc/berth.toml").
    pub pinned: BTreeMap<String, String>,
}

impl SettingsBase {
    /// The settings the stored values make of the initial ones (pinned keys keep theirs; a
    /// stored value that no longer fits is ignored, with a warning).
    pub fn with_stored(&self, stored: &[berth_meta::StoredSetting]) -> Settings {
        let mut settings = self.initial.clone();
        for s in stored {
            if self.pinned.contains_key(&s.name) {
                continue;
            }
            let value = serde_json::from_str::<Value>(&s.value).map_err(|e| e.to_string());
            if let Err(e) = value.and_then(|v| settings.set(&s.name, v)) {
                tracing::warn!(setting = %s.name, error = %e, "stored setting ignored");
            }
        }
        settings
    }
}

/// A setting as the configuration page and `GET /configurations` show it.
#[derive(Debug, Clone)]
pub struct SettingView {
    /// Its definition.
    pub def: &'static SettingDef,
    /// Its value (a secret's is `""`, or `"*"` when set).
    pub value: Value,
    /// Whether administrators may change it.
    pub editable: bool,
    /// Where a pinned value comes from.
    pub pinned_by: Option<String>,
}

impl Registry {
    /// The settings as they apply now on this node.
    pub fn settings(&self) -> Arc<Settings> {
        self.live.borrow().clone()
    }

    /// Follows every change of the settings (the binary applies them to the token service).
    pub fn watch_settings(&self) -> tokio::sync::watch::Receiver<Arc<Settings>> {
        self.live.subscribe()
    }

    /// The settings with whether each may be changed and where pinned ones come from.
    pub fn setting_views(&self) -> Vec<SettingView> {
        let now = self.settings();
        SETTINGS
            .iter()
            .map(|def| {
                let value = now.get(def.key).clone();
                let value = match def.kind {
                    SettingKind::Secret if value.as_str().is_some_and(|s| !s.is_empty()) => {
                        Value::from("*")
                    }
                    SettingKind::Secret => Value::from(""),
                    _ => value,
                };
                let pinned_by = self.base.pinned.get(def.key).cloned();
                SettingView {
                    def,
                    value,
                    editable: pinned_by.is_none(),
                    pinned_by,
                }
            })
            .collect()
    }

    /// Reads the stored settings and applies them on this node. Returns whether they changed.
    pub async fn refresh_settings(&self) -> Result<bool, berth_meta::MetaError> {
        let stored = self.meta.stored_settings().await?;
        let settings = self.base.with_stored(&stored);
        Ok(self.live.send_if_modified(|now| {
            if **now == settings {
                false
            } else {
                *now = Arc::new(settings);
                true
            }
        }))
    }

    /// Refreshes the settings every `every` until `stop` completes.
    pub async fn run_settings_refresh(&self, every: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.refresh_settings().await {
                Ok(true) => tracing::info!("settings changed"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the settings"),
            }
        }
    }

    /// Tests a connection to the directory with the current settings changed by `overrides`
    /// (unsaved values from the configuration page; a secret sent empty keeps its value).
    /// `Err` for values that cannot be used; `Ok(Err(why))` when the directory did not answer
    /// as it should.
    pub async fn ping_directory(
        &self,
        overrides: &BTreeMap<String, Value>,
    ) -> Result<Result<(), String>, Error> {
        let mut trial = (*self.settings()).clone();
        for (key, value) in overrides {
            let def =
                setting(key).ok_or_else(|| Error::Invalid(format!("unknown setting {key}")))?;
            if def.kind == SettingKind::Secret && value.as_str() == Some("") {
                continue;
            }
            trial.set(key, value.clone()).map_err(Error::Invalid)?;
        }
        let ldap = trial.ldap_settings();
        check_ldap(&ldap).map_err(Error::Invalid)?;
        Ok(berth_auth::ldap::ping(&ldap).await.map_err(|e| e.0))
    }

    /// Changes settings (keys → values, as Harbor's `PUT /configurations` sends them). Every
    /// key must exist and not be pinned, every value must fit, and together they must make
    /// settings that work; a secret sent empty keeps its value. Values equal to the current
    /// ones change nothing. Recorded as one change naming the keys. Returns the keys changed.
    pub async fn update_settings(
        &self,
        initiator: &Initiator,
        changes: &BTreeMap<String, Value>,
    ) -> Result<Vec<&'static str>, Error> {
        let current = self.settings();
        let mut next = (*current).clone();
        let mut changed = Vec::new();
        for (key, value) in changes {
            let def =
                setting(key).ok_or_else(|| Error::Invalid(format!("unknown setting {key}")))?;
            if let Some(place) = self.base.pinned.get(key) {
                return Err(Error::Forbidden(format!("{key} is pinned by {place}")));
            }
            if def.kind == SettingKind::Secret && value.as_str() == Some("") {
                continue;
            }
            let value = def.check(value).map_err(Error::Invalid)?;
            if *current.get(def.key) != value {
                next.values.insert(def.key, value);
                changed.push(def.key);
            }
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        next.check_whole().map_err(Error::Invalid)?;
        let values: Vec<(String, String)> = changed
            .iter()
            .map(|k| ((*k).to_owned(), next.get(k).to_string()))
            .collect();
        let kind = EventKind::ConfigurationChanged {
            key: changed.join(", "),
        };
        self.change(initiator, None, kind, |m| async move {
            m.put_settings(&values).await
        })
        .await?;
        tracing::info!(keys = %changed.join(","), "settings changed");
        self.refresh_settings().await?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_normalised() {
        let d = |k| setting(k).unwrap();
        assert_eq!(
            d("token_expiration").check(&Value::from("60")),
            Ok(Value::from(60))
        );
        assert!(d("token_expiration").check(&Value::from(0)).is_err());
        assert!(d("token_expiration").check(&Value::from(1441)).is_err());
        assert!(d("token_expiration").check(&Value::from("soon")).is_err());
        assert_eq!(
            d("ldap_starttls").check(&Value::from("true")),
            Ok(Value::Bool(true))
        );
        assert!(d("ldap_starttls").check(&Value::from(1)).is_err());
        assert!(d("auth_mode").check(&Value::from("oidc_auth")).is_err());
        assert_eq!(
            d("ldap_base_dn").check(&Value::from(" dc=x ")),
            Ok(Value::from("dc=x"))
        );
        assert!(d("ldap_base_dn").check(&Value::from("a\nb")).is_err());
        assert!(
            d("ldap_base_dn")
                .check(&Value::from("x".repeat(2000)))
                .is_err()
        );
        assert!(setting("email_host").is_none());
    }

    #[test]
    fn the_directory_mode_needs_a_directory() {
        let mut s = Settings::default();
        assert_eq!(s.auth_mode(), DB_AUTH);
        assert!(s.ldap().is_none());
        assert_eq!(s.token_lifetime(), Duration::from_secs(1800));
        s.set("auth_mode", Value::from(LDAP_AUTH)).unwrap();
        assert!(s.check_whole().is_err());
        s.set("ldap_url", Value::from("ldap://d.example")).unwrap();
        s.set("ldap_base_dn", Value::from("dc=example")).unwrap();
        assert_eq!(s.check_whole(), Ok(()));
        let ldap = s.ldap().unwrap();
        assert_eq!(ldap.uid_attribute, "uid");
        assert_eq!(ldap.search_dn, None);
        assert!(ldap.verify_certificate);
    }
}
