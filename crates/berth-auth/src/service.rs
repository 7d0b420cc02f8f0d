//! The authentication and authorization service: credentials, permissions, token issue and
//! verification, and the signing keys every node shares through the metadata store.
//!
//! Key material cannot disagree between nodes: keys live in the metadata store, the key that
//! signs is the newest one already active, and every key not retired verifies. A rotation adds
//! a key that activates after a grace period (every node has loaded it by then) and schedules
//! the old keys to retire once the tokens they signed have expired. A node given its
//! own key file (`signing_key`) checks it against the cluster's signing key and reports exactly
//! what differs instead of issuing tokens the others reject.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use berth_core::Clock;

use berth_meta::{MetaError, MetadataStore, StoredKey};
use sha2::{Digest, Sha256};

use crate::access::{
    Action, Permission, Principal, REPOSITORY_ACTIONS, ROBOT_PREFIX, Role, Standing, robot_actions,
};
use crate::guard::{CredentialCache, TokenCache};
use crate::keys::{KeyError, SigningKey};
use crate::password;
use crate::scope::Scope;
use crate::token::{Access, Claims, IssuedToken, TokenError, TokenIssuer, TokenVerifier};

/// Longest user name accepted.
pub const MAX_USERNAME_LEN: usize = 255;

/// Settings of the token service.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// The registry service name: `aud` of tokens and `service` of challenges.
    pub service: String,
    /// Token lifetime at start (a setting: [`AuthService::apply`] changes it).
    pub token_lifetime: Duration,
    /// Refresh token lifetime (offline access).
    pub refresh_lifetime: Duration,
    /// The directory, for users without a local password, at start (a setting:
    /// [`AuthService::apply`] changes it).
    pub ldap: Option<crate::ldap::LdapSettings>,
    /// How long a browser session lasts without being used.
    pub session_idle: Duration,
}

/// What administrators change while the service runs (the registry's settings), applied on
/// every node with [`AuthService::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct LiveAuth {
    /// Lifetime of tokens issued from now on.
    pub token_lifetime: Duration,
    /// The directory, for users without a local password; `None`: local accounts only.
    pub ldap: Option<crate::ldap::LdapSettings>,
}

/// An authentication service failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Stored key material cannot be used.
    #[error("signing key {kid}: {source}")]
    Key {
        /// The key.
        kid: String,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// A key could not be generated.
    #[error(transparent)]
    Generate(KeyError),
    /// Hashing failed.
    #[error("password check failed: {0}")]
    Password(String),
    /// The directory could not be asked.
    #[error(transparent)]
    Ldap(crate::ldap::LdapError),
}

struct Keys {
    issuer: TokenIssuer,
    verifier: TokenVerifier,
    signing_kid: String,
    jwks: serde_json::Value,
}

/// The stamp under which directory logins are cached (their password hash is not ours).
/// The stamp of directory checks: a digest of the directory settings they were made under, so
/// that a check made under other settings (another server, base or filter) no longer counts.
fn ldap_stamp(s: &crate::ldap::LdapSettings) -> String {
    let digest = Sha256::digest(format!("{s:?}").as_bytes());
    format!("ldap:{}", hex::encode(&digest[..8]))
}

/// The outcome of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The credentials are good.
    Accepted(Principal),
    /// They are not (unknown user, wrong password, disabled, malformed): callers cannot tell which.
    Rejected,
    /// Too many recent failures for this account or address: try again after this long.
    Throttled(Duration),
}

/// The outcome of confirming a user's current password before it changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// The current password is right and the new one differs.
    Confirmed,
    /// The current password is wrong.
    WrongPassword,
    /// The new password is the current one.
    Unchanged,
    /// Too many recent failures for this account or address: try again after this long.
    Throttled(Duration),
}

/// The key under which failed logins of `username` are counted: the name as the database and
/// the directory compare it (MySQL ignores trailing spaces, directories ignore case and
/// surrounding spaces), so that spellings of one account share one budget.
fn login_account(username: &str) -> String {
    format!("user:{}", username.trim().to_lowercase())
}

/// Verifies `secret` against a stored argon2id hash, off the async workers (it costs
/// milliseconds of CPU).
async fn verify_password(secret: &str, stored: &str) -> Result<bool, AuthError> {
    let (candidate, stored) = (secret.to_owned(), stored.to_owned());
    tokio::task::spawn_blocking(move || password::verify(&candidate, &stored))
        .await
        .map_err(|e| AuthError::Password(e.to_string()))
}

/// A hash of a random secret nobody knows, for logins with no account to check.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash(&hex::encode(password::random_bytes())).unwrap_or_default())
}

/// Refuses a login that has no account to check (unknown, disabled or expired) after the same
/// verification a wrong password costs, so that timing does not tell the cases apart.
async fn decoy(secret: &str) -> Result<Option<Principal>, AuthError> {
    verify_password(secret, decoy_hash()).await?;
    Ok(None)
}

/// Failed logins allowed per account in [`FAILURE_WINDOW`].
pub const MAX_ACCOUNT_FAILURES: usize = 10;
/// Failed logins allowed per client address in [`FAILURE_WINDOW`].
pub const MAX_ADDRESS_FAILURES: usize = 50;
/// The sliding window of the failure limits.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// How long a successful password check is remembered.
pub const CREDENTIAL_TTL: Duration = Duration::from_secs(60);

/// The authentication service, shared by all requests.
pub struct AuthService {
    meta: MetadataStore,
    settings: AuthSettings,
    configured: Option<SigningKey>,
    keys: RwLock<Arc<Keys>>,
    live: RwLock<Arc<LiveAuth>>,
    credentials: CredentialCache,
    directory: CredentialCache<crate::ldap::LdapUser>,
    tokens: TokenCache,
    limits: crate::limits::LoginLimits,
    sessions: crate::sessions::Sessions,
    /// The cluster's key for naming shared credential-cache entries.
    login_key: [u8; 32],
}

/// The name of the cluster secret that keys the shared credential cache.
const LOGIN_CACHE_SECRET: &str = "credential-cache";

/// Unix seconds now. Tokens are checked against the system's clock (as every verifier of a
/// JWT does), so the token service reads that clock.
fn now() -> i64 {
    berth_core::SystemClock.unix_seconds()
}

impl AuthService {
    /// Loads the cluster's signing keys (creating the first one if there is none, from
    /// `configured` when given). Returns the service and, if this node's configured key is not
    /// the cluster's signing key, what differs: the node must then not become ready.
    pub async fn start(
        meta: MetadataStore,
        settings: AuthSettings,
        configured: Option<SigningKey>,
    ) -> Result<(Self, Option<String>), AuthError> {
        let keys = load_keys(&meta, &settings, configured.as_ref()).await?;
        let problem = configured.as_ref().filter(|c| c.kid() != keys.signing_kid).map(|c| {
            format!(
                "this node's signing key {} (auth.signing_key_file) is not the cluster's signing key {} (kept in the metadata \
                 database): give every node the same key file, or remove auth.signing_key_file to use the database's key",
                c.kid(),
                keys.signing_kid
            )
        });
        let sessions = crate::sessions::Sessions::new(settings.session_idle);
        // Computed once, now, so that the first refused login does not pay for it.
        tokio::task::spawn_blocking(decoy_hash)
            .await
            .map_err(|e| AuthError::Password(e.to_string()))?;
        let candidate = hex::encode(password::random_bytes());
        let secret = meta.cluster_secret(LOGIN_CACHE_SECRET, &candidate).await?;
        let login_key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let live = LiveAuth {
            token_lifetime: settings.token_lifetime,
            ldap: settings.ldap.clone(),
        };
        let service = Self {
            meta,
            settings,
            sessions,
            configured,
            keys: RwLock::new(Arc::new(keys)),
            live: RwLock::new(Arc::new(live)),
            credentials: CredentialCache::new("password", CREDENTIAL_TTL),
            directory: CredentialCache::new("directory", CREDENTIAL_TTL),
            tokens: TokenCache::default(),
            limits: crate::limits::LoginLimits::default(),
            login_key,
        };
        Ok((service, problem))
    }

    /// Keeps the failed-login counts, the sessions and the credential checks in Redis from now
    /// on, shared with the other nodes.
    pub fn share_state(&self, shared: berth_shared::Shared) {
        self.sessions.share(shared.clone());
        self.credentials.share(shared.clone(), self.login_key);
        self.directory.share(shared.clone(), self.login_key);
        self.limits.share(shared);
    }

    /// Opens a browser session for a user who just authenticated: the session id (for the
    /// cookie) and its CSRF token. `None` for robot accounts and anonymous callers, which
    /// have no sessions.
    pub async fn open_session(
        &self,
        principal: &Principal,
    ) -> Result<Option<(String, String)>, AuthError> {
        let Principal::User {
            id,
            name,
            sysadmin,
            groups,
        } = principal
        else {
            return Ok(None);
        };
        let Some(user) = self.meta.user(name).await? else {
            return Ok(None);
        };
        let record = crate::sessions::SessionRecord {
            user_id: *id,
            username: name.clone(),
            groups: groups.clone(),
            admin_by_group: *sysadmin && !user.sysadmin,
            stamp: crate::sessions::stamp(user.password_hash.as_deref()),
            csrf: crate::sessions::random_id(),
        };
        let session = crate::sessions::random_id();
        self.sessions.open(&session, &record).await;
        Ok(Some((session, record.csrf)))
    }

    /// Who the session `id` stands for now, and its CSRF token. `None` when it is unknown or
    /// expired, or its user was deleted, disabled or given a new password since (the session
    /// then ends).
    pub async fn session(&self, id: &str) -> Result<Option<(Principal, String)>, AuthError> {
        let Some(record) = self.sessions.get(id).await else {
            return Ok(None);
        };
        match self.meta.user(&record.username).await? {
            Some(user)
                if user.id == record.user_id
                    && !user.disabled
                    && crate::sessions::stamp(user.password_hash.as_deref()) == record.stamp =>
            {
                let principal = Principal::User {
                    id: user.id,
                    name: user.username,
                    sysadmin: user.sysadmin || record.admin_by_group,
                    groups: record.groups,
                };
                Ok(Some((principal, record.csrf)))
            }
            _ => {
                self.sessions.close(id).await;
                Ok(None)
            }
        }
    }

    /// Ends the session `id` on every node.
    pub async fn close_session(&self, id: &str) {
        self.sessions.close(id).await;
    }

    /// Whether the shared login limits work: `None` when Redis is not in use.
    pub async fn shared_limits_status(&self) -> Option<Result<(), String>> {
        self.limits.shared_status().await
    }

    /// Declares that Redis is configured (so that its absence counts as a problem) before a
    /// connection exists.
    pub fn expect_shared_limits(&self) {
        self.limits.expect_shared();
    }

    /// Re-reads the keys (a rotation scheduled by another node, a retirement).
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        let keys = load_keys(&self.meta, &self.settings, self.configured.as_ref()).await?;
        if let Ok(mut slot) = self.keys.write() {
            *slot = Arc::new(keys);
        }
        Ok(())
    }

    fn keys(&self) -> Arc<Keys> {
        self.keys
            .read()
            .map_or_else(|e| e.into_inner().clone(), |k| k.clone())
    }

    /// The settings the service started with (see [`live`](Self::live) for those that
    /// change while it runs).
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The token lifetime and the directory as they apply now.
    pub fn live(&self) -> Arc<LiveAuth> {
        self.live
            .read()
            .map_or_else(|e| e.into_inner().clone(), |l| l.clone())
    }

    /// Applies changed settings. Directory checks remembered under other directory settings
    /// no longer count (their stamp names the settings), on any node.
    pub fn apply(&self, live: LiveAuth) {
        match self.live.write() {
            Ok(mut slot) => *slot = Arc::new(live),
            Err(e) => *e.into_inner() = Arc::new(live),
        }
    }

    /// The public keys that verify tokens, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys().jwks.clone()
    }

    /// The kid of the key that signs.
    pub fn signing_kid(&self) -> String {
        self.keys().signing_kid.clone()
    }

    /// Checks a user name and password from `client` (an address, for rate limiting): local
    /// accounts by their argon2id hash, others against the directory when LDAP is configured
    /// (onboarding the user on first login). A name with no account to check costs the same
    /// argon2id verification as a wrong password, so that timing does not tell which names exist.
    pub async fn authenticate(
        &self,
        username: &str,
        secret: &str,
        client: &str,
    ) -> Result<Login, AuthError> {
        let (account, address) = (login_account(username), format!("addr:{client}"));
        if let Some(wait) = self.limits.blocked(&account, &address).await {
            return Ok(Login::Throttled(wait));
        }
        match self.verify_credentials(username, secret).await? {
            Some(principal) => {
                self.limits.succeeded(&account).await;
                Ok(Login::Accepted(principal))
            }
            None => {
                self.limits.failed(&account, &address).await;
                Ok(Login::Rejected)
            }
        }
    }

    /// Checks the current password `old` of `user`, who is changing it to `new`, from
    /// `client`: throttled and counted like a login, so that a stolen session cannot be used to
    /// guess the password (nor to spend the server's CPU on argon2id).
    pub async fn confirm_password_change(
        &self,
        user: &berth_meta::User,
        old: &str,
        new: &str,
        client: &str,
    ) -> Result<PasswordChange, AuthError> {
        let (account, address) = (login_account(&user.username), format!("addr:{client}"));
        if let Some(wait) = self.limits.blocked(&account, &address).await {
            return Ok(PasswordChange::Throttled(wait));
        }
        let stored = user.password_hash.clone().unwrap_or_default();
        if !verify_password(old, &stored).await? {
            self.limits.failed(&account, &address).await;
            return Ok(PasswordChange::WrongPassword);
        }
        self.limits.succeeded(&account).await;
        if old == new {
            return Ok(PasswordChange::Unchanged);
        }
        Ok(PasswordChange::Confirmed)
    }

    /// The principal `username` and `secret` stand for, if they are good.
    async fn verify_credentials(
        &self,
        username: &str,
        secret: &str,
    ) -> Result<Option<Principal>, AuthError> {
        if username.is_empty()
            || username.len() > MAX_USERNAME_LEN
            || secret.len() > password::MAX_PASSWORD_LEN
        {
            return Ok(None);
        }
        if username.starts_with(ROBOT_PREFIX) {
            return self.robot_login(username, secret).await;
        }
        let user = self.meta.user(username).await?;
        if user.as_ref().is_some_and(|u| u.disabled) {
            return decoy(secret).await;
        }
        let principal = match user {
            // A local account: its password hash decides.
            Some(user) if user.password_hash.is_some() => {
                let hash = user.password_hash.clone().unwrap_or_default();
                let principal = Principal::User {
                    id: user.id,
                    name: user.username.clone(),
                    sysadmin: user.sysadmin,
                    groups: Vec::new(),
                };
                if self
                    .credentials
                    .hit(username, secret, &hash)
                    .await
                    .is_none()
                {
                    if !verify_password(secret, &hash).await? {
                        return Ok(None);
                    }
                    self.credentials.remember(username, secret, &hash, ()).await;
                }
                principal
            }
            // Anyone else: the directory, if there is one.
            existing => {
                let live = self.live();
                let Some(ldap) = &live.ldap else {
                    return decoy(secret).await;
                };
                let stamp = ldap_stamp(ldap);
                let found = match self.directory.hit(username, secret, &stamp).await {
                    Some(found) => Some(found),
                    None => crate::ldap::authenticate(ldap, username, secret)
                        .await
                        .map_err(AuthError::Ldap)?,
                };
                let Some(found) = found else {
                    return Ok(None);
                };
                self.directory
                    .remember(username, secret, &stamp, found.clone())
                    .await;
                // The directory's spelling of the name, not the one typed: directories compare
                // names without regard to case, and one person must be one account here.
                let canonical = found.username.as_str();
                let existing = match existing {
                    Some(u) if u.username == canonical => Some(u),
                    _ => self.meta.user(canonical).await?,
                };
                if existing
                    .as_ref()
                    .is_some_and(|u| u.disabled || u.password_hash.is_some())
                {
                    // A disabled account, or a local account by that name: the directory
                    // does not speak for it.
                    return Ok(None);
                }
                let (id, sysadmin) = match existing {
                    Some(u) => (u.id, u.sysadmin),
                    None => match self.meta.create_user(canonical, None, false).await? {
                        Some(id) => {
                            tracing::info!(user = canonical, "onboarded a directory user");
                            (id, false)
                        }
                        None => match self.meta.user(canonical).await? {
                            Some(u) if u.password_hash.is_none() && !u.disabled => {
                                (u.id, u.sysadmin)
                            }
                            _ => return Ok(None),
                        },
                    },
                };
                Principal::User {
                    id,
                    name: canonical.to_owned(),
                    sysadmin: sysadmin || found.admin,
                    groups: found.groups,
                }
            }
        };
        Ok(Some(principal))
    }

    /// Checks a robot's secret; `None` if unknown, disabled, expired or wrong (each costing
    /// the same verification).
    async fn robot_login(&self, name: &str, secret: &str) -> Result<Option<Principal>, AuthError> {
        let Some(robot) = self.meta.robot(name).await? else {
            return decoy(secret).await;
        };
        if robot.disabled || robot.expires_at.is_some_and(|t| t <= now()) {
            return decoy(secret).await;
        }
        if self
            .credentials
            .hit(name, secret, &robot.secret_hash)
            .await
            .is_none()
        {
            if !verify_password(secret, &robot.secret_hash).await? {
                return Ok(None);
            }
            self.credentials
                .remember(name, secret, &robot.secret_hash, ())
                .await;
        }
        Ok(Some(robot_principal(robot)))
    }

    /// The principal a token's subject names (a user or a robot), for explaining refusals.
    pub async fn principal_named(&self, subject: &str) -> Result<Option<Principal>, AuthError> {
        if subject.starts_with(ROBOT_PREFIX) {
            return Ok(self.meta.robot(subject).await?.map(robot_principal));
        }
        Ok(self.meta.user(subject).await?.map(|u| Principal::User {
            id: u.id,
            name: u.username,
            sysadmin: u.sysadmin,
            groups: Vec::new(),
        }))
    }

    /// The role `principal` holds in a project: its own, or the strongest of its groups'.
    async fn role_in(
        &self,
        project_id: i64,
        principal: &Principal,
    ) -> Result<Option<Role>, AuthError> {
        let Principal::User { id, groups, .. } = principal else {
            return Ok(None);
        };
        let mut roles: Vec<Role> = self
            .meta
            .user_role(project_id, *id)
            .await?
            .and_then(|r| r.parse().ok())
            .into_iter()
            .collect();
        if !groups.is_empty() {
            for (dn, role) in self.meta.group_roles(project_id).await? {
                if groups.iter().any(|g| g.eq_ignore_ascii_case(&dn)) {
                    roles.extend(role.parse::<Role>().ok());
                }
            }
        }
        Ok(roles
            .into_iter()
            .max_by_key(|r| r.repository_actions().len()))
    }

    /// What `principal` is to `project`: administrator, member with a role, robot with
    /// actions, or outsider.
    pub async fn standing(
        &self,
        principal: &Principal,
        project: &berth_meta::Project,
    ) -> Result<Standing, AuthError> {
        Ok(match principal {
            Principal::User { sysadmin: true, .. } => Standing::SystemAdmin,
            Principal::Robot { permissions, .. } => {
                Standing::Robot(robot_actions(permissions, project.id))
            }
            Principal::User { .. } => match self.role_in(project.id, principal).await? {
                Some(role) => Standing::Member(role),
                None => Standing::Outsider {
                    public: project.public,
                },
            },
            Principal::Anonymous => Standing::Outsider {
                public: project.public,
            },
        })
    }

    /// What `principal` may do in `repository`, with the reason when it is not everything.
    pub async fn permission(
        &self,
        principal: &Principal,
        repository: &str,
    ) -> Result<Permission, AuthError> {
        let project_name = berth_core::name::project_of(repository);
        let Some(project) = self.meta.project(project_name).await? else {
            return Ok(Permission {
                actions: Vec::new(),
                limit: Some(format!("project {project_name} does not exist")),
            });
        };
        let and = |actions: &[Action]| -> String {
            let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            names.join(" and ")
        };
        let (actions, limit): (Vec<Action>, Option<String>) = match principal {
            Principal::Robot {
                name, permissions, ..
            } => {
                let actions = robot_actions(permissions, project.id);
                let limit = (actions.len() < 3).then(|| match actions.as_slice() {
                    [] => format!("{name} has no access to project {project_name}"),
                    some => format!("{name} may {} only in project {project_name}", and(some)),
                });
                (actions, limit)
            }
            Principal::User { sysadmin: true, .. } => (REPOSITORY_ACTIONS.to_vec(), None),
            Principal::User { name, .. } => match self.role_in(project.id, principal).await? {
                Some(role) => {
                    let actions = role.repository_actions().to_vec();
                    let limit = (actions.len() < 3).then(|| {
                        format!(
                            "{name} is {role} in project {project_name}, which allows {} only",
                            and(&actions)
                        )
                    });
                    (actions, limit)
                }
                None if project.public => (
                    vec![Action::Pull],
                    Some(format!("{name} is not a member of project {project_name}")),
                ),
                None => (
                    Vec::new(),
                    Some(format!("{name} is not a member of project {project_name}")),
                ),
            },
            Principal::Anonymous if project.public => {
                (vec![Action::Pull], Some("authentication required".into()))
            }
            Principal::Anonymous => (Vec::new(), Some("authentication required".into())),
        };
        Ok(Permission { actions, limit })
    }

    /// The access to put in a token for the requested scopes: what was asked for, narrowed to
    /// what is allowed. Unknown resources and types get no actions (not an error).
    pub async fn grant(
        &self,
        principal: &Principal,
        scopes: &[Scope],
    ) -> Result<Vec<Access>, AuthError> {
        let mut granted = Vec::with_capacity(scopes.len());
        for scope in scopes {
            let allowed: Vec<String> = match (scope.resource_type.as_str(), scope.name.as_str()) {
                ("repository", name) if name.parse::<berth_core::RepositoryName>().is_ok() => {
                    let permission = self.permission(principal, name).await?;
                    scope
                        .actions
                        .iter()
                        .flat_map(|a| {
                            if a == "*" {
                                permission.actions.clone()
                            } else {
                                a.parse::<Action>().into_iter().collect()
                            }
                        })
                        .filter(|a| permission.actions.contains(a))
                        .map(|a| a.as_str().to_owned())
                        .collect()
                }
                ("registry", "catalog")
                    if matches!(principal, Principal::User { sysadmin: true, .. }) =>
                {
                    vec!["*".to_owned()]
                }
                _ => Vec::new(),
            };
            let mut actions = allowed;
            actions.dedup();
            granted.push(Access {
                resource_type: scope.resource_type.clone(),
                name: scope.name.clone(),
                actions,
            });
        }
        Ok(granted)
    }

    /// Issues a refresh token for a user (OAuth2 offline access).
    pub async fn issue_refresh(&self, principal: &Principal) -> Result<Option<String>, AuthError> {
        let lifetime = self.settings.refresh_lifetime;
        let Principal::User { name, .. } = principal else {
            return Ok(None);
        };
        let Some(user) = self.meta.user(name).await? else {
            return Ok(None);
        };
        let fingerprint = password_fingerprint(&user);
        let token = self
            .keys()
            .issuer
            .issue_refresh(name, &fingerprint, lifetime)
            .map_err(|e| AuthError::Password(e.to_string()))?;
        Ok(Some(token))
    }

    /// The user a refresh token stands for, if it is valid, the user is enabled and its
    /// password has not changed since the token was issued.
    pub async fn redeem_refresh(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let Ok(claims) = self
            .keys()
            .verifier
            .verify_refresh(token, &self.settings.service)
        else {
            return Ok(None);
        };
        let Some(user) = self.meta.user(&claims.sub).await? else {
            return Ok(None);
        };
        if user.disabled || password_fingerprint(&user) != claims.pwd {
            return Ok(None);
        }
        Ok(Some(Principal::User {
            id: user.id,
            name: user.username,
            sysadmin: user.sysadmin,
            groups: Vec::new(),
        }))
    }

    /// Issues a token.
    pub fn issue(
        &self,
        principal: &Principal,
        access: Vec<Access>,
    ) -> Result<IssuedToken, TokenError> {
        let lifetime = self.live().token_lifetime;
        self.keys()
            .issuer
            .issue_for(principal.name(), access, lifetime)
    }

    /// Verifies a token (remembering those that verified, until they expire).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = u64::try_from(now()).unwrap_or(0);
        if let Some(claims) = self.tokens.get(token, now, crate::token::LEEWAY.as_secs()) {
            return Ok(claims);
        }
        let claims = self.keys().verifier.verify(token)?;
        self.tokens.put(token, &claims);
        Ok(claims)
    }

    /// Creates the first administrator if there are no users at all. Returns whether it did.
    pub async fn bootstrap_admin(&self, username: &str, secret: &str) -> Result<bool, AuthError> {
        if self.meta.count_users().await? > 0 {
            return Ok(false);
        }
        let hash = password::hash(secret).map_err(|e| AuthError::Password(e.to_string()))?;
        Ok(self
            .meta
            .create_user(username, Some(&hash), true)
            .await?
            .is_some())
    }
}

fn robot_principal(robot: berth_meta::Robot) -> Principal {
    Principal::Robot {
        id: robot.id,
        name: robot.name,
        permissions: robot.grants,
    }
}

/// Which of `keys` (ordered by activation, as the metadata store returns them) signs at `now`:
/// the newest one already active, or, if none is active yet, the first. Every node applies this
/// same rule to the same rows, so they agree.
pub fn signing_key_index(keys: &[StoredKey], now: i64) -> Option<usize> {
    keys.iter()
        .rposition(|k| k.activates_at <= now)
        .or((!keys.is_empty()).then_some(0))
}

/// A short fingerprint of a user's identity and stored password hash (never the hash itself)
/// for refresh tokens: a password change, or a user deleted and re-created under the same name,
/// revokes them.
fn password_fingerprint(user: &berth_meta::User) -> String {
    let mut hasher = Sha256::new();
    hasher.update(user.id.to_string().as_bytes());
    hasher.update(b":");
    hasher.update(user.password_hash.as_deref().unwrap_or("").as_bytes());
    data_encoding::HEXLOWER.encode(&hasher.finalize()[..12])
}

/// Adds a new signing key that starts signing after `grace` and schedules every other key to
/// retire once tokens it signed have expired. Returns the new key's id. With `key`, that key is
/// used (an operator-provided file); otherwise one is generated.
pub async fn rotate_signing_key(
    meta: &MetadataStore,
    settings: &AuthSettings,
    key: Option<SigningKey>,
    grace: Duration,
) -> Result<String, AuthError> {
    let key = match key {
        Some(k) => k,
        None => SigningKey::generate("berth token signer").map_err(AuthError::Generate)?,
    };
    // Strictly newer than every key there: the newest active key is the one that signs.
    let newest = meta
        .signing_keys(0)
        .await?
        .iter()
        .map(|k| k.activates_at)
        .max()
        .unwrap_or(0);
    let activates_at = (now() + grace.as_secs() as i64).max(newest + 1);
    meta.insert_signing_key(&StoredKey {
        kid: key.kid().to_owned(),
        private_pem: key.private_pem().to_owned(),
        cert_pem: key.cert_pem().to_owned(),
        activates_at,
        retires_at: None,
    })
    .await?;
    let retires_at =
        activates_at + (settings.token_lifetime + crate::token::LEEWAY).as_secs() as i64;
    meta.retire_signing_keys_except(key.kid(), retires_at)
        .await?;
    Ok(key.kid().to_owned())
}

async fn load_keys(
    meta: &MetadataStore,
    settings: &AuthSettings,
    configured: Option<&SigningKey>,
) -> Result<Keys, AuthError> {
    let now = now();
    let mut stored = meta.signing_keys(now).await?;
    if stored.is_empty() {
        let key = match configured {
            Some(k) => {
                SigningKey::from_pem(k.private_pem(), k.cert_pem()).map_err(AuthError::Generate)?
            }
            None => SigningKey::generate("berth token signer").map_err(AuthError::Generate)?,
        };
        meta.insert_signing_key(&StoredKey {
            kid: key.kid().to_owned(),
            private_pem: key.private_pem().to_owned(),
            cert_pem: key.cert_pem().to_owned(),
            activates_at: now,
            retires_at: None,
        })
        .await?;
        tracing::info!(kid = key.kid(), "created the token signing key");
        // Another node may have created one at the same moment: both read the same order.
        stored = meta.signing_keys(now).await?;
    }
    let keys = stored
        .iter()
        .map(|s| {
            SigningKey::from_pem(&s.private_pem, &s.cert_pem)
                .map(Arc::new)
                .map_err(|source| AuthError::Key {
                    kid: s.kid.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signing = signing_key_index(&stored, now).map(|i| keys[i].clone());
    let Some(signing) = signing else {
        return Err(AuthError::Generate(KeyError::InvalidKey(
            "no signing key".into(),
        )));
    };
    let jwks = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    Ok(Keys {
        jwks,
        signing_kid: signing.kid().to_owned(),
        issuer: TokenIssuer::new(
            signing,
            &settings.issuer,
            &settings.service,
            settings.token_lifetime,
        ),
        verifier: TokenVerifier::new(keys, &settings.issuer, &settings.service),
    })
}
