//! Counts the requests and bytes a [`super::Storage`] sends, so a run can report what it cost
//! (`status.lastRun.uploadRequests`, ...) and the benchmark can check that cost follows change.
//!
//! Counted as the operator issues them: one per put, get, head, copy, list call and deleted
//! key. A paged LIST that needs several round trips counts once, a batch delete once per key.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Totals since the storage was opened; take two [`StorageStats::snapshot`]s for a difference.
#[derive(Debug, Default)]
pub struct StorageStats {
    requests: AtomicU64,
    uploads: AtomicU64,
    uploaded_bytes: AtomicU64,
    downloaded_bytes: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Every request (reads, writes, lists, deletes).
    pub requests: u64,
    /// PUTs (objects written).
    pub uploads: u64,
    pub uploaded_bytes: u64,
    pub downloaded_bytes: u64,
}

impl StatsSnapshot {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.saturating_sub(earlier.requests),
            uploads: self.uploads.saturating_sub(earlier.uploads),
            uploaded_bytes: self.uploaded_bytes.saturating_sub(earlier.uploaded_bytes),
            downloaded_bytes: self
                .downloaded_bytes
                .saturating_sub(earlier.downloaded_bytes),
        }
    }
}

impl StorageStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            uploads: self.uploads.load(Ordering::Relaxed),
            uploaded_bytes: self.uploaded_bytes.load(Ordering::Relaxed),
            downloaded_bytes: self.downloaded_bytes.load(Ordering::Relaxed),
        }
    }

    fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// An [`ObjectStore`] that counts what passes through it.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    stats: Arc<StorageStats>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, stats: Arc<StorageStats>) -> CountingStore {
        CountingStore { inner, stats }
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.stats.request();
        self.stats.uploads.fetch_add(1, Ordering::Relaxed);
        self.stats
            .uploaded_bytes
            .fetch_add(payload.content_length() as u64, Ordering::Relaxed);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.stats.request();
        self.stats.uploads.fetch_add(1, Ordering::Relaxed);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.stats.request();
        let result = self.inner.get_opts(location, options).await?;
        if !result.range.is_empty() {
            self.stats
                .downloaded_bytes
                .fetch_add(result.range.end - result.range.start, Ordering::Relaxed);
        }
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let stats = Arc::clone(&self.stats);
        let counted = locations.inspect_ok(move |_| stats.request()).boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.stats.request();
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.stats.request();
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.stats.request();
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.stats.request();
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn counts_requests_uploads_and_bytes() {
        let stats = Arc::new(StorageStats::default());
        let store = CountingStore::new(Arc::new(InMemory::new()), Arc::clone(&stats));
        let before = stats.snapshot();
        store
            .put(&Path::from("a"), PutPayload::from_static(b"hello"))
            .await
            .unwrap();
        store
            .get(&Path::from("a"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let _ = store.list(None).collect::<Vec<_>>().await;
        let diff = stats.snapshot().since(&before);
        assert_eq!(
            diff,
            StatsSnapshot {
                requests: 3,
                uploads: 1,
                uploaded_bytes: 5,
                downloaded_bytes: 5,
            }
        );
    }
}
