//! The HNSW graph (Malkov & Yashunin 2016, as hnswlib implements it) and its insertion.
//!
//! Layout: level 0 is one flat array of `1 + 2M` words per slot (count, then neighbours);
//! the upper levels of the ~1/M slots that have them are one concatenated array of
//! `level × (1 + M)` words, found through a per-slot offset. Every word is an `AtomicU32`:
//! a concurrent build writes a slot's list under that slot's lock (entries first, then the
//! count with `Release`), and readers walk without locks (`Acquire` on the count, which is
//! clamped to the capacity). A reader racing a writer may see the old or the new neighbours,
//! never an out-of-range slot — the same tolerance hnswlib's build has, without `unsafe`.
//! On x86 a relaxed atomic load is a plain load, so searching costs nothing extra.
//!
//! Levels are drawn before insertion from a seeded generator addressed by slot
//! ([`level_of`]), so a slot's level depends on the seed and the slot alone. With one thread
//! the build is deterministic for a seed (inserts in slot order); with more, insertions
//! interleave as the scheduler runs them, so the graph (not its quality) varies from run to
//! run — documented, tested at one thread, recall floors tested at two.
//!
//! A thread never holds two locks (it writes its own list, releases it, then updates each
//! neighbour's list in turn), so the build cannot deadlock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::*};

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::visited::{Cand, Scratch};
use crate::store::Store;

/// Highest level a slot may get (p = M^-16: never reached in practice).
pub(crate) const MAX_LEVEL: u8 = 16;

/// The level of `slot` for `seed`: `⌊−ln(U)·mL⌋`, `mL = 1/ln M`, with `U` the slot's word of a
/// ChaCha8 stream seeded by `seed`.
pub(crate) fn level_of(seed: u64, slot: usize, m: usize) -> u8 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_word_pos(2 * slot as u128);
    let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(f64::from(MAX_LEVEL)) as u8
}

/// The graph: links, levels, entry point, build locks.
#[derive(Debug)]
pub(crate) struct Graph {
    pub m: usize,
    pub levels: Vec<u8>,
    pub links0: Vec<AtomicU32>,
    /// Offset of each slot's upper lists in `upper` (meaningful when its level > 0).
    pub upper_at: Vec<usize>,
    pub upper: Vec<AtomicU32>,
    /// `(entry slot, its level)`; `None` while empty.
    pub entry: Mutex<Option<(u32, u8)>>,
    locks: Vec<Mutex<()>>,
}

impl Graph {
    pub fn new(m: usize) -> Self {
        Self { m, levels: Vec::new(), links0: Vec::new(), upper_at: Vec::new(), upper: Vec::new(), entry: Mutex::new(None), locks: Vec::new() }
    }

    pub fn m0(&self) -> usize {
        2 * self.m
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Capacity of a list at `level`.
    pub fn cap(&self, level: usize) -> usize {
        if level == 0 { self.m0() } else { self.m }
    }

    /// Bytes held by the graph.
    pub fn bytes(&self) -> usize {
        self.levels.len() * (1 + 8 + std::mem::size_of::<Mutex<()>>()) + (self.links0.len() + self.upper.len()) * 4
    }

    /// Room for slots with these levels (no links yet).
    pub fn grow(&mut self, levels: &[u8]) {
        for &l in levels {
            self.levels.push(l);
            self.upper_at.push(self.upper.len());
            self.upper.extend((0..usize::from(l) * (1 + self.m)).map(|_| AtomicU32::new(0)));
            self.locks.push(Mutex::new(()));
        }
        let words = self.levels.len() * (1 + self.m0());
        let extra = words - self.links0.len();
        crate::hugepages::reserve(&mut self.links0, extra);
        self.links0.resize_with(words, || AtomicU32::new(0));
    }

    /// Slot `s`'s list at `level` (count word first).
    #[inline]
    pub fn list(&self, s: u32, level: usize) -> &[AtomicU32] {
        let s = s as usize;
        if level == 0 {
            let w = 1 + self.m0();
            &self.links0[s * w..(s + 1) * w]
        } else {
            let w = 1 + self.m;
            let a = self.upper_at[s] + (level - 1) * w;
            &self.upper[a..a + w]
        }
    }

    /// Copies slot `s`'s neighbours at `level` into `out`.
    #[inline]
    pub fn neighbours(&self, s: u32, level: usize, out: &mut Vec<u32>) {
        let l = self.list(s, level);
        let n = (l[0].load(Acquire) as usize).min(l.len() - 1);
        out.clear();
        out.extend(l[1..=n].iter().map(|a| a.load(Relaxed)));
    }

    fn write(&self, s: u32, level: usize, links: &[u32]) {
        let l = self.list(s, level);
        debug_assert!(links.len() < l.len(), "write: {} links into a list of {}", links.len(), l.len() - 1);
        for (a, &v) in l[1..].iter().zip(links) {
            a.store(v, Relaxed);
        }
        l[0].store(links.len() as u32, Release);
    }

    /// Greedy descent from `(cur)` through the levels above `down_to`: at each level move to
    /// the closest neighbour until none is closer.
    pub fn descend(&self, store: &Store, sc: &mut Scratch, mut cur: Cand, from: usize, down_to: usize) -> Cand {
        for level in (down_to + 1..=from).rev() {
            loop {
                let mut changed = false;
                self.neighbours(cur.slot, level, &mut sc.links);
                for &e in &sc.links {
                    let c = Cand { key: store.key(&sc.query, e as usize), slot: e };
                    if c < cur {
                        cur = c;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        cur
    }

    /// Beam search of width `ef` at `level` from `entry`, admitting into the results only
    /// slots for which `allow` holds (all of them walk the graph). Leaves the results in
    /// `sc.results`.
    pub fn search_level(&self, store: &Store, sc: &mut Scratch, entry: Cand, ef: usize, level: usize, allow: &dyn Fn(u32) -> bool) {
        sc.visited.reset(self.len());
        sc.frontier.clear();
        sc.results.clear();
        sc.visited.insert(entry.slot);
        sc.frontier.push(std::cmp::Reverse(entry));
        if allow(entry.slot) {
            sc.results.push(entry);
        }
        while let Some(std::cmp::Reverse(c)) = sc.frontier.pop() {
            if sc.results.len() >= ef && sc.results.peek().is_some_and(|w| c.key > w.key) {
                break;
            }
            // Unvisited neighbours first, all their rows prefetched, then the keys: the
            // rows' cache misses overlap instead of being paid one after another.
            let list = self.list(c.slot, level);
            let n = (list[0].load(Acquire) as usize).min(list.len() - 1);
            sc.links.clear();
            for a in &list[1..=n] {
                let e = a.load(Relaxed);
                if sc.visited.insert(e) {
                    store.prefetch(e as usize);
                    sc.links.push(e);
                }
            }
            for i in 0..sc.links.len() {
                let e = sc.links[i];
                let cand = Cand { key: store.key(&sc.query, e as usize), slot: e };
                let full = sc.results.len() >= ef;
                if !full || sc.results.peek().is_some_and(|w| cand < *w) {
                    // Its links are read when it is expanded: start loading them now.
                    crate::kernels::prefetch(&self.list(e, level)[..self.list(e, level).len().min(32)]);
                    sc.frontier.push(std::cmp::Reverse(cand));
                    if allow(e) {
                        sc.results.push(cand);
                        if sc.results.len() > ef {
                            sc.results.pop();
                        }
                    }
                }
            }
        }
    }

    /// hnswlib's neighbour-selection heuristic: walk `sc.sorted` (ascending) and keep a
    /// candidate unless an already kept one is closer to it than the base is; at most `m`.
    fn select(&self, store: &Store, sc: &mut Scratch, m: usize) {
        sc.picked.clear();
        if sc.sorted.len() <= m {
            sc.picked.extend_from_slice(&sc.sorted);
            return;
        }
        for i in 0..sc.sorted.len() {
            if sc.picked.len() >= m {
                break;
            }
            let c = sc.sorted[i];
            let direct = store.f32_rows().is_some();
            if !direct {
                store.prepare_row(c.slot as usize, &mut sc.other);
            }
            let other = &sc.other;
            let good = sc.picked.iter().all(|p| {
                let key = store.pair_key_f32(c.slot as usize, p.slot as usize).unwrap_or_else(|| store.key(other, p.slot as usize));
                key >= c.key
            });
            if good {
                sc.picked.push(c);
            }
        }
    }

    /// Inserts slot `q` (its level already in `levels`) with beam width `efc`.
    pub fn insert(&self, store: &Store, sc: &mut Scratch, q: u32, efc: usize) {
        let level = usize::from(self.levels[q as usize]);
        let entry = {
            let mut e = self.entry.lock().unwrap_or_else(|p| p.into_inner());
            match *e {
                None => {
                    *e = Some((q, level as u8));
                    return;
                }
                Some(x) => x,
            }
        };
        store.prepare_row(q as usize, &mut sc.query);
        let (ep, top) = (entry.0, usize::from(entry.1));
        let mut cur = Cand { key: store.key(&sc.query, ep as usize), slot: ep };
        cur = self.descend(store, sc, cur, top, level);
        for lc in (0..=level.min(top)).rev() {
            self.search_level(store, sc, cur, efc, lc, &|_| true);
            sc.sorted.clear();
            sc.sorted.extend(sc.results.drain());
            sc.sorted.sort_unstable();
            sc.sorted.retain(|c| c.slot != q);
            let next = sc.sorted.first().copied().unwrap_or(cur);
            self.select(store, sc, self.m);
            sc.links.clear();
            sc.links.extend(sc.picked.iter().map(|c| c.slot));
            {
                let _g = self.locks[q as usize].lock().unwrap_or_else(|p| p.into_inner());
                self.write(q, lc, &sc.links);
            }
            let picked = std::mem::take(&mut sc.picked);
            for p in &picked {
                self.connect(store, sc, p.slot, q, p.key, lc);
            }
            sc.picked = picked;
            cur = next;
        }
        if level > top {
            let mut e = self.entry.lock().unwrap_or_else(|p| p.into_inner());
            if e.is_none_or(|(_, l)| usize::from(l) < level) {
                *e = Some((q, level as u8));
            }
        }
    }

    /// Adds `q` (at key `key` from `s`) to `s`'s list at `level`, pruning it with the
    /// heuristic when full.
    fn connect(&self, store: &Store, sc: &mut Scratch, s: u32, q: u32, key: f32, level: usize) {
        let cap = self.cap(level);
        let _g = self.locks[s as usize].lock().unwrap_or_else(|p| p.into_inner());
        self.neighbours(s, level, &mut sc.links);
        if sc.links.contains(&q) {
            return;
        }
        if sc.links.len() < cap {
            sc.links.push(q);
            self.write(s, level, &sc.links);
            return;
        }
        store.prepare_row(s as usize, &mut sc.other);
        sc.sorted.clear();
        sc.sorted.push(Cand { key, slot: q });
        for &e in &sc.links {
            sc.sorted.push(Cand { key: store.key(&sc.other, e as usize), slot: e });
        }
        sc.sorted.sort_unstable();
        // The heuristic needs `other` for each candidate in turn; the base's prepared row
        // is no longer needed once the keys above are computed.
        self.select(store, sc, cap);
        sc.links.clear();
        sc.links.extend(sc.picked.iter().map(|c| c.slot));
        self.write(s, level, &sc.links);
    }

    /// The links as plain words (for saving): level 0, then the upper lists.
    pub fn words(&self) -> (Vec<u32>, Vec<u32>) {
        (self.links0.iter().map(|a| a.load(Relaxed)).collect(), self.upper.iter().map(|a| a.load(Relaxed)).collect())
    }

    /// A graph from saved parts, already validated by the loader.
    pub fn from_parts(m: usize, levels: Vec<u8>, links0: Vec<u32>, upper: Vec<u32>, entry: Option<(u32, u8)>) -> Self {
        let mut upper_at = Vec::with_capacity(levels.len());
        let mut at = 0;
        for &l in &levels {
            upper_at.push(at);
            at += usize::from(l) * (1 + m);
        }
        let locks = levels.iter().map(|_| Mutex::new(())).collect();
        let mut atomics: Vec<AtomicU32> = Vec::new();
        crate::hugepages::reserve(&mut atomics, links0.len());
        atomics.extend(links0.into_iter().map(AtomicU32::new));
        let links0 = atomics;
        Self {
            m,
            levels,
            links0,
            upper_at,
            upper: upper.into_iter().map(AtomicU32::new).collect(),
            entry: Mutex::new(entry),
            locks,
        }
    }
}
