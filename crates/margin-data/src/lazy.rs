//! Lazy image loading: a file index ([`LazyImages`]: paths or zip members, labels, the
//! class table — a few hundred bytes an image) that decodes a sample only when asked, in
//! the same order and to the same values as the eager loaders of [`crate::image_folder`]
//! (folder, zip, manifest; tested), and a prefetcher
//! ([`Prefetch`]) whose worker threads decode the next batches of a plan while the
//! current step runs.
//!
//! **Memory** does not grow with the number of images beyond the index: decoded samples
//! live in the batches in flight — each worker's bounded channel holds at most `depth`
//! finished batches, so at most `workers × (depth + 1)` batches exist at once — and in a
//! cache bounded in bytes ([`LazyImages::with_cache`], first-in first-out eviction).
//!
//! **Determinism.** Batch `k` of the plan is decoded by worker `k mod workers` and
//! received from that worker's channel in plan order, so the batches (their samples,
//! values and order) are the same whatever the thread timing or the number of workers;
//! the cache only saves work (a hit and a miss give the same values; tested).
//!
//! **Bad files.** A decoding error names the file ([`crate::decode`]). With `skip_bad`
//! (off by default: a bad file stops the run), a sample that fails is left out of its
//! batch and reported in [`Batch::skipped`] with its error; which samples are skipped
//! depends on the files only, so the batches stay deterministic.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use crate::archive::{Archive, Which};
use crate::image_folder::{Listing, Prep, Skipped, Source};
use crate::{DataError, Samples};

/// A folder's, zip's or manifest's images, decoded on demand.
pub struct LazyImages {
    name: String,
    items: Vec<Item>,
    labels: Vec<i64>,
    classes: Vec<String>,
    prep: Prep,
    shape: Vec<usize>,
    /// The open archive of a zip source, shared by the workers: a member's bytes are read
    /// under the lock, decoded outside it.
    zip: Option<Arc<Mutex<Archive>>>,
    cache_budget: usize,
    cache: Option<Mutex<Cache>>,
}

/// One image of the index: where its bytes are, and its path below the root (a
/// manifest's: the resolved path) for messages and `skip_bad` reports.
struct Item {
    src: Source,
    rel: Box<str>,
}

/// Decoded samples by index, at most `budget` bytes, first in first out.
struct Cache {
    budget: usize,
    used: usize,
    order: VecDeque<usize>,
    values: HashMap<usize, Vec<f32>>,
}

impl LazyImages {
    /// Indexes `root/<class>/…` or a zip of that tree (the layout rule of
    /// [`crate::image_folder`]: the same samples in the same order as
    /// [`crate::image_folder::load_images`], tested); nothing is decoded.
    pub fn open(root: &Path, prep: Prep) -> Result<Self, DataError> {
        prep.check()?;
        if root.is_file() {
            let zip = Archive::open(root)?;
            let list = crate::image_folder::list_zip(&zip)?;
            Self::from_listing(root.display().to_string(), list, Some(Arc::new(Mutex::new(zip))), prep)
        } else {
            Self::from_listing(root.display().to_string(), crate::image_folder::list_folder(root)?, None, prep)
        }
    }

    /// [`LazyImages::open`] of a folder (kept for callers that name the layout).
    pub fn folder(root: &Path, prep: Prep) -> Result<Self, DataError> {
        Self::open(root, prep)
    }

    /// Indexes the rows of a manifest ([`crate::manifest`]) on the side `split`, in the
    /// order [`crate::image_folder::load_manifest`] decodes them (class, then path).
    pub fn manifest(path: &Path, split: crate::manifest::RowSplit, prep: Prep) -> Result<Self, DataError> {
        prep.check()?;
        let entries = crate::manifest::read_manifest(path)?.into_iter().filter(|e| e.split == split).map(|e| (e.path, e.label)).collect();
        let name = match split {
            crate::manifest::RowSplit::Train => path.display().to_string(),
            crate::manifest::RowSplit::Test => format!("{} [test rows]", path.display()),
        };
        Self::from_entries(name, entries, prep)
    }

    /// Indexes `(file, class name)` pairs; the class table is the sorted distinct names,
    /// the samples ordered by class, then path.
    pub fn from_entries(name: String, entries: Vec<(PathBuf, String)>, prep: Prep) -> Result<Self, DataError> {
        let mut list = Listing::new();
        for (p, class) in entries {
            list.entry(class).or_default().push((p.display().to_string(), Source::File(p)));
        }
        Self::from_listing(name, list, None, prep)
    }

    fn from_listing(name: String, list: Listing, zip: Option<Arc<Mutex<Archive>>>, prep: Prep) -> Result<Self, DataError> {
        if list.is_empty() {
            return Err(DataError::Format { path: name, reason: "no <class>/<image> files found (extensions: png, jpg, jpeg, webp, bmp, tif(f), pgm, ppm, pbm, pnm)".into() });
        }
        let classes: Vec<String> = list.keys().cloned().collect();
        let (mut items, mut labels) = (Vec::new(), Vec::new());
        for (c, (_, mut images)) in list.into_iter().enumerate() {
            images.sort_by(|a, b| a.0.cmp(&b.0));
            for (rel, src) in images {
                items.push(Item { src, rel: rel.into_boxed_str() });
                labels.push(c as i64);
            }
        }
        let shape = prep.sample_shape();
        Ok(LazyImages { name, items, labels, classes, prep, shape, zip, cache_budget: 0, cache: None })
    }

    /// Keeps up to `bytes` of decoded samples for reuse (0: no cache).
    pub fn with_cache(mut self, bytes: usize) -> Self {
        self.cache_budget = bytes;
        self.cache = (bytes > 0).then(|| Mutex::new(Cache { budget: bytes, used: 0, order: VecDeque::new(), values: HashMap::new() }));
        self
    }

    /// The class-name table the labels index.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Every sample's label (an index into [`LazyImages::classes`]).
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// The samples whose class is in `classes` (same class table, same order; the cache
    /// setting kept, its content not), under the name `name`.
    pub fn with_classes(&self, classes: &[i64], name: impl Into<String>) -> LazyImages {
        let set: std::collections::BTreeSet<i64> = classes.iter().copied().collect();
        let keep: Vec<usize> = (0..self.items.len()).filter(|&i| set.contains(&self.labels[i])).collect();
        let items = keep.iter().map(|&i| Item { src: self.items[i].src.clone(), rel: self.items[i].rel.clone() }).collect();
        let labels = keep.iter().map(|&i| self.labels[i]).collect();
        let (classes, prep, shape, zip) = (self.classes.clone(), self.prep, self.shape.clone(), self.zip.clone());
        LazyImages { name: name.into(), items, labels, classes, prep, shape, zip, cache_budget: 0, cache: None }.with_cache(self.cache_budget)
    }

    /// Reads every file once and checks its header ([`crate::decode::check_header`]):
    /// the first bad file is an error naming it, or, with `skip_bad`, the bad files leave
    /// the index and are returned with their errors (a class left without a file stays in
    /// the class table, as with eager loading). Pixels are decoded later, per batch.
    pub fn check_headers(mut self, skip_bad: bool) -> Result<(Self, Vec<Skipped>), DataError> {
        let mut keep = vec![true; self.items.len()];
        let mut skipped = Vec::new();
        for (i, k) in keep.iter_mut().enumerate() {
            let checked = self.read(i).and_then(|(what, bytes)| crate::decode::check_header(&bytes, &what));
            match checked {
                Ok(()) => {}
                Err(e) if skip_bad => {
                    skipped.push((self.items[i].rel.to_string(), e.to_string()));
                    *k = false;
                }
                Err(e) => return Err(e),
            }
        }
        if !skipped.is_empty() {
            let mut it = keep.iter();
            self.items.retain(|_| *it.next().expect("one flag per item"));
            let mut it = keep.iter();
            self.labels.retain(|_| *it.next().expect("one flag per label"));
        }
        if self.items.is_empty() {
            return Err(DataError::Format { path: self.name.clone(), reason: format!("every one of its {} images was bad (skip_bad left none)", keep.len()) });
        }
        Ok((self, skipped))
    }

    /// The path of sample `i` below its root (a manifest's: the file), as `skip_bad`
    /// reports name it.
    pub fn rel_path(&self, i: usize) -> &str {
        &self.items[i].rel
    }

    /// Decodes every sample into an in-memory [`crate::Dataset`], in index order.
    pub fn to_dataset(&self) -> Result<crate::Dataset, DataError> {
        self.to_dataset_skipping(false).map(|(d, _)| d)
    }

    /// [`LazyImages::to_dataset`]; with `skip_bad`, a sample that fails is left out and
    /// returned with its error (as [`crate::image_folder::load_images_skipping`] does).
    pub fn to_dataset_skipping(&self, skip_bad: bool) -> Result<(crate::Dataset, Vec<Skipped>), DataError> {
        crate::image_folder::check_decoded_fits(&self.name, self.len(), &self.shape)?;
        let d = self.dim();
        let mut features = vec![0f32; self.len() * d];
        let (mut labels, mut skipped, mut at) = (Vec::with_capacity(self.len()), Vec::new(), 0);
        for i in 0..self.len() {
            match self.decode_into(i, &mut features[at * d..(at + 1) * d]) {
                Ok(()) => {
                    labels.push(self.labels[i]);
                    at += 1;
                }
                Err(e) if skip_bad => skipped.push((self.items[i].rel.to_string(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        if at == 0 {
            return Err(DataError::Format { path: self.name.clone(), reason: format!("every one of its {} images was bad (skip_bad left none)", self.len()) });
        }
        features.truncate(at * d);
        Ok((crate::Dataset::with_names(self.name.clone(), features, self.shape.clone(), labels, self.classes.clone())?, skipped))
    }

    /// The bytes of sample `i` and the name that errors give it.
    fn read(&self, i: usize) -> Result<(String, Vec<u8>), DataError> {
        match (&self.items[i].src, &self.zip) {
            (Source::File(p), _) => std::fs::read(p).map(|b| (p.display().to_string(), b)).map_err(|e| DataError::io(p, e)),
            (Source::Member(k), Some(z)) => {
                let mut z = z.lock().map_err(|_| DataError::Split(format!("{}: the archive's lock was poisoned", self.name)))?;
                let (n, b) = z.read(Which::Index(*k))?;
                Ok((format!("{}:{n}", z.what()), b))
            }
            (Source::Member(_), None) => Err(DataError::Split(format!("{}: sample {i} is a zip member but no archive is open", self.name))),
        }
    }

    fn cached(&self, i: usize, out: &mut [f32]) -> Result<bool, DataError> {
        let Some(c) = &self.cache else { return Ok(false) };
        let c = c.lock().map_err(|_| DataError::Split("the decode cache was poisoned".into()))?;
        Ok(c.values.get(&i).map(|v| out.copy_from_slice(v)).is_some())
    }

    fn remember(&self, i: usize, v: &[f32]) {
        let Some(c) = &self.cache else { return };
        let Ok(mut c) = c.lock() else { return };
        let size = v.len() * 4;
        if size > c.budget || c.values.contains_key(&i) {
            return;
        }
        while c.used + size > c.budget {
            let Some(old) = c.order.pop_front() else { break };
            if let Some(v) = c.values.remove(&old) {
                c.used -= v.len() * 4;
            }
        }
        c.values.insert(i, v.to_vec());
        c.used += size;
        c.order.push_back(i);
    }
}

impl Samples for LazyImages {
    fn name(&self) -> &str {
        &self.name
    }
    fn cache_bytes(&self) -> usize {
        self.cache_budget
    }
    fn len(&self) -> usize {
        self.items.len()
    }
    fn sample_shape(&self) -> &[usize] {
        &self.shape
    }
    fn label(&self, i: usize) -> i64 {
        self.labels[i]
    }
    fn class_name(&self, label: i64) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(usize::try_from(label).ok().and_then(|k| self.classes.get(k)).map_or("?", String::as_str))
    }
    fn sample_id(&self, i: usize) -> std::borrow::Cow<'_, str> {
        match &self.items[i].src {
            Source::File(p) => p.to_string_lossy(),
            Source::Member(_) => format!("{}:{}", self.name, self.items[i].rel).into(),
        }
    }
    fn decode_into(&self, i: usize, out: &mut [f32]) -> Result<(), DataError> {
        if i >= self.items.len() {
            return Err(DataError::Split(format!("{}: sample {i} of {}", self.name, self.items.len())));
        }
        if self.cached(i, out)? {
            return Ok(());
        }
        let (what, bytes) = self.read(i)?;
        self.prep.prepare(&bytes, &what, out)?;
        self.remember(i, out);
        Ok(())
    }
}

/// One prepared batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Its position in the plan.
    pub index: usize,
    /// The samples it holds (the plan's, less the skipped ones).
    pub samples: Vec<usize>,
    /// Their labels.
    pub labels: Vec<i64>,
    /// `samples.len() × dim` values.
    pub values: Vec<f32>,
    /// Samples left out under `skip_bad`, with the error that names the file.
    pub skipped: Vec<(usize, String)>,
}

fn decode_batch<S: Samples + ?Sized>(src: &S, index: usize, plan: &[usize], skip_bad: bool) -> Result<Batch, DataError> {
    let d = src.dim();
    let mut b = Batch { index, samples: Vec::with_capacity(plan.len()), labels: Vec::with_capacity(plan.len()), values: vec![0f32; plan.len() * d], skipped: Vec::new() };
    for &i in plan {
        let at = b.samples.len();
        match src.decode_into(i, &mut b.values[at * d..(at + 1) * d]) {
            Ok(()) => {
                b.samples.push(i);
                b.labels.push(src.label(i));
            }
            Err(e) if skip_bad => b.skipped.push((i, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    b.values.truncate(b.samples.len() * d);
    Ok(b)
}

/// Batches of a plan, decoded ahead by worker threads (module docs); an iterator in plan
/// order. Dropping it stops the workers.
pub struct Prefetch {
    channels: Vec<Receiver<Result<Batch, DataError>>>,
    next: usize,
    total: usize,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Prefetch {
    /// Starts `workers` threads (≥ 1) decoding `plan`'s batches of `src`, each at most
    /// `depth` (≥ 1) finished batches ahead.
    pub fn start<S: Samples + Send + ?Sized + 'static>(src: Arc<S>, plan: Vec<Vec<usize>>, workers: usize, depth: usize, skip_bad: bool) -> Self {
        let workers_n = workers.max(1);
        let plan = Arc::new(plan);
        let mut channels = Vec::with_capacity(workers_n);
        let mut handles = Vec::with_capacity(workers_n);
        for w in 0..workers_n {
            let (tx, rx) = sync_channel(depth.max(1));
            let (src, plan) = (Arc::clone(&src), Arc::clone(&plan));
            handles.push(std::thread::spawn(move || {
                for k in (w..plan.len()).step_by(workers_n) {
                    let r = decode_batch(&*src, k, &plan[k], skip_bad);
                    let stop = r.is_err();
                    if tx.send(r).is_err() || stop {
                        return;
                    }
                }
            }));
            channels.push(rx);
        }
        Prefetch { channels, next: 0, total: plan.len(), workers: handles }
    }
}

impl Iterator for Prefetch {
    type Item = Result<Batch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let k = self.next;
        self.next += 1;
        let r = self.channels[k % self.channels.len()].recv().unwrap_or_else(|_| Err(DataError::Split(format!("the loader's worker for batch {k} stopped"))));
        if r.is_err() {
            self.next = self.total;
        }
        Some(r)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Closing the channels makes every worker's next send fail: they stop.
        self.channels.clear();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn photos(name: &str, n_per: usize, bad: bool) -> PathBuf {
        let d = std::env::temp_dir().join(format!("margin-lazy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for c in 0..3u8 {
            std::fs::create_dir_all(d.join(format!("c{c}"))).unwrap();
            for k in 0..n_per as u8 {
                let img = image::RgbImage::from_fn(12, 10, |x, y| image::Rgb([x as u8 * 20, y as u8 * 25, c * 80 + k]));
                img.save(d.join(format!("c{c}/{k}.png"))).unwrap();
            }
        }
        if bad {
            std::fs::write(d.join("c1/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
        }
        d
    }

    fn plan(n: usize) -> Vec<Vec<usize>> {
        // A fixed shuffled plan of batches of 4.
        let mut idx: Vec<usize> = (0..n).map(|i| (i * 7) % n).collect();
        idx.dedup();
        idx.chunks(4).map(<[usize]>::to_vec).collect()
    }

    #[test]
    fn batches_are_the_same_for_any_worker_count_and_equal_eager_decoding() {
        let d = photos("det", 5, false);
        let prep = Prep::Grey { size: 8, invert: false };
        let eager = crate::image_folder::load_images(&d, &prep).unwrap();
        let lazy = Arc::new(LazyImages::folder(&d, prep).unwrap().with_cache(3 * 64 * 4));
        assert_eq!(lazy.to_dataset().unwrap(), eager);
        let p = plan(lazy.len());
        let run = |w: usize| Prefetch::start(Arc::clone(&lazy), p.clone(), w, 2, false).collect::<Result<Vec<_>, _>>().unwrap();
        let one = run(1);
        assert_eq!(one, run(3));
        assert_eq!(one, run(2), "with a warm cache too");
        for b in &one {
            for (r, &i) in b.samples.iter().enumerate() {
                assert_eq!(&b.values[r * 64..(r + 1) * 64], eager.sample(i));
                assert_eq!(b.labels[r], eager.labels[i]);
            }
        }
    }

    #[test]
    fn bad_files_stop_the_run_or_are_skipped_and_reported() {
        let d = photos("bad", 2, true);
        let lazy = Arc::new(LazyImages::folder(&d, Prep::Grey { size: 8, invert: false }).unwrap());
        let p = vec![(0..lazy.len()).collect::<Vec<_>>()];
        let e = Prefetch::start(Arc::clone(&lazy), p.clone(), 2, 1, false).next().unwrap().unwrap_err().to_string();
        assert!(e.contains("broken.png"), "{e}");
        let b = Prefetch::start(Arc::clone(&lazy), p, 2, 1, true).next().unwrap().unwrap();
        assert_eq!((b.samples.len(), b.skipped.len()), (lazy.len() - 1, 1));
        assert!(b.skipped[0].1.contains("broken.png"));
        // The header check at load time finds it before any batch.
        let prep = Prep::Grey { size: 8, invert: false };
        let e = LazyImages::folder(&d, prep).unwrap().check_headers(false).err().expect("a bad header").to_string();
        assert!(e.contains("broken.png"), "{e}");
        let (ok, bad) = LazyImages::folder(&d, prep).unwrap().check_headers(true).unwrap();
        assert_eq!((ok.len(), bad.len(), ok.classes().len()), (lazy.len() - 1, 1, 3));
        assert!(bad[0].0.ends_with("broken.png") && bad[0].1.contains("broken.png"), "{bad:?}");
    }

    /// A zip of the folder and a manifest listing it index the same samples, in the order
    /// and with the values of the eager loaders; a class subset keeps the class table.
    #[test]
    fn zips_manifests_and_class_subsets_match_the_eager_loaders() {
        use std::io::Write;
        let d = photos("zip", 3, false);
        let prep = Prep::Grey { size: 8, invert: false };
        let zpath = d.with_extension("zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
        let mut manifest = String::from("path,label\n");
        for c in ["c2", "c0", "c1"] {
            for k in [2, 0, 1] {
                w.start_file(format!("{c}/{k}.png"), zip::write::SimpleFileOptions::default()).unwrap();
                w.write_all(&std::fs::read(d.join(format!("{c}/{k}.png"))).unwrap()).unwrap();
                manifest.push_str(&format!("{c}/{k}.png,person-{c}\n"));
            }
        }
        w.finish().unwrap();
        let eager = crate::image_folder::load_images(&zpath, &prep).unwrap();
        let lazy = LazyImages::open(&zpath, prep).unwrap();
        assert_eq!(lazy.to_dataset().unwrap(), eager);
        assert!(lazy.sample_id(0).ends_with(".zip:c0/0.png"), "{}", lazy.sample_id(0));
        std::fs::write(d.join("m.csv"), manifest).unwrap();
        let (eager, _) = crate::image_folder::load_manifest(&d.join("m.csv"), &prep).unwrap();
        let lazy = LazyImages::manifest(&d.join("m.csv"), crate::manifest::RowSplit::Train, prep).unwrap();
        assert_eq!(lazy.to_dataset().unwrap(), eager);
        let sub = lazy.with_classes(&[0, 2], "sub");
        assert_eq!(sub.to_dataset().unwrap(), eager.with_classes(&[0, 2], "sub"));
    }

    /// The workers run at most `depth` batches ahead of the consumer (per worker).
    #[test]
    fn prefetching_is_bounded() {
        struct Counting(AtomicUsize);
        impl Samples for Counting {
            fn name(&self) -> &str {
                "counting"
            }
            fn len(&self) -> usize {
                1000
            }
            fn sample_shape(&self) -> &[usize] {
                &[1]
            }
            fn label(&self, _: usize) -> i64 {
                0
            }
            fn class_name(&self, _: i64) -> std::borrow::Cow<'_, str> {
                "c".into()
            }
            fn sample_id(&self, i: usize) -> std::borrow::Cow<'_, str> {
                i.to_string().into()
            }
            fn decode_into(&self, i: usize, out: &mut [f32]) -> Result<(), DataError> {
                self.0.fetch_add(1, Ordering::SeqCst);
                out[0] = i as f32;
                Ok(())
            }
        }
        let src = Arc::new(Counting(AtomicUsize::new(0)));
        let plan: Vec<Vec<usize>> = (0..100).map(|k| vec![k]).collect();
        let mut it = Prefetch::start(Arc::clone(&src), plan, 2, 3, false);
        let first = it.next().unwrap().unwrap();
        assert_eq!(first.values, vec![0.0]);
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Consumed 1; each of 2 workers holds ≤ 3 queued + 1 being sent.
        let decoded = src.0.load(Ordering::SeqCst);
        assert!(decoded <= 1 + 2 * (3 + 1), "decoded {decoded} batches ahead of the consumer");
        assert_eq!(it.map(|b| b.unwrap().values[0] as usize).collect::<Vec<_>>(), (1..100).collect::<Vec<_>>());
    }
}
