//! Identity and access for Berth: the keys that sign registry tokens, the tokens themselves
//! (Docker registry token format, verifiable by CNCF Distribution), access scopes, password
//! hashing, roles, and the service that decides who may do what (backed by the metadata store).

pub mod access;
pub mod guard;
pub mod keys;
pub mod ldap;
mod limits;
pub mod password;
pub mod scope;
pub mod service;
mod sessions;
pub mod token;

pub use access::{
    Permission, Principal, ProjectCreation, ProjectOp, REPOSITORY_ACTIONS, ROBOT_PREFIX,
    RobotReach, Role, Standing, robot_actions, robot_reach,
};
pub use berth_meta::RobotGrant;
pub use keys::{KeyError, SigningKey, libtrust_key_id};
pub use scope::{Scope, ScopeError};
pub use service::{
    AuthError, AuthService, AuthSettings, LiveAuth, Login, PasswordChange, rotate_signing_key,
    signing_key_index,
};
pub use token::{Access, Claims, IssuedToken, TokenError, TokenIssuer, TokenVerifier};
