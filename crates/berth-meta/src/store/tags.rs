//! Tags: deleting one, and listing a repository's tags a page at a time from a cached whole
//! list.

use crate::MetaError;
use crate::cache::{Lookup, Ticket};
use crate::store::MetadataStore;
use crate::tags::{self, TagPage};

/// The lookup-cache field of a repository's tag list.
const TAG_LIST: &str = "tags";
/// Longest tag list cached whole, in tags and in bytes; a longer one is paged from the database.
const CACHED_TAGS: usize = 20_000;
const CACHED_TAG_BYTES: usize = 200 << 10;

impl MetadataStore {
    /// Deletes a tag (not the manifest). Returns whether it existed.
    pub async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool, MetaError> {
        let n = self
            .execute_recorded(
                sqlx::query(
                    "DELETE FROM tags WHERE name = ? AND repository_id = \
             (SELECT id FROM repositories WHERE name = ?)",
                )
                .bind(tag)
                .bind(repository),
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        self.lookups.invalidate(repository).await;
        Ok(true)
    }

    /// Tags of `repository` after `last` in lexical order, at most `limit` (all when `None`).
    /// `None` when the repository does not exist.
    pub async fn list_tags(
        &self,
        repository: &str,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Option<TagPage>, MetaError> {
        // The whole list is cached (when it is not too long) and pages are cut from it: a
        // page from the database costs a round trip per row through sqlx's SQLite worker.
        let cached = |lookup| match lookup {
            Lookup::Hit(v) if v.first() == Some(&b'L') => {
                TagPage::of_cached(v, 1, last, limit).ok_or(Ticket::None)
            }
            Lookup::Hit(_) => Err(Ticket::None),
            Lookup::Miss(ticket) => Err(ticket),
        };
        let mut ticket = match cached(self.lookups.read(repository, TAG_LIST).await) {
            Ok(page) => return Ok(Some(page)),
            Err(ticket) => ticket,
        };
        // One whole-list read per repository at a time: requests that missed together wait for
        // the first to fill the cache, then page from what it stored.
        let _gate = match ticket {
            Ticket::None => None,
            _ => {
                let gate = self.lookups.gate(repository, TAG_LIST).await;
                ticket = match cached(self.lookups.read(repository, TAG_LIST).await) {
                    Ok(page) => return Ok(Some(page)),
                    Err(ticket) => ticket,
                };
                Some(gate)
            }
        };
        let repo_id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(repository)
            .fetch_optional(&self.pool)
            .await?;
        let Some(repo_id) = repo_id else {
            return Ok(None);
        };
        let query = |after: &str, n: i64| {
            sqlx::query_scalar(
                "SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?",
            )
            .bind(repo_id)
            .bind(after.to_owned())
            .bind(n)
        };
        if !matches!(ticket, Ticket::None) {
            // Read the whole list (up to a bound) to cache it.
            let all: Vec<String> = query("", CACHED_TAGS as i64 + 1)
                .fetch_all(&self.pool)
                .await?;
            let value = [b"L", tags::list_of(&all).as_slice()].concat();
            if all.len() <= CACHED_TAGS && value.len() <= CACHED_TAG_BYTES {
                self.lookups
                    .fill(repository, ticket, TAG_LIST, &value)
                    .await;
                return Ok(Some(TagPage::of_list(value.into(), 1, last, limit)));
            }
            // Too long to cache whole: remember that, and page from the database.
            self.lookups.fill(repository, ticket, TAG_LIST, b"X").await;
        }
        let tags: Vec<String> = query(last.unwrap_or(""), limit.map_or(i64::MAX, i64::from))
            .fetch_all(&self.pool)
            .await?;
        Ok(Some(TagPage::from_tags(&tags)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::PoolSettings;

    #[tokio::test]
    async fn tag_lists_missed_together_are_read_from_the_database_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/meta.db", dir.path().display());
        let store = MetadataStore::connect(&url, &PoolSettings::default())
            .await
            .unwrap()
            .cache_in_process(Duration::from_secs(60));
        store.migrate().await.unwrap();
        // A fill is under way: a request that missed waits for it...
        let gate = store.lookups.gate("r", TAG_LIST).await;
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.list_tags("r", None, None).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        // ...and then pages from what the fill stored. Had it gone to the database, it would
        // have found no repository "r".
        let Lookup::Miss(ticket) = store.lookups.read("r", TAG_LIST).await else {
            panic!("nothing was cached yet")
        };
        store.lookups.fill("r", ticket, TAG_LIST, b"La\nb\n").await;
        drop(gate);
        let page = waiting
            .await
            .unwrap()
            .unwrap()
            .expect("served from the cache");
        assert_eq!(page.to_vec(), ["a", "b"]);
        assert!(
            store
                .list_tags("missing", None, None)
                .await
                .unwrap()
                .is_none()
        );
    }
}
