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
///
/// Memory is what matters at a million items: the ids are one concatenated string with an
/// end offset per slot, and lookup by id is a binary search over the live slots sorted by id
/// (4 bytes a slot) — about 20 MB for 1M short ids, where a `Vec<String>` plus a
/// `HashMap<String, u32>` costs ~100 MB. Adding a batch merges its sorted slots in (O(n + b log b)).
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Catalog {
    text: String,
    ends: Vec<u64>,
    /// Live slots, ordered by their id's bytes.
    sorted: Vec<u32>,
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

    /// A catalog read from a file; `Err(slot)` names a live id that repeats an earlier one.
    pub fn from_loaded(ids: &[String], removed: Vec<bool>, tags: Option<Tags>) -> Result<Self, usize> {
        let mut c = Self { removed, tags, ..Self::default() };
        for id in ids {
            c.text.push_str(id);
            c.ends.push(c.text.len() as u64);
        }
        c.sorted = (0..ids.len() as u32).filter(|&s| !c.removed[s as usize]).collect();
        c.sort();
        if let Some(w) = c.sorted.windows(2).find(|w| c.id(w[0]) == c.id(w[1])) {
            return Err(w[0].max(w[1]) as usize);
        }
        Ok(c)
    }

    fn sort(&mut self) {
        let mut sorted = std::mem::take(&mut self.sorted);
        sorted.sort_unstable_by(|&a, &b| self.id(a).cmp(self.id(b)).then(a.cmp(&b)));
        self.sorted = sorted;
    }

    pub fn slots(&self) -> usize {
        self.ends.len()
    }

    pub fn live_count(&self) -> usize {
        self.sorted.len()
    }

    /// The id of `slot` (live or removed).
    pub fn id(&self, slot: u32) -> &str {
        let s = slot as usize;
        let a = if s == 0 { 0 } else { self.ends[s - 1] as usize };
        &self.text[a..self.ends[s] as usize]
    }

    /// The slot of a live id.
    pub fn find(&self, id: &str) -> Option<u32> {
        self.sorted.binary_search_by(|&s| self.id(s).cmp(id)).ok().map(|i| self.sorted[i])
    }

    /// Every id in slot order (for saving).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        (0..self.slots() as u32).map(|s| self.id(s))
    }

    /// Bytes of the ids (text), their offsets, the lookup order, removals and tags.
    pub fn bytes(&self) -> usize {
        self.text.len() + self.ends.len() * 8 + self.sorted.len() * 4 + self.removed.len() + self.tags.as_ref().map_or(0, |t| t.of_slot.len() * 4)
    }

    /// Checks a batch of ids (and tags) against the live items, without changing anything.
    pub fn check_add(&self, input: &str, ids: &[String], tags: Option<&[String]>) -> Result<()> {
        for (row, id) in ids.iter().enumerate() {
            if self.find(id).is_some() {
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
        let start = self.slots() as u32;
        for id in &ids {
            self.text.push_str(id);
            self.ends.push(self.text.len() as u64);
            self.removed.push(false);
        }
        let mut new: Vec<u32> = (start..self.slots() as u32).collect();
        new.sort_unstable_by(|&a, &b| self.id(a).cmp(self.id(b)));
        let old = std::mem::take(&mut self.sorted);
        let mut merged = Vec::with_capacity(old.len() + new.len());
        let (mut i, mut j) = (0, 0);
        while i < old.len() && j < new.len() {
            if self.id(old[i]) <= self.id(new[j]) {
                merged.push(old[i]);
                i += 1;
            } else {
                merged.push(new[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&old[i..]);
        merged.extend_from_slice(&new[j..]);
        self.sorted = merged;
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
            match self.find(id) {
                Some(s) => slots.push(s),
                None => return Err(SearchError::UnknownId { id: id.to_string() }),
            }
        }
        slots.sort_unstable();
        slots.dedup();
        for &s in &slots {
            self.removed[s as usize] = true;
        }
        let removed = &self.removed;
        self.sorted.retain(|&s| !removed[s as usize]);
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
        Ok(Allow { removed: &self.removed, any_removed: self.sorted.len() < self.ends.len(), tag_ok })
    }

    /// How many slots `allow` admits.
    pub fn count(&self, allow: &Allow) -> usize {
        if allow.all() { self.slots() } else { (0..self.slots() as u32).filter(|&s| allow.ok(s)).count() }
    }
}
