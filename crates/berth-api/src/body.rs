//! Request bodies read whole within a limit. A body over its limit is answered `413` at once
//! and read on and thrown away in the background (up to a bound): a client still sending would
//! otherwise meet a closed connection, a broken pipe, and never read the answer, while one that
//! waits for the answer before sending more gets it without delay.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

/// Most bytes read and thrown away after a body went over its limit; past this the connection
/// is closed (a client sending that much more than allowed gets no answer it can read).
pub const DRAIN_BOUND: u64 = 64 << 20;
/// Longest time spent draining.
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit (and drained, when it was small enough to be).
    TooLarge,
    /// The connection failed while the body was read.
    Read(String),
}

/// The declared `Content-Length`, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads `body` whole if it has at most `limit` bytes. Over it, the rest is drained in the
/// background while the `413` goes out; a client that sent `Expect: 100-continue` and declared
/// too much is answered without its body ever being asked for.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > limit as u64) {
        let expects_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !expects_continue && declared.is_some_and(|n| n <= DRAIN_BOUND) {
            tokio::spawn(drain(body.into_data_stream(), DRAIN_BOUND));
        }
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(0, |n| n as usize);
    let mut buffer = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if buffer.len() + chunk.len() > limit {
            let read = (buffer.len() + chunk.len()) as u64;
            tokio::spawn(drain(stream, DRAIN_BOUND.saturating_sub(read)));
            return Err(BodyError::TooLarge);
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// Reads and discards the rest of a body, at most `bound` bytes and [`DRAIN_TIME`].
async fn drain(mut stream: axum::body::BodyDataStream, bound: u64) {
    let discard = async {
        let mut left = bound;
        while let Some(Ok(chunk)) = stream.next().await {
            match left.checked_sub(chunk.len() as u64) {
                Some(rest) => left = rest,
                None => return,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn bodies_within_the_limit_are_read_whole_and_others_refused() {
        let ok = read_limited(&headers(&[]), Body::from("12345"), 5).await;
        assert_eq!(ok.unwrap(), "12345");
        for h in [headers(&[]), headers(&[("content-length", "6")])] {
            let over = read_limited(&h, Body::from("123456"), 5).await;
            assert!(matches!(over, Err(BodyError::TooLarge)));
        }
        let waiting = headers(&[("content-length", "6"), ("expect", "100-continue")]);
        let over = read_limited(&waiting, Body::from("123456"), 5).await;
        assert!(matches!(over, Err(BodyError::TooLarge)));
    }
}
