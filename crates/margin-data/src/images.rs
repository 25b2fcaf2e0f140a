//! Image decoding and resampling: PNG and PGM (binary `P5`, ASCII `P2`) to grey levels in
//! `[0, 1]`, and area resizing. Folders and zips of images are [`crate::image_folder`].
//!
//! Every size comes from a header and is checked before a buffer is sized by it
//! ([`crate::limits`]): the image caps ([`MAX_IMAGE_SIDE`] a side, [`MAX_IMAGE_PIXELS`](crate::limits::MAX_IMAGE_PIXELS) in
//! all), and the data present — a PGM's samples must all be in the file, a PNG's pixels
//! must be producible from its bytes by deflate ([`DEFLATE_MAX_RATIO`]). A PGM's `maxval`
//! must be 1..=65535 (the format's range; 0 would divide by zero) and every sample at most
//! `maxval`. The PNG decoder runs inside [`guarded`].

use super::DataError;
use crate::limits::{DEFLATE_MAX_RATIO, MAX_IMAGE_SIDE, check_image_size, guarded};

/// Area (box-average) resampling, identical to PyTorch's
/// `F.interpolate(mode="area")` = adaptive average pooling: output pixel `i`
/// averages input rows `floor(i·h/oh) .. ceil((i+1)·h/oh) − 1`.
///
/// Contract (the caller's, checked): `src.len() == h·w`, `dst.len() == oh·ow`, all sides
/// ≥ 1 and at most [`MAX_IMAGE_SIDE`] (the decoders and [`crate::limits::check_target_size`]
/// guarantee it for user data).
pub fn area_resize(src: &[f32], h: usize, w: usize, dst: &mut [f32], oh: usize, ow: usize) {
    assert!(h > 0 && w > 0 && oh > 0 && ow > 0, "area_resize: empty image {h}×{w} → {oh}×{ow}");
    assert!(h.max(w).max(oh).max(ow) <= MAX_IMAGE_SIDE, "area_resize: side above MAX_IMAGE_SIDE");
    assert_eq!(Some(src.len()), h.checked_mul(w));
    assert_eq!(Some(dst.len()), oh.checked_mul(ow));
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

/// Decodes a PNG or binary/ASCII PGM to grey levels in `[0, 1]` (`(pixels, h, w)`);
/// `what` names the file in errors.
pub fn decode_grey(bytes: &[u8], what: &str) -> Result<(Vec<f32>, usize, usize), DataError> {
    if bytes.starts_with(b"\x89PNG") {
        guarded(what, || decode_png(bytes, what))
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        decode_pgm(bytes, what)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        Err(DataError::Format { path: what.to_string(), reason: "JPEG images are not supported yet; convert to PNG or PGM".into() })
    } else {
        Err(DataError::Format { path: what.to_string(), reason: "not a PNG or PGM image".into() })
    }
}

/// Refuses palettes the `png` crate (0.18.1) panics on instead of reporting: a `PLTE`
/// chunk whose length is not a multiple of 3 (found by the `image` fuzz target,
/// `fuzz/corpus/image/png_palette_4_bytes.png`), and a `tRNS` chunk with more entries than
/// the palette. Walks the chunks up to the first `IDAT` (both must precede it).
fn check_png_palette(bytes: &[u8], what: &str) -> Result<(), DataError> {
    let mut at = 8;
    let mut entries = None;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        match kind {
            b"IDAT" => break,
            b"PLTE" if len % 3 != 0 || !(3..=768).contains(&len) => {
                return Err(DataError::Format { path: what.to_string(), reason: format!("corrupt PNG: a PLTE chunk of {len} bytes (3 to 768, a multiple of 3)") });
            }
            b"PLTE" => entries = Some(len / 3),
            b"tRNS" if entries.is_some_and(|n| len > n) => {
                return Err(DataError::Format { path: what.to_string(), reason: format!("corrupt PNG: tRNS has {len} entries for a palette of {}", entries.unwrap_or(0)) });
            }
            _ => {}
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

fn decode_png(bytes: &[u8], what: &str) -> Result<(Vec<f32>, usize, usize), DataError> {
    let bad = |reason: String| DataError::Format { path: what.to_string(), reason };
    check_png_palette(bytes, what)?;
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let (w, h, bits) = {
        let info = dec.read_header_info().map_err(|e| bad(format!("corrupt PNG: {e}")))?;
        (info.width as usize, info.height as usize, info.bits_per_pixel())
    };
    let pixels = check_image_size(w, h, what)?;
    // After EXPAND and STRIP_16 a pixel is at most 4 bytes (RGBA 8-bit).
    let out_bytes = pixels * 4;
    // The compressed pixel rows (a filter byte each) cannot be more than deflate makes
    // from the whole file.
    let raw = (h as u64) * (1 + (w as u64 * bits as u64).div_ceil(8));
    let producible = (bytes.len() as u64).saturating_mul(DEFLATE_MAX_RATIO);
    if raw > producible {
        return Err(bad(format!("PNG header says {w}×{h} pixels, more than its {} bytes can hold", bytes.len())));
    }
    dec.set_limits(png::Limits { bytes: out_bytes.saturating_mul(2) + (1 << 20) });
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| bad(format!("corrupt PNG: {e}")))?;
    let size = reader.output_buffer_size().ok_or_else(|| bad("PNG too large".into()))?;
    if size > out_bytes {
        return Err(bad(format!("PNG of {w}×{h} needs a {size}-byte buffer")));
    }
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(format!("corrupt PNG: {e}")))?;
    let (fw, fh) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    let px = buf.get(..info.buffer_size()).ok_or_else(|| bad("PNG frame larger than its buffer".into()))?;
    if !(1..=4).contains(&ch) || px.len() != fw * fh * ch || (fw, fh) != (w, h) {
        return Err(bad(format!("PNG frame of {fw}×{fh}×{ch} does not match its {w}×{h} header")));
    }
    let grey: Vec<f32> = px
        .chunks_exact(ch)
        .map(|c| match ch {
            1 | 2 => c[0] as f32 / 255.0,
            _ => (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) / 255.0,
        })
        .collect();
    Ok((grey, h, w))
}

/// The PGM header: magic, width, height, maxval separated by whitespace (comments with
/// `#` up to the end of the line); returns the fields and the offset after the last one.
fn pgm_header(bytes: &[u8], what: &str) -> Result<([u64; 3], usize), DataError> {
    let mut fields = [0u64; 3];
    let mut i = 2;
    for (k, name) in ["width", "height", "maxval"].iter().enumerate() {
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
        let text = std::str::from_utf8(&bytes[s.min(bytes.len())..i.min(bytes.len())]).unwrap_or("");
        fields[k] = text.parse().map_err(|_| DataError::Format {
            path: what.to_string(),
            reason: format!("corrupt PGM header: {name} {text:?} is not a number below 2^64"),
        })?;
    }
    Ok((fields, i))
}

fn decode_pgm(bytes: &[u8], what: &str) -> Result<(Vec<f32>, usize, usize), DataError> {
    let bad = |reason: String| DataError::Format { path: what.to_string(), reason };
    let ([w, h, maxv], i) = pgm_header(bytes, what)?;
    if maxv == 0 || maxv > 65535 {
        return Err(bad(format!("PGM maxval {maxv} is outside 1..=65535")));
    }
    let side = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let (w, h) = (side(w), side(h));
    let n = check_image_size(w, h, what)?;
    let scale = 1.0 / maxv as f32;
    let sample = |v: u32, k: usize| {
        if u64::from(v) > maxv {
            Err(bad(format!("PGM pixel {k} (row {}, column {}) is {v}, above maxval {maxv}", k / w, k % w)))
        } else {
            Ok(v as f32 * scale)
        }
    };
    if bytes.starts_with(b"P5") {
        // One whitespace byte separates the header from the samples.
        let data = bytes.get(i + 1..).unwrap_or(&[]);
        let bpp = if maxv > 255 { 2 } else { 1 };
        if data.len() < n * bpp {
            return Err(bad(format!("truncated PGM: {} bytes for {w}×{h} pixels of {bpp} byte(s)", data.len())));
        }
        let grey = (0..n)
            .map(|k| {
                let v = if bpp == 1 { u32::from(data[k]) } else { u32::from(data[2 * k]) << 8 | u32::from(data[2 * k + 1]) };
                sample(v, k)
            })
            .collect::<Result<Vec<f32>, _>>()?;
        Ok((grey, h, w))
    } else {
        let text = std::str::from_utf8(&bytes[i..]).map_err(|_| bad("ASCII PGM is not text".into()))?;
        // Every sample takes at least two bytes (a digit and a separator): refuse before
        // allocating for a header that claims more than the text can hold.
        if n > text.len().div_ceil(2) + 1 {
            return Err(bad(format!("truncated PGM: {} bytes of text for {w}×{h} pixels", text.len())));
        }
        let mut grey = Vec::with_capacity(n);
        for (k, t) in text.split_ascii_whitespace().enumerate() {
            if k >= n {
                return Err(bad(format!("PGM has more than the {n} samples of {w}×{h}")));
            }
            let v: u32 = t.parse().map_err(|_| bad(format!("PGM pixel {k}: {t:.20?} is not a non-negative integer")))?;
            grey.push(sample(v, k)?);
        }
        if grey.len() != n {
            return Err(bad(format!("truncated PGM: {} values for {w}×{h}", grey.len())));
        }
        Ok((grey, h, w))
    }
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
        assert_eq!(decode_grey(b"P2\n2 1\n# c\n4\n0 4\n", "x.pgm").unwrap(), (vec![0.0, 1.0], 1, 2));
        let e = decode_grey(&b"P5\n4 4\n255\n\x00"[..], "x.pgm").unwrap_err().to_string();
        assert!(e.contains("x.pgm") && e.contains("truncated"), "{e}");
        assert!(decode_grey(b"\x89PNG\r\n\x1a\nxx", "bad.png").unwrap_err().to_string().contains("bad.png"));
    }

    /// Issue 11: `w · h` wrapped on 64 bits, passed the size check, and `area_resize`
    /// panicked; now refused by the image cap.
    #[test]
    fn pgm_header_overflow_is_refused() {
        let e = decode_grey(b"P5 4294967296 4294967296 255\n\x00", "big.pgm").unwrap_err().to_string();
        assert!(e.contains("big.pgm") && e.contains("4294967296×4294967296") && e.contains("limit"), "{e}");
        let e = decode_grey(b"P5 99999999999999999999999 1 255\n\x00", "big.pgm").unwrap_err().to_string();
        assert!(e.contains("width") && e.contains("not a number"), "{e}");
    }

    #[test]
    fn pgm_maxval_and_samples_are_checked() {
        for m in ["0", "65536", "18446744073709551615"] {
            let e = decode_grey(format!("P5 1 1 {m}\n\x00\x00").as_bytes(), "m.pgm").unwrap_err().to_string();
            assert!(e.contains("m.pgm") && e.contains(&format!("maxval {m}")), "{e}");
        }
        let e = decode_grey(b"P2 2 1 4 1 5", "s.pgm").unwrap_err().to_string();
        assert!(e.contains("pixel 1") && e.contains("above maxval 4"), "{e}");
        let e = decode_grey(b"P2 2 1 4 1 nan", "s.pgm").unwrap_err().to_string();
        assert!(e.contains("pixel 1") && e.contains("not a non-negative integer"), "{e}");
        // 16-bit samples, big-endian.
        assert_eq!(decode_grey(b"P5 1 1 65535\n\xff\xff", "x.pgm").unwrap().0, vec![1.0]);
    }

    /// Issue 11: a PNG whose header says 100000×100000 aborted with "memory allocation
    /// failed"; a header within the caps but beyond what the file's bytes can hold is
    /// refused before the buffer is allocated.
    #[test]
    fn png_header_sizes_are_checked_before_allocating() {
        for (w, h, want) in [(100_000u32, 100_000u32, "pixels a side"), (8000, 8000, "more than its")] {
            let e = decode_grey(&png_header(w, h), "huge.png").unwrap_err().to_string();
            assert!(e.contains("huge.png") && e.contains(want), "{e}");
        }
        let ok = tiny_png();
        assert_eq!(decode_grey(&ok, "ok.png").unwrap(), (vec![0.0, 1.0], 1, 2));
    }

    /// A PNG with only its signature and IHDR chunk (grey, 8 bits).
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(&ihdr);
        v.extend_from_slice(&crc(&ihdr).to_be_bytes());
        v
    }

    pub(crate) fn tiny_png() -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 2, 1);
        enc.set_color(png::ColorType::Grayscale);
        enc.write_header().unwrap().write_image_data(&[0, 255]).unwrap();
        out
    }

    fn crc(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            }
        }
        !c
    }
}
