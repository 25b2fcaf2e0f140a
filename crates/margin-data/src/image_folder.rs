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
//! Skipped, by rule, not by accident: files that are not `.png`/`.pgm`/`.jpg`/`.jpeg`
//! (JPEG is refused when decoded, naming the file), and any path with a component starting
//! with `.` or named `__MACOSX` (hidden files, macOS resource forks). A folder walk does not
//! follow symbolic links to folders (no cycles) and stops at [`MAX_DEPTH`] levels.
//!
//! Classes are numbered in sorted order of their names, images within a class sorted by
//! path, so a folder and its zip give the same [`Dataset`] (tested).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::archive::{Archive, Which};
use crate::images::{area_resize, decode_grey};
use crate::limits::check_target_size;
use crate::{DataError, Dataset};

/// The deepest folder nesting a walk follows below the root.
pub const MAX_DEPTH: usize = 64;

/// Where one image's bytes are.
enum Source {
    File(std::path::PathBuf),
    Member(usize),
}

/// The images found, by class name, each with its relative path and source.
type Listing = BTreeMap<String, Vec<(String, Source)>>;

fn is_image(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    [".png", ".pgm", ".jpg", ".jpeg"].iter().any(|e| l.ends_with(e))
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

fn list_zip(zip: &Archive) -> Result<Listing, DataError> {
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
/// dark-on-light drawings) and area-resized to `size × size`. Classes are numbered in
/// sorted order of their names; returns the names too. Zip entries with absolute paths or
/// `..` are refused (path traversal).
pub fn load_image_folder(root: &Path, size: usize, invert: bool) -> Result<(Dataset, Vec<String>), DataError> {
    check_target_size(size, "image size")?;
    if root.is_file() {
        let mut zip = Archive::open(root)?;
        let list = list_zip(&zip)?;
        decode_all(root.display().to_string(), list, Some(&mut zip), size, invert)
    } else {
        let mut list = Listing::new();
        walk(root, "", 0, &mut list, root)?;
        decode_all(root.display().to_string(), list, None, size, invert)
    }
}

/// [`load_image_folder`] for a zip held in memory; `what` names it in errors (and its file
/// stem is the `NAME` of the layout rule).
pub fn load_image_zip_bytes(bytes: Vec<u8>, what: &str, size: usize, invert: bool) -> Result<(Dataset, Vec<String>), DataError> {
    check_target_size(size, "image size")?;
    let mut zip = Archive::from_bytes(bytes, what)?;
    let list = list_zip(&zip)?;
    decode_all(what.to_string(), list, Some(&mut zip), size, invert)
}

fn decode_all(name: String, list: Listing, mut zip: Option<&mut Archive>, size: usize, invert: bool) -> Result<(Dataset, Vec<String>), DataError> {
    if list.is_empty() {
        return Err(DataError::Format { path: name, reason: "no <class>/<image>.png|pgm files found".into() });
    }
    // The decoded set lives in memory as f32: refuse up front what cannot fit
    // (margin_data::memory), rather than abort half-way through the decoding.
    let count: usize = list.values().map(Vec::len).sum();
    let mut budget = crate::memory::Budget::new();
    budget.add(format!("{count} images at {size}×{size} as f32"), count as u64, (size * size * 4) as u64);
    budget
        .check("loading the images", "lower data.image_size, or load fewer images")
        .map_err(|e| DataError::Format { path: name.clone(), reason: e.to_string() })?;
    let mut features = Vec::with_capacity(count * size * size);
    let mut labels = Vec::with_capacity(count);
    let mut dst = vec![0f32; size * size];
    let names: Vec<String> = list.keys().cloned().collect();
    for (c, (_, mut images)) in list.into_iter().enumerate() {
        images.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, src) in images {
            let (what, bytes) = match (src, zip.as_deref_mut()) {
                (Source::File(p), _) => (p.display().to_string(), std::fs::read(&p).map_err(|e| DataError::io(&p, e))?),
                (Source::Member(k), Some(z)) => {
                    let (n, b) = z.read(Which::Index(k))?;
                    (format!("{}:{n}", z.what()), b)
                }
                (Source::Member(_), None) => unreachable!("zip members are listed from a zip"),
            };
            let (mut g, h, w) = decode_grey(&bytes, &what)?;
            if invert {
                g.iter_mut().for_each(|v| *v = crate::omniglot::ink(*v));
            }
            area_resize(&g, h, w, &mut dst, size, size);
            features.extend_from_slice(&dst);
            labels.push(c as i64);
        }
    }
    Ok((Dataset::new(name, features, vec![1, size, size], labels)?, names))
}
