//! Pages of a repository's tag list, cut from the cached list without copying it.
//!
//! A repository's tags are kept as one newline-terminated list in lexical (bytewise) order. A
//! page is a run of its lines: found by binary search over the bytes, validated as UTF-8 on
//! its own, and shared with the cache entry rather than copied into a `String` per tag.

use std::fmt;
use std::sync::Arc;

/// Tags of one repository in lexical order: a run of newline-terminated lines of a list that
/// may be shared with the lookup cache.
#[derive(Clone, Default)]
pub struct TagPage {
    list: Arc<[u8]>,
    /// The page's bytes are `list[start..end]`: valid UTF-8, lines each ending in `\n`.
    start: usize,
    end: usize,
    len: usize,
}

impl TagPage {
    /// A page of exactly `tags`.
    pub fn from_tags(tags: &[String]) -> Self {
        Self::of_list(list_of(tags).into(), 0, None, None)
    }

    /// The page of a list read back from a cache, from byte `offset` on; `None` when the page
    /// is not UTF-8 (the entry was damaged outside Berth: read the database instead).
    pub(crate) fn of_cached(
        list: Arc<[u8]>,
        offset: usize,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Option<Self> {
        let page = Self::of_list(list, offset, last, limit);
        std::str::from_utf8(&page.list[page.start..page.end]).ok()?;
        Some(page)
    }

    /// Lines of `list[offset..]` (built from strings by [`list_of`]) after `last`, at most
    /// `limit`; only the lines the binary search visits and the page itself are read.
    pub(crate) fn of_list(
        list: Arc<[u8]>,
        offset: usize,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Self {
        let offset = offset.min(list.len());
        let body = &list[offset..];
        let mut lo = 0;
        if let Some(last) = last.map(str::as_bytes) {
            // Invariant: `lo` and `hi` are line starts; lines before `lo` are <= last, lines
            // from `hi` on are > last.
            let mut hi = body.len();
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let start = body[lo..mid]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(lo, |p| lo + p + 1);
                let end = body[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(body.len(), |p| start + p);
                if &body[start..end] <= last {
                    lo = end + 1;
                } else {
                    hi = start;
                }
            }
            lo = lo.min(body.len());
        }
        let limit = limit.map_or(usize::MAX, |n| n as usize);
        let (mut end, mut len) = (lo, 0);
        while len < limit && end < body.len() {
            end = body[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(body.len(), |p| end + p + 1);
            len += 1;
        }
        Self {
            start: offset + lo,
            end: offset + end,
            len,
            list,
        }
    }

    /// How many tags the page holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the page holds no tag.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tags, in order.
    pub fn iter(&self) -> Lines<'_> {
        Lines { rest: self.text() }
    }

    /// The page as text: each tag followed by a newline.
    pub fn text(&self) -> &str {
        // Checked when the page was cut, or built from strings: never empty by error.
        std::str::from_utf8(&self.list[self.start..self.end]).unwrap_or_default()
    }

    /// The last tag of the page.
    pub fn last(&self) -> Option<&str> {
        self.iter().next_back()
    }

    /// Keeps the first `n` tags.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len {
            return;
        }
        // Pages are usually cut by one tag: walk from the nearer end.
        let mut lines = self.iter();
        if self.len - n <= n {
            for _ in n..self.len {
                lines.next_back();
            }
            self.end = self.start + lines.rest.len();
        } else {
            for _ in 0..n {
                lines.next();
            }
            self.end -= lines.rest.len();
        }
        self.len = n;
    }

    /// The tags as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

/// The tags of a [`TagPage`]: its lines, by a plain byte scan (tags are short; a pattern
/// search costs more to set up than it saves).
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.bytes().position(|b| b == b'\n');
        let (line, rest) = self.rest.split_at(end.unwrap_or(self.rest.len()));
        self.rest = rest.get(1..).unwrap_or_default();
        Some(line)
    }
}

impl DoubleEndedIterator for Lines<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let body = self.rest.strip_suffix('\n').unwrap_or(self.rest);
        let start = body.bytes().rposition(|b| b == b'\n').map_or(0, |p| p + 1);
        self.rest = &self.rest[..start];
        Some(&body[start..])
    }
}

impl fmt::Debug for TagPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// `tags` as one list, each followed by a newline.
pub(crate) fn list_of(tags: &[String]) -> Vec<u8> {
    let mut list = Vec::with_capacity(tags.iter().map(|t| t.len() + 1).sum());
    for t in tags {
        list.extend_from_slice(t.as_bytes());
        list.push(b'\n');
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<String> {
        let mut tags: Vec<String> = (0..500)
            .map(|i| format!("t{:0w$}", i * 3, w = i % 4 + 1))
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    #[test]
    fn pages_match_a_linear_scan() {
        let tags = tags();
        let cached: Arc<[u8]> = [b"L".as_slice(), &list_of(&tags)].concat().into();
        let probes = ["", "a", "t", "t0", "t1", "t150", "t99999", "u", "t00", "t3"];
        for last in probes
            .iter()
            .map(|p| Some(*p))
            .chain([None])
            .chain(tags.iter().map(|t| Some(t.as_str())))
        {
            for limit in [None, Some(0), Some(1), Some(7), Some(1000)] {
                let expected: Vec<String> = tags
                    .iter()
                    .filter(|t| last.is_none_or(|l| t.as_str() > l))
                    .take(limit.map_or(usize::MAX, |n| n as usize))
                    .cloned()
                    .collect();
                let page = TagPage::of_list(list_of(&tags).into(), 0, last, limit);
                assert_eq!(page.to_vec(), expected, "{last:?} {limit:?}");
                assert_eq!(page.len(), expected.len());
                assert_eq!(page.last(), expected.last().map(String::as_str));
                let from_cache = TagPage::of_cached(cached.clone(), 1, last, limit).unwrap();
                assert_eq!(from_cache.to_vec(), expected, "cached {last:?} {limit:?}");
            }
        }
        assert!(TagPage::of_list(list_of(&[]).into(), 0, Some("x"), None).is_empty());
        assert!(
            TagPage::of_cached(Arc::from(*b"L"), 1, None, None)
                .unwrap()
                .is_empty()
        );
        // An offset past the end reads as an empty list.
        let empty: Arc<[u8]> = Arc::from(*b"");
        assert!(
            TagPage::of_cached(empty, 1, Some("a"), None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn truncation_keeps_the_first_tags() {
        let tags = tags();
        let mut page = TagPage::of_list(list_of(&tags).into(), 0, Some("t1"), Some(10));
        let first: Vec<String> = page.to_vec();
        page.truncate(20);
        assert_eq!(page.to_vec(), first);
        page.truncate(4);
        assert_eq!(page.to_vec(), first[..4]);
        assert_eq!(page.len(), 4);
        assert_eq!(page.last(), Some(first[3].as_str()));
        page.truncate(0);
        assert!(page.is_empty() && page.iter().next().is_none());
    }

    #[test]
    fn a_damaged_cache_entry_is_refused_not_served() {
        let mut list = b"La\nb\n".to_vec();
        list.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let list: Arc<[u8]> = list.into();
        // The page that holds the bad line is refused; a page before it is still served.
        assert!(TagPage::of_cached(list.clone(), 1, Some("b"), None).is_none());
        let page = TagPage::of_cached(list, 1, None, Some(2)).unwrap();
        assert_eq!(page.to_vec(), ["a", "b"]);
    }
}
