//! Image inputs: area resampling and `root/<class>/*.png|pgm` folders (or a zip of that layout).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use super::{DataError, Dataset};

/// Area (box-average) resampling, identical to PyTorch's
/// `F.interpolate(mode="area")` = adaptive average pooling: output pixel `i`
/// averages input rows `floor(i·h/oh) .. ceil((i+1)·h/oh) − 1`.
pub fn area_resize(src: &[f32], h: usize, w: usize, dst: &mut [f32], oh: usize, ow: usize) {
    assert_eq!(src.len(), h * w);
    assert_eq!(dst.len(), oh * ow);
    for i in 0..oh {
        let (r0, r1) = (i * h / oh, ((i + 1) * h).div_ceil(oh));
        for j in 0..ow {
            let (c0, c1) = (j * w / ow, ((j + 1) * w).div_ceil(ow));
            let mut s = 0f32;
            for r in r0..r1 {
                s += src[r * w + c0..r * w + c1].iter().sum::<f32>();
            }
            dst[i * ow + j] = s / ((r1 - r0) * (c1 - c0)) as f32;
        }
    }
}

/// Decodes a PNG or binary/ASCII PGM to grey levels in `[0, 1]` (`(pixels, h, w)`).
pub fn decode_grey(bytes: &[u8], what: &str) -> Result<(Vec<f32>, usize, usize), DataError> {
    let bad = |reason: String| DataError::Format { path: what.to_string(), reason };
    if bytes.starts_with(b"\x89PNG") {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = dec.read_info().map_err(|e| bad(format!("corrupt PNG: {e}")))?;
        let mut buf = vec![0; reader.output_buffer_size().ok_or_else(|| bad("PNG too large".into()))?];
        let info = reader.next_frame(&mut buf).map_err(|e| bad(format!("corrupt PNG: {e}")))?;
        let (w, h) = (info.width as usize, info.height as usize);
        let ch = info.color_type.samples();
        let px = &buf[..info.buffer_size()];
        let grey: Vec<f32> = px
            .chunks_exact(ch)
            .map(|c| match ch {
                1 | 2 => c[0] as f32 / 255.0,
                _ => (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) / 255.0,
            })
            .collect();
        if grey.len() != w * h {
            return Err(bad(format!("PNG has {} pixels for {w}×{h}", grey.len())));
        }
        Ok((grey, h, w))
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        // Header: magic, width, height, maxval separated by whitespace (comments with #).
        let mut fields = Vec::new();
        let mut i = 2;
        while fields.len() < 3 {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'#') {
                if bytes[i] == b'#' {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                i += 1;
            }
            let s = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let v: usize = std::str::from_utf8(&bytes[s..i]).ok().and_then(|t| t.parse().ok()).ok_or_else(|| bad("corrupt PGM header".into()))?;
            fields.push(v);
        }
        let (w, h, maxv) = (fields[0], fields[1], fields[2].max(1));
        if w == 0 || h == 0 || w * h > 1 << 26 {
            return Err(bad(format!("PGM size {w}×{h} is not plausible")));
        }
        if bytes.starts_with(b"P5") {
            let data = &bytes[(i + 1).min(bytes.len())..];
            let bpp = if maxv > 255 { 2 } else { 1 };
            if data.len() < w * h * bpp {
                return Err(bad(format!("truncated PGM: {} bytes for {w}×{h}", data.len())));
            }
            let grey = (0..w * h)
                .map(|k| {
                    let v = if bpp == 1 { data[k] as usize } else { (data[2 * k] as usize) << 8 | data[2 * k + 1] as usize };
                    v as f32 / maxv as f32
                })
                .collect();
            Ok((grey, h, w))
        } else {
            let text = std::str::from_utf8(&bytes[i..]).map_err(|_| bad("corrupt ASCII PGM".into()))?;
            let grey: Vec<f32> = text.split_ascii_whitespace().map(|t| t.parse::<f32>().map(|v| v / maxv as f32)).collect::<Result<_, _>>().map_err(|_| bad("corrupt ASCII PGM".into()))?;
            if grey.len() != w * h {
                return Err(bad(format!("truncated PGM: {} values for {w}×{h}", grey.len())));
            }
            Ok((grey, h, w))
        }
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        Err(bad("JPEG images are not supported yet; convert to PNG or PGM".into()))
    } else {
        Err(bad("not a PNG or PGM image".into()))
    }
}

fn is_image(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    [".png", ".pgm", ".jpg", ".jpeg"].iter().any(|e| l.ends_with(e))
}

/// Loads `root/<class>/<image>` (a folder, or a `.zip` with that layout, optionally
/// under one top folder), converted to grey, optionally inverted (`ink = 1 − grey`,
/// for dark-on-light drawings) and area-resized to `size × size`.
/// Classes are numbered in sorted order of their folder names; returns the names too.
/// Zip entries with absolute paths or `..` are refused (path traversal).
pub fn load_image_folder(root: &Path, size: usize, invert: bool) -> Result<(Dataset, Vec<String>), DataError> {
    let mut files: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    if root.is_file() {
        let f = std::fs::File::open(root).map_err(|e| DataError::io(root, e))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
            .map_err(|e| DataError::format(root, format!("not a readable zip archive: {e}")))?;
        for k in 0..zip.len() {
            let mut e = zip.by_index(k).map_err(|e| DataError::format(root, format!("entry {k}: {e}")))?;
            let name = e.name().to_string();
            let p = Path::new(&name);
            if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(DataError::format(root, format!("unsafe entry path {name:?} (absolute or with ..)")));
            }
            if e.is_dir() || !is_image(&name) {
                continue;
            }
            let parts: Vec<String> = p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if parts.len() < 2 {
                continue;
            }
            // The class is the whole parent path, so nested layouts such as
            // `<alphabet>/<character>/x.png` keep `character01` of two alphabets apart.
            let class = parts[..parts.len() - 1].join("/");
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).map_err(|err| DataError::format(root, format!("{name}: {err}")))?;
            files.entry(class).or_default().push((format!("{}:{name}", root.display()), bytes));
        }
    } else {
        let rd = std::fs::read_dir(root).map_err(|e| DataError::io(root, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| DataError::io(root, e))?;
            if !ent.path().is_dir() {
                continue;
            }
            let class = ent.file_name().to_string_lossy().into_owned();
            let mut names: Vec<_> = std::fs::read_dir(ent.path()).map_err(|e| DataError::io(&ent.path(), e))?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            names.sort();
            for p in names {
                if p.is_file() && is_image(&p.to_string_lossy()) {
                    let bytes = std::fs::read(&p).map_err(|e| DataError::io(&p, e))?;
                    files.entry(class.clone()).or_default().push((p.display().to_string(), bytes));
                }
            }
        }
    }
    if files.is_empty() {
        return Err(DataError::format(root, "no <class>/<image>.png|pgm files found"));
    }
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut dst = vec![0f32; size * size];
    let names: Vec<String> = files.keys().cloned().collect();
    for (c, (_, mut list)) in files.into_iter().enumerate() {
        list.sort_by(|a, b| a.0.cmp(&b.0));
        for (what, bytes) in list {
            let (mut g, h, w) = decode_grey(&bytes, &what)?;
            if invert {
                g.iter_mut().for_each(|v| *v = crate::omniglot::ink(*v));
            }
            area_resize(&g, h, w, &mut dst, size, size);
            features.extend_from_slice(&dst);
            labels.push(c as i64);
        }
    }
    Ok((Dataset::new(root.display().to_string(), features, vec![1, size, size], labels)?, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_matches_box_average() {
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 4];
        area_resize(&src, 4, 4, &mut dst, 2, 2);
        assert_eq!(dst, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn pgm_and_garbage() {
        let mut b = b"P5\n2 1\n255\n".to_vec();
        b.extend_from_slice(&[0, 255]);
        assert_eq!(decode_grey(&b, "x.pgm").unwrap(), (vec![0.0, 1.0], 1, 2));
        let e = decode_grey(&b"P5\n4 4\n255\n\x00"[..], "x.pgm").unwrap_err().to_string();
        assert!(e.contains("x.pgm") && e.contains("truncated"), "{e}");
        assert!(decode_grey(b"\x89PNG\r\n\x1a\nxx", "bad.png").unwrap_err().to_string().contains("bad.png"));
    }
}
