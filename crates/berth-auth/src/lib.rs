//! Identity and access for Berth: the keys that sign registry tokens, the tokens themselves
//! (Docker registry token format, verifiable by CNCF Distribution), access scopes, and password
//! hashing. No I/O: callers load and store key material and credentials.

pub mod keys;
pub mod password;
pub mod scope;
pub mod token;

pub use keys::{KeyError, SigningKey, libtrust_key_id};
pub use scope::{Scope, ScopeError};
pub use token::{Access, Claims, IssuedToken, TokenError, TokenIssuer, TokenVerifier};
