//! The in-process test tier of the HTTP layer: `berth_api::router` on a real SQLite database
//! and filesystem blob store in a temporary directory, with authentication on, driven without
//! a socket or a process (`tower::ServiceExt::oneshot`). Error paths of the management API and
//! the OCI upload protocol live here, where each case costs milliseconds; what needs the real
//! binary (configuration, TLS, clients, several nodes) stays in the black-box tests under
//! `tests/`.
//!
//! `client` is the harness: [`client::TestApp`] and its typed client. One module per area.

mod client;
mod members;
mod projects;
mod robots;
mod uploads;
mod users;
