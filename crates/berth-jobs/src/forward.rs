//! Forwarding the audit log to syslog: RFC 5424 messages, octet-counted (RFC 6587), over TCP.
//!
//! One node forwards at a time (it holds the `audit-forward` lease; another takes over when it
//! stops renewing). It reads entries after the cursor kept in the database, in id order, and
//! delivers them a batch per connection: it writes the batch, closes its side, and counts the
//! batch delivered only when the receiver, having read everything, closes its side too. Only
//! then does the cursor move. A receiver that is down or goes away mid-batch gets the batch
//! again later: nothing is lost, and entries arrive in order. (A receiver killed after reading
//! part of a batch can receive that part twice; each message carries its entry id, so the
//! receiver can tell.) An id missing from the sequence (a transaction that has not committed
//! yet) is waited for until the entry after it is [`GAP_WAIT`] old, then passed over (the
//! transaction rolled back, or the database's ids step by more than one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::Clock;
use berth_meta::{AuditRecord, MetadataStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The lease and cursor name of the syslog forwarder.
pub const FORWARD: &str = "audit-forward";
/// How long a gap in the ids is waited for before it is passed over.
pub const GAP_WAIT: Duration = Duration::from_secs(10);
/// Entries per delivery.
const BATCH: u32 = 500;
/// How long a delivery (connect, write, the receiver's close) may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Escapes a structured-data parameter value (RFC 5424 §6.3.3).
/// Control characters (a newline in a name tried at login would start a forged line in a
/// receiver's file) become spaces.
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in text(s).chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Free text with control characters turned into spaces.
fn text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A printable-ASCII header field (RFC 5424: no spaces), or `-`.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if f.is_empty() { "-".to_owned() } else { f }
}

/// RFC 3339 with milliseconds, UTC.
fn timestamp(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

/// One entry as an RFC 5424 message: facility local0, severity notice (warning for a
/// failure), MSGID `audit`, the entry in structured data `audit@32473` and as text.
pub fn format(r: &AuditRecord, host: &str) -> String {
    let e = &r.entry;
    let severity = if e.outcome == "success" { 5 } else { 4 };
    let pri = 16 * 8 + severity;
    format!(
        "<{pri}>1 {} {} berth - audit [audit@32473 id=\"{}\" user=\"{}\" principal=\"{}\" operation=\"{}\" resource_type=\"{}\" resource=\"{}\" outcome=\"{}\" client=\"{}\"{}] {} {} {} {} {}",
        timestamp(e.op_time),
        header_field(host, 255),
        r.id,
        sd_escape(&e.username),
        sd_escape(&e.principal),
        sd_escape(&e.operation),
        sd_escape(&e.resource_type),
        sd_escape(&e.resource),
        sd_escape(&e.outcome),
        sd_escape(&e.client_address),
        e.project_id
            .map_or_else(String::new, |p| format!(" project_id=\"{p}\"")),
        text(&e.username),
        text(&e.operation),
        text(&e.resource_type),
        text(&e.resource),
        text(&e.outcome)
    )
}

/// Octet-counted framing: `<length> <message>`.
fn frame(message: &str) -> String {
    format!("{} {message}", message.len())
}

/// Delivers `batch` over one connection, and waits for the receiver to close its side after
/// reading it all.
async fn deliver(endpoint: &str, batch: &[String]) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(endpoint).await?;
    stream.set_nodelay(true)?;
    let mut bytes = Vec::new();
    for m in batch {
        bytes.extend_from_slice(frame(m).as_bytes());
    }
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    stream.shutdown().await?;
    // The receiver answers nothing; it closes once it has read to our end. A reset or a
    // timeout instead means it may not have read everything.
    let mut sink = [0u8; 512];
    loop {
        match stream.read(&mut sink).await? {
            0 => return Ok(()),
            _ => continue,
        }
    }
}

/// Forwards the audit log to a syslog receiver.
#[derive(Debug)]
pub struct SyslogForwarder {
    meta: MetadataStore,
    clock: Arc<dyn Clock>,
    endpoint: String,
    host: String,
    holder: String,
}

impl SyslogForwarder {
    /// A forwarder to `endpoint` (`host:port`) for the node `holder`, naming `host` in messages.
    pub fn new(
        meta: MetadataStore,
        clock: Arc<dyn Clock>,
        endpoint: String,
        host: String,
        holder: String,
    ) -> Self {
        Self {
            meta,
            clock,
            endpoint,
            host,
            holder,
        }
    }

    /// The entries after `cursor` that may go now, in id order: an id missing before an
    /// entry (a transaction not yet committed, or one rolled back, or ids that step by more
    /// than one, as on Galera) is waited for until that entry is [`GAP_WAIT`] old.
    fn deliverable(cursor: i64, entries: Vec<AuditRecord>, now: i64) -> Vec<AuditRecord> {
        let wait = i64::try_from(GAP_WAIT.as_millis()).unwrap_or(i64::MAX);
        let mut expected = cursor + 1;
        let mut out = Vec::new();
        for e in entries {
            if e.id != expected && e.entry.op_time > now - wait {
                break;
            }
            expected = e.id + 1;
            out.push(e);
        }
        out
    }

    /// Forwards until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(250);
        let mut last_warning: Option<Instant> = None;
        loop {
            let pause = match self.round().await {
                Ok(true) => {
                    backoff = Duration::from_millis(250);
                    Duration::ZERO
                }
                Ok(false) => Duration::from_millis(250),
                Err(error) => {
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(endpoint = %self.endpoint, %error, "audit forwarding to syslog failed; entries wait and are sent when it answers");
                        last_warning = Some(Instant::now());
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            if pause > Duration::ZERO {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => break,
                }
            } else if *shutdown.borrow() {
                break;
            }
        }
        let _ = self.meta.release_lease(FORWARD, &self.holder).await;
    }

    /// One delivery: `Ok(true)` if entries went, `Ok(false)` if there was nothing to send (or
    /// another node forwards).
    async fn round(&self) -> Result<bool, String> {
        let held = self
            .meta
            .acquire_lease(FORWARD, &self.holder, Duration::from_secs(15))
            .await
            .map_err(|e| e.to_string())?;
        if !held {
            return Ok(false);
        }
        let now = self.clock.unix_millis();
        let cursor = self
            .meta
            .audit_cursor(FORWARD, now)
            .await
            .map_err(|e| e.to_string())?;
        let entries = self
            .meta
            .audit_after(cursor, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let batch = Self::deliverable(cursor, entries, self.clock.unix_millis());
        let Some(last) = batch.last().map(|e| e.id) else {
            return Ok(false);
        };
        let messages: Vec<String> = batch.iter().map(|e| format(e, &self.host)).collect();
        tokio::time::timeout(DELIVERY_TIMEOUT, deliver(&self.endpoint, &messages))
            .await
            .map_err(|_| "the receiver did not close the connection within 10 s".to_owned())?
            .map_err(|e| e.to_string())?;
        self.meta
            .advance_audit_cursor(FORWARD, cursor, last, self.clock.unix_millis())
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_meta::AuditEntry;

    fn record(id: i64) -> AuditRecord {
        AuditRecord {
            id,
            entry: AuditEntry {
                op_time: 1_700_000_000_042,
                project_id: Some(3),
                user_id: None,
                principal: "user".into(),
                username: "a\"b]c\\".into(),
                operation: "create".into(),
                resource_type: "artifact".into(),
                resource: "p/app@sha256:1".into(),
                client_address: "192.0.2.1".into(),
                outcome: "failure".into(),
                detail: None,
            },
        }
    }

    #[test]
    fn messages_are_rfc5424_with_escaped_structured_data() {
        let m = format(&record(7), "node 1");
        assert_eq!(
            m,
            "<132>1 2023-11-14T22:13:20.042Z node1 berth - audit [audit@32473 id=\"7\" user=\"a\\\"b\\]c\\\\\" principal=\"user\" operation=\"create\" resource_type=\"artifact\" resource=\"p/app@sha256:1\" outcome=\"failure\" client=\"192.0.2.1\" project_id=\"3\"] a\"b]c\\ create artifact p/app@sha256:1 failure"
        );
        let mut forged = record(8);
        forged.entry.username = "x\n<133>1 forged\r".into();
        let m = format(&forged, "node");
        assert!(!m.contains('\n') && !m.contains('\r'), "{m}");
        assert!(m.contains("user=\"x <133>1 forged \""), "{m}");
        assert_eq!(frame("abc"), "3 abc");
        assert_eq!(frame("é"), "2 é", "octets, not characters");
    }

    #[test]
    fn gaps_are_waited_for_until_the_entry_after_them_is_old() {
        let at = |id: i64, t: i64| {
            let mut r = record(id);
            r.entry.op_time = t;
            r
        };
        let ids = |v: Vec<AuditRecord>| v.iter().map(|r| r.id).collect::<Vec<_>>();
        let now = 100_000;
        // 7 is missing and 8 is fresh: wait.
        let got = SyslogForwarder::deliverable(4, vec![at(5, now), at(6, now), at(8, now)], now);
        assert_eq!(ids(got), [5, 6]);
        // 7 committed meanwhile.
        let got = SyslogForwarder::deliverable(6, vec![at(7, now), at(8, now)], now);
        assert_eq!(ids(got), [7, 8]);
        // Gaps before entries older than the wait are passed, however many.
        let old = now - 10_001;
        let got = SyslogForwarder::deliverable(
            8,
            vec![at(10, old), at(13, old), at(20, old), at(22, now)],
            now,
        );
        assert_eq!(ids(got), [10, 13, 20]);
    }
}
