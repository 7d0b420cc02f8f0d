//! The management API under /api/v2.0, against the real binary with authentication on: every
//! endpoint's success path, its permission checks and its errors.
//!
//! One test binary, one module per area: `system` (health, system info, the OpenAPI document
//! and the fallbacks), `users`, `projects` (with their members), `robots`, and `artifacts`
//! (repositories, artifacts and tags).

#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod artifacts;
mod configurations;
mod projects;
mod robots;
mod system;
mod users;
