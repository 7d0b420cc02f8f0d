//! `berth jobs`: the job system from the command line, through the metadata database the
//! configuration names (no running node needed).

use std::sync::Arc;

use anyhow::Context;
use berth_meta::{JobFilter, JobState, Page};
use clap::Subcommand;

/// `berth jobs …`
#[derive(Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state: pending, running, succeeded, failed, stopped.
        #[arg(long)]
        status: Option<String>,
        /// Only jobs of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Most jobs listed.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// Show a job and its log.
    Show {
        /// Job id.
        id: i64,
    },
    /// Stop a job: a pending one at once, a running one within a heartbeat.
    Stop {
        /// Job id.
        id: i64,
    },
    /// Start a job now: `audit-purge`, `upload-purge` or `count` (a self-test).
    Run {
        /// Kind.
        kind: String,
        /// Parameters as JSON, e.g. '{"retention_hours": 720}'.
        #[arg(long, default_value = "{}")]
        params: String,
    },
}

fn time(ms: i64) -> String {
    berth_api::management::time(ms.div_euclid(1000))
}

/// Runs a `berth jobs` command.
pub async fn run(config: &crate::config::Config, command: JobsCommand) -> anyhow::Result<()> {
    let meta = crate::stores::migrate(config).await?;
    let node = format!("{}-cli", config.node_name);
    let blobs = crate::stores::open_blob_store(config, &meta, &node).await?;
    let registry = berth_registry::Registry::new(
        meta.clone(),
        blobs,
        Arc::new(berth_core::SystemClock),
        berth_registry::AuditSettings::default(),
    );
    match command {
        JobsCommand::List {
            status,
            kind,
            limit,
        } => {
            let mut filter = JobFilter {
                kind,
                ..JobFilter::default()
            };
            if let Some(s) = status {
                filter.states.push(JobState::parse(&s).with_context(|| {
                    format!("--status {s:?} is not pending, running, succeeded, failed or stopped")
                })?);
            }
            let page = meta
                .list_jobs(
                    &filter,
                    Page {
                        offset: 0,
                        limit: limit.clamp(1, 1000),
                    },
                )
                .await?;
            println!(
                "{:>8}  {:>9}  {:<14} {:<10} {:>8}  {:<20}  NODE",
                "JOB", "EXECUTION", "KIND", "STATUS", "ATTEMPTS", "CREATED"
            );
            for j in &page.items {
                println!(
                    "{:>8}  {:>9}  {:<14} {:<10} {:>4}/{:<3}  {:<20}  {}",
                    j.id,
                    j.execution_id,
                    j.kind,
                    j.state.as_str(),
                    j.attempts,
                    j.max_attempts,
                    time(j.created_at),
                    j.holder.as_deref().unwrap_or("-")
                );
            }
            println!("{} of {} jobs", page.items.len(), page.total);
        }
        JobsCommand::Show { id } => {
            let j = meta
                .job(id)
                .await?
                .with_context(|| format!("job {id} not found"))?;
            println!("job          {}", j.id);
            println!("execution    {}", j.execution_id);
            println!("kind         {}", j.kind);
            println!("parameters   {}", j.params);
            println!("status       {}", j.state.as_str());
            println!("attempts     {} of {}", j.attempts, j.max_attempts);
            println!("node         {}", j.holder.as_deref().unwrap_or("-"));
            println!("created      {}", time(j.created_at));
            if let Some(t) = j.finished_at {
                println!("ended        {}", time(t));
            }
            if let Some(c) = &j.checkpoint {
                println!("checkpoint   {c}");
            }
            if let Some(r) = &j.result {
                println!("result       {r}");
            }
            if let Some(e) = &j.error {
                println!("error        {e}");
            }
            let log = meta
                .job_log(
                    id,
                    Page {
                        offset: 0,
                        limit: berth_meta::MAX_LOG_LINES,
                    },
                )
                .await?;
            if !log.items.is_empty() {
                println!("log:");
                for l in &log.items {
                    println!(
                        "  {} [{}] {}",
                        time(l.at),
                        l.level.to_uppercase(),
                        l.message
                    );
                }
            }
        }
        JobsCommand::Stop { id } => {
            let state = registry.stop_job(id).await?;
            println!(
                "job {id}: {}",
                match state {
                    JobState::Running => "stop requested; it stops within a heartbeat",
                    s => s.as_str(),
                }
            );
        }
        JobsCommand::Run { kind, params } => {
            let params: serde_json::Value = serde_json::from_str(&params)
                .with_context(|| format!("--params is not JSON: {params}"))?;
            let initiator = berth_registry::Initiator {
                who: berth_registry::Who::System,
                address: String::new(),
            };
            let execution = registry.start_job(&initiator, &kind, &params).await?;
            println!("execution {execution} started");
        }
    }
    Ok(())
}
