//! Cache records that cross machines (`--cache-from` / `--cache-to`).
//!
//! The solver does not know registries: the CLI imports records from
//! wherever they come from into an [`ImportedCache`] (given to the build in
//! [`crate::BuildOptions::cache_from`]), and a finished build hands back a
//! [`CacheExport`] of every record it used or made, for the CLI to write
//! out. An imported record is consulted after the local index; when the
//! build needs its result, the worker makes its layers local
//! ([`crate::Worker::fetch_cached_layers`]) and the record joins the local
//! index. The keys are the same as the local index's: they never depend on
//! the machine (see docs/cache-keys.md).

use std::collections::HashMap;

use crate::cachekey::CacheKey;
use crate::index::{ImageTimeRecord, StateRecord};

/// Cache records imported from elsewhere, by key.
#[derive(Debug, Clone, Default)]
pub struct ImportedCache {
    states: HashMap<CacheKey, StateRecord>,
    images: HashMap<CacheKey, ImageTimeRecord>,
}

impl ImportedCache {
    /// Adds a step's record (the first one imported for a key wins).
    pub fn insert_state(&mut self, key: CacheKey, record: StateRecord) {
        self.states.entry(key).or_insert(record);
    }

    /// Adds an image's creation-time record.
    pub fn insert_image(&mut self, key: CacheKey, record: ImageTimeRecord) {
        self.images.entry(key).or_insert(record);
    }

    /// The imported record of a step.
    pub fn state(&self, key: &CacheKey) -> Option<&StateRecord> {
        self.states.get(key)
    }

    /// The imported creation time of an image.
    pub fn image(&self, key: &CacheKey) -> Option<&ImageTimeRecord> {
        self.images.get(key)
    }

    /// Number of step records.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty() && self.images.is_empty()
    }
}

/// One step record a build used or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedState {
    pub key: CacheKey,
    pub record: StateRecord,
    /// Whether the record's layers are all layers of the built image (what
    /// `mode=min` exports); the others belong to stages the image only
    /// reads from (`mode=max` adds them).
    pub in_image: bool,
}

/// The cache records of a finished build, for `--cache-to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheExport {
    /// Step records, in graph order.
    pub states: Vec<ExportedState>,
    /// The image's creation-time record, so an importer writes the very
    /// same image.
    pub image: Option<(CacheKey, ImageTimeRecord)>,
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
