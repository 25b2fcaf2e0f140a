//! Labelled image collections: a folder of class folders, or a zip of the same tree.
//!
//! **One layout rule, for folders and zips alike.** An image's class is the path of the
//! folder holding it, relative to the root: `root/cat/x.png` is class `cat`,
//! `root/Latin/character01/x.png` is class `Latin/character01` (so Omniglot's
//! alphabet/character tree keeps `character01` of two alphabets apart), and an image in
//! `root/cat/session2/` is class `cat/session2` — nothing beneath the root is dropped. A
//! zip is read as the folder it was made from: `NAME.zip` whose entries all lie under
//! `NAME/` (what `zip -r NAME.zip NAME` makes) has `NAME/` as its root, any other zip its
//! top level. Images directly in the root have no class and are refused, naming the file.
//! Skipped, by rule, not by accident: files whose extension is not an image format
//! [`crate::decode`] reads ([`IMAGE_EXTENSIONS`]), and any path with a component starting
//! with `.` or named `__MACOSX` (hidden files, macOS resource forks). A folder walk does not
//! follow symbolic links to folders (no cycles) and stops at [`MAX_DEPTH`] levels.
//!
//! Classes are their folder paths (the dataset's class table, in sorted order), images
//! within a class sorted by path, so a folder and its zip give the same [`Dataset`] (tested).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::archive::{Archive, Which};
use crate::images::{area_resize, decode_grey};
use crate::limits::check_target_size;
use crate::preprocess::ImagePreprocess;
use crate::{DataError, Dataset};

/// The deepest folder nesting a walk follows below the root.
pub const MAX_DEPTH: usize = 64;

/// Where one image's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    File(std::path::PathBuf),
    Member(usize),
}

/// The images found, by class name, each with its relative path and source.
pub(crate) type Listing = BTreeMap<String, Vec<(String, Source)>>;

/// The file extensions an image folder lists (case-insensitive); the format itself is
/// recognised from the bytes ([`crate::decode`]).
pub const IMAGE_EXTENSIONS: [&str; 13] = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "pgm", "ppm", "pbm", "pnm", "jfif", "jpe"];

pub(crate) fn is_image(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.rsplit_once('.').is_some_and(|(_, e)| IMAGE_EXTENSIONS.contains(&e))
}

fn skipped_component(c: &str) -> bool {
    c.starts_with('.') || c == "__MACOSX"
}

/// Files the layout rule class, from `rel` (the path below the root, `/`-separated).
fn add(list: &mut Listing, rel: &str, src: Source, what: &dyn Fn(&str) -> String) -> Result<(), DataError> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| skipped_component(p)) || !parts.last().is_some_and(|f| is_image(f)) {
        return Ok(());
    }
    if parts.len() < 2 {
        return Err(DataError::Format { path: what(rel), reason: "image is not inside a class folder (root/<class>/<image>)".into() });
    }
    list.entry(parts[..parts.len() - 1].join("/")).or_default().push((parts.join("/"), src));
    Ok(())
}

fn walk(dir: &Path, rel: &str, depth: usize, list: &mut Listing, root: &Path) -> Result<(), DataError> {
    if depth > MAX_DEPTH {
        return Err(DataError::format(dir, format!("folders nested deeper than {MAX_DEPTH} levels")));
    }
    let mut ents: Vec<_> = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?.collect::<Result<_, _>>().map_err(|e| DataError::io(dir, e))?;
    ents.sort_by_key(|e| e.file_name());
    for ent in ents {
        let name = ent.file_name().to_string_lossy().into_owned();
        if skipped_component(&name) {
            continue;
        }
        let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let ty = ent.file_type().map_err(|e| DataError::io(&ent.path(), e))?;
        if ty.is_dir() {
            walk(&ent.path(), &r, depth + 1, list, root)?;
        } else if ent.path().is_file() {
            add(list, &r, Source::File(ent.path()), &|rel| root.join(rel).display().to_string())?;
        }
    }
    Ok(())
}

pub(crate) fn list_zip(zip: &Archive) -> Result<Listing, DataError> {
    let names = zip.names();
    for n in &names {
        let p = Path::new(n);
        if p.is_absolute() || n.starts_with('/') || n.contains('\\') || p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(DataError::Format { path: zip.what().to_string(), reason: format!("unsafe entry path {n:?} (absolute, with .. or \\)") });
        }
    }
    // `NAME.zip` made from the folder `NAME`: that folder is the root.
    let stem = Path::new(zip.what()).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!("{stem}/");
    let strip = !stem.is_empty() && !names.is_empty() && names.iter().all(|n| n.starts_with(&prefix));
    let mut list = Listing::new();
    for (k, n) in names.iter().enumerate() {
        let rel = if strip { &n[prefix.len()..] } else { n.as_str() };
        if n.ends_with('/') {
            continue;
        }
        add(&mut list, rel, Source::Member(k), &|_| format!("{}:{n}", zip.what()))?;
    }
    Ok(list)
}

/// How the images of a folder, zip or manifest become samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prep {
    /// Grey levels (colour converted by the ITU-R 601 weights), optionally inverted,
    /// area-resized to `size × size` (margin's drawing datasets; the card's `GreyImage`).
    Grey {
        /// Side.
        size: usize,
        /// Ink = 1 − grey.
        invert: bool,
    },
    /// A photo preprocessing spec.
    Spec(ImagePreprocess),
}

impl Prep {
    /// The spec when given, else the grey area-resize.
    pub fn of(size: usize, invert: bool, spec: Option<&ImagePreprocess>) -> Self {
        spec.map_or(Prep::Grey { size, invert }, |p| Prep::Spec(*p))
    }

    /// The sample shape produced.
    pub fn sample_shape(&self) -> Vec<usize> {
        match self {
            Prep::Grey { size, .. } => vec![1, *size, *size],
            Prep::Spec(p) => p.sample_shape(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), DataError> {
        match self {
            Prep::Grey { size, .. } => check_target_size(*size, "image size"),
            Prep::Spec(p) => p.validate("data.preprocess"),
        }
    }

    /// Decodes one file's bytes into `out`.
    pub fn prepare(&self, bytes: &[u8], what: &str, out: &mut [f32]) -> Result<(), DataError> {
        match self {
            Prep::Grey { size, invert } => {
                let (mut g, h, w) = decode_grey(bytes, what)?;
                if *invert {
                    g.iter_mut().for_each(|v| *v = crate::omniglot::ink(*v));
                }
                area_resize(&g, h, w, out, *size, *size);
                Ok(())
            }
            Prep::Spec(p) => p.apply(&crate::decode::decode(bytes, what)?, what, out),
        }
    }
}

/// The paths (below the root, `/`-separated) of the images [`load_image_folder`] loads, in
/// its sample order (class by class, then by path): the item ids of `margin index build
/// --model RUN --input DIR` and `margin dedup`.
pub fn image_paths(root: &Path) -> Result<Vec<String>, DataError> {
    let list = if root.is_file() {
        list_zip(&Archive::open(root)?)?
    } else {
        let mut list = Listing::new();
        walk(root, "", 0, &mut list, root)?;
        list
    };
    Ok(list
        .into_values()
        .flat_map(|mut images| {
            images.sort_by(|a, b| a.0.cmp(&b.0));
            images.into_iter().map(|(rel, _)| rel)
        })
        .collect())
}

/// Loads `root/<class>/…/<image>` (a folder, or a `.zip` of one: the layout rule is in
/// the module docs), converted to grey, optionally inverted (`ink = 1 − grey`, for
/// dark-on-light drawings) and area-resized to `size × size`. The classes are the
/// dataset's class table (sorted names); returns the names too. Zip entries with absolute
/// paths or `..` are refused (path traversal).
pub fn load_image_folder(root: &Path, size: usize, invert: bool) -> Result<(Dataset, Vec<String>), DataError> {
    let d = load_images(root, &Prep::Grey { size, invert })?;
    let names = d.classes.clone();
    Ok((d, names))
}

/// Lists a folder's images by the layout rule without decoding them (the lazy loader's
/// file index).
pub(crate) fn list_folder(root: &Path) -> Result<Listing, DataError> {
    let mut list = Listing::new();
    walk(root, "", 0, &mut list, root)?;
    Ok(list)
}

/// [`load_image_folder`] with any [`Prep`].
pub fn load_images(root: &Path, prep: &Prep) -> Result<Dataset, DataError> {
    load_images_skipping(root, prep, false).map(|(d, _)| d)
}

/// An image left out under `skip_bad`: the file and the error naming it.
pub type Skipped = (String, String);

/// [`load_images`]; with `skip_bad`, an image that cannot be read or decoded is left out
/// and returned with its error instead of stopping the load (off by default everywhere).
pub fn load_images_skipping(root: &Path, prep: &Prep, skip_bad: bool) -> Result<(Dataset, Vec<Skipped>), DataError> {
    prep.check()?;
    if root.is_file() {
        let mut zip = Archive::open(root)?;
        let list = list_zip(&zip)?;
        decode_all(root.display().to_string(), list, Some(&mut zip), prep, skip_bad)
    } else {
        let mut list = Listing::new();
        walk(root, "", 0, &mut list, root)?;
        decode_all(root.display().to_string(), list, None, prep, skip_bad)
    }
}

/// [`load_image_folder`] for a zip held in memory; `what` names it in errors (and its file
/// stem is the `NAME` of the layout rule).
pub fn load_image_zip_bytes(bytes: Vec<u8>, what: &str, size: usize, invert: bool) -> Result<(Dataset, Vec<String>), DataError> {
    check_target_size(size, "image size")?;
    let mut zip = Archive::from_bytes(bytes, what)?;
    let list = list_zip(&zip)?;
    let (d, _) = decode_all(what.to_string(), list, Some(&mut zip), &Prep::Grey { size, invert }, false)?;
    let names = d.classes.clone();
    Ok((d, names))
}

/// Loads the images a manifest lists ([`crate::manifest`]): the training pool and, when
/// rows are marked `test`, the separate test set.
pub fn load_manifest(path: &Path, prep: &Prep) -> Result<(Dataset, Option<Dataset>), DataError> {
    load_manifest_skipping(path, prep, false).map(|(d, t, _)| (d, t))
}

/// [`load_manifest`] with `skip_bad` (as [`load_images_skipping`]).
pub fn load_manifest_skipping(path: &Path, prep: &Prep, skip_bad: bool) -> Result<(Dataset, Option<Dataset>, Vec<Skipped>), DataError> {
    prep.check()?;
    let entries = crate::manifest::read_manifest(path)?;
    let (mut train, mut test) = (Listing::new(), Listing::new());
    for e in entries {
        let side = if e.split == crate::manifest::RowSplit::Test { &mut test } else { &mut train };
        side.entry(e.label).or_default().push((e.path.display().to_string(), Source::File(e.path)));
    }
    let name = path.display().to_string();
    if train.is_empty() {
        return Err(DataError::format(path, "the manifest lists no training image (every row has split = test)"));
    }
    let test = (!test.is_empty()).then(|| decode_all(format!("{name} [test rows]"), test, None, prep, skip_bad)).transpose()?;
    let (d, mut skipped) = decode_all(name, train, None, prep, skip_bad)?;
    let test = test.map(|(t, s)| {
        skipped.extend(s);
        t
    });
    Ok((d, test, skipped))
}

/// The decoded set lives in memory as f32: refuses up front what cannot fit
/// ([`crate::memory`]), rather than abort half-way through the decoding.
pub(crate) fn check_decoded_fits(name: &str, count: usize, shape: &[usize]) -> Result<(), DataError> {
    let dim: usize = shape.iter().product();
    let mut budget = crate::memory::Budget::new();
    budget.add(format!("{count} images at {}×{} ({} channel(s)) as f32", shape[1], shape[2], shape[0]), count as u64, (dim * 4) as u64);
    budget
        .check("loading the images", "lower data.image_size, or load fewer images")
        .map_err(|e| DataError::Format { path: name.to_string(), reason: e.to_string() })
}

fn decode_all(name: String, list: Listing, mut zip: Option<&mut Archive>, prep: &Prep, skip_bad: bool) -> Result<(Dataset, Vec<Skipped>), DataError> {
    if list.is_empty() {
        return Err(DataError::Format { path: name, reason: "no <class>/<image> files found (extensions: png, jpg, jpeg, webp, bmp, tif(f), pgm, ppm, pbm, pnm)".into() });
    }
    let shape = prep.sample_shape();
    let dim: usize = shape.iter().product();
    let count: usize = list.values().map(Vec::len).sum();
    check_decoded_fits(&name, count, &shape)?;
    let mut features = vec![0f32; count * dim];
    let mut labels = Vec::with_capacity(count);
    let names: Vec<String> = list.keys().cloned().collect();
    let mut skipped = Vec::new();
    let mut at = 0;
    for (c, (_, mut images)) in list.into_iter().enumerate() {
        images.sort_by(|a, b| a.0.cmp(&b.0));
        for (rel, src) in images {
            let read = match (src, zip.as_deref_mut()) {
                (Source::File(p), _) => std::fs::read(&p).map(|b| (p.display().to_string(), b)).map_err(|e| DataError::io(&p, e)),
                (Source::Member(k), Some(z)) => z.read(Which::Index(k)).map(|(n, b)| (format!("{}:{n}", z.what()), b)),
                (Source::Member(_), None) => unreachable!("zip members are listed from a zip"),
            };
            let done = read.and_then(|(what, bytes)| prep.prepare(&bytes, &what, &mut features[at * dim..(at + 1) * dim]));
            match done {
                Ok(()) => {
                    labels.push(c as i64);
                    at += 1;
                }
                Err(e) if skip_bad => skipped.push((rel, e.to_string())),
                Err(e) => return Err(e),
            }
        }
    }
    features.truncate(at * dim);
    if at == 0 {
        return Err(DataError::Format { path: name, reason: format!("every one of its {count} images was bad (skip_bad left none)") });
    }
    Ok((Dataset::with_names(name, features, shape, labels, names)?, skipped))
}
