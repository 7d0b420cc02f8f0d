//! `berth`: a container image registry in one binary.
//!
//! `cli` declares the command line; `serve` runs the registry, from the stores `stores` opens
//! and the token service `auth` starts; `check` is `berth config check`; `admin` holds the
//! `admin` and `keys` subcommands and `jobs_cli` the `jobs` one.

mod admin;
mod auth;
mod check;
mod cli;
mod config;
mod jobs_cli;
mod serve;
mod stores;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand};
use config::{Config, LogFormat};

/// Keeps freed heap memory for reuse instead of handing it back to the kernel at once.
///
/// glibc serves allocations above a sliding threshold (128 KiB at first) with fresh `mmap`s
/// and trims the heap top past another, so the network buffers of a streamed blob (hundreds
/// of KiB each, freed as soon as they are written) were faulted in anew about 45,000 times per
/// pushed GiB. Each fault zeroes a page, and on a VM that reports free memory to its host it
/// also faults the page in on the host. Fixed thresholds keep those buffers in the heap:
/// a few thousand faults per GiB, and the heap still gives back more than 64 MiB left free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("berth: invalid configuration:");
            for e in &errors.0 {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Config {
        command: ConfigCommand::Check,
    } = cli.command
    {
        check::print_effective(&config);
        let problems = runtime.block_on(check::unreachable_services(&config));
        if problems.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!("berth: the configuration is valid, but:");
        for p in &problems {
            eprintln!("  - {p}");
        }
        return ExitCode::FAILURE;
    }
    init_logging(&config);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve::serve(config).await,
            Command::Migrate => stores::migrate(&config).await.map(drop),
            Command::Keys { command } => admin::keys(&config, command).await,
            Command::Admin { command } => admin::admin(&config, command).await,
            Command::Jobs { command } => jobs_cli::run(&config, command).await,
            Command::Config { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&c.log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if c.log.format == LogFormat::Json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}
