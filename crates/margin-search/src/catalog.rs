//! What an index knows about its items besides their vectors: the id of every slot, which
//! slots are removed, and each slot's tag. Slots are never reused or renumbered — a removed
//! item is a tombstone the graph walks through but never returns (as hnswlib's
//! `mark_deleted`), so search results, saved files and reloaded indexes agree on every slot
//! number. An id may be added again after its removal (it gets a new slot).

use std::collections::HashMap;

use crate::error::{Result, SearchError};

/// Per-slot tags: a table of names and each slot's index into it.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Tags {
    pub names: Vec<String>,
    pub lookup: HashMap<String, u32>,
    pub of_slot: Vec<u32>,
}

impl Tags {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.lookup.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.lookup.insert(name.to_string(), i);
        i
    }
}

/// Ids, removals and tags of every slot.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Catalog {
    pub ids: Vec<String>,
    pub live: HashMap<String, u32>,
    pub removed: Vec<bool>,
    pub tags: Option<Tags>,
}

/// Which slots a search may return: live, and (with a filter) carrying one of the tags.
pub(crate) struct Allow<'a> {
    removed: &'a [bool],
    any_removed: bool,
    tag_ok: Option<(Vec<bool>, &'a [u32])>,
}

impl Allow<'_> {
    /// `true` when every slot is allowed (no removal, no filter).
    pub fn all(&self) -> bool {
        !self.any_removed && self.tag_ok.is_none()
    }

    #[inline]
    pub fn ok(&self, slot: u32) -> bool {
        let s = slot as usize;
        !self.removed[s] && self.tag_ok.as_ref().is_none_or(|(ok, of)| ok[of[s] as usize])
    }
}

impl Catalog {
    pub fn new(tagged: bool) -> Self {
        Self { tags: tagged.then(Tags::default), ..Self::default() }
    }

    pub fn slots(&self) -> usize {
        self.ids.len()
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Checks a batch of ids (and tags) against the live items, without changing anything.
    pub fn check_add(&self, input: &str, ids: &[String], tags: Option<&[String]>) -> Result<()> {
        for (row, id) in ids.iter().enumerate() {
            if self.live.contains_key(id) {
                return Err(SearchError::DuplicateId { input: input.into(), id: id.clone(), row });
            }
        }
        match (&self.tags, tags) {
            (None, Some(_)) => Err(SearchError::Tags { input: input.into(), reason: "tags given, but the index was built without tags".into() }),
            (Some(_), None) => Err(SearchError::Tags { input: input.into(), reason: "no tags given, but every item of this index has a tag".into() }),
            (Some(_), Some(t)) if t.len() != ids.len() => Err(SearchError::Tags { input: input.into(), reason: format!("{} tags for {} rows", t.len(), ids.len()) }),
            (Some(_), Some(t)) => match t.iter().position(|s| s.is_empty() || s.contains(['\n', '\r'])) {
                Some(row) => Err(SearchError::Tags { input: input.into(), reason: format!("row {row}: a tag must be non-empty and on one line") }),
                None => Ok(()),
            },
            (None, None) => Ok(()),
        }
    }

    /// Appends the batch checked by [`Catalog::check_add`].
    pub fn commit_add(&mut self, ids: Vec<String>, tags: Option<&[String]>) {
        let start = self.ids.len();
        for (i, id) in ids.into_iter().enumerate() {
            self.live.insert(id.clone(), (start + i) as u32);
            self.ids.push(id);
            self.removed.push(false);
        }
        if let (Some(t), Some(given)) = (&mut self.tags, tags) {
            for name in given {
                let i = t.intern(name);
                t.of_slot.push(i);
            }
        }
    }

    /// Removes the items with these ids: all or none (an unknown id changes nothing).
    pub fn remove(&mut self, ids: &[&str]) -> Result<Vec<u32>> {
        let mut slots = Vec::with_capacity(ids.len());
        for id in ids {
            match self.live.get(*id) {
                Some(&s) => slots.push(s),
                None => return Err(SearchError::UnknownId { id: id.to_string() }),
            }
        }
        for (id, &s) in ids.iter().zip(&slots) {
            self.live.remove(*id);
            self.removed[s as usize] = true;
        }
        slots.sort_unstable();
        slots.dedup();
        Ok(slots)
    }

    /// The slots a search may return under `filter` (tag names; any of them matches).
    pub fn allow(&self, input: &str, filter: Option<&[String]>) -> Result<Allow<'_>> {
        let tag_ok = match (filter, &self.tags) {
            (None, _) => None,
            (Some(_), None) => return Err(SearchError::Tags { input: input.into(), reason: "a tag filter was given, but the index has no tags".into() }),
            (Some(f), Some(t)) => {
                let mut ok = vec![false; t.names.len()];
                for name in f {
                    if let Some(&i) = t.lookup.get(name) {
                        ok[i as usize] = true;
                    }
                }
                Some((ok, &t.of_slot[..]))
            }
        };
        Ok(Allow { removed: &self.removed, any_removed: self.live.len() < self.ids.len(), tag_ok })
    }

    /// How many slots `allow` admits.
    pub fn count(&self, allow: &Allow) -> usize {
        if allow.all() { self.ids.len() } else { (0..self.ids.len() as u32).filter(|&s| allow.ok(s)).count() }
    }
}
