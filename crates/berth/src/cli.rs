//! The command line: the subcommands and their options (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::jobs_cli;

/// Berth, a highly available container image registry.
///
/// With no configuration at all, `berth serve` runs on embedded defaults: SQLite metadata and
/// blobs under ./berth-data, listening on 127.0.0.1:5000.
#[derive(Parser)]
#[command(version, propagate_version = true)]
pub(crate) struct Cli {
    /// TOML configuration file; environment variables (BERTH_*) override it.
    #[arg(long, short, global = true, env = "BERTH_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the registry.
    Serve,
    /// Apply database migrations and exit (serve also does this at start-up).
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administrators: the first one, and emergencies.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Token signing keys, kept in the metadata database and shared by every node.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Background jobs: list, show (with the log), stop, run.
    Jobs {
        #[command(subcommand)]
        command: jobs_cli::JobsCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Create a system administrator. The password is read from standard input.
    Create {
        /// Login name.
        #[arg(long, default_value = "admin")]
        username: String,
    },
    /// Set a user's password (for instance a locked-out administrator's). Read from standard input.
    ResetPassword {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// List the system administrators.
    List,
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// List the keys: which signs, which verify, when each activates and retires.
    List,
    /// Add a new signing key. It verifies on every node at once (nodes reload keys every 30 s)
    /// and starts signing after the grace period; the old keys retire once their tokens expired.
    Rotate {
        /// Seconds before the new key signs; longer than the nodes' 30 s key refresh.
        #[arg(long, default_value_t = 90)]
        grace_secs: u64,
        /// Use this key (PKCS#8 PEM, ECDSA P-256) instead of generating one.
        #[arg(long, requires = "cert_file")]
        key_file: Option<PathBuf>,
        /// The certificate of --key-file.
        #[arg(long, requires = "key_file")]
        cert_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the configuration (file and environment) and print the effective settings.
    Check,
}
