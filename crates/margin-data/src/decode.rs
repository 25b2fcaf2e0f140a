//! Image decoding: every format margin reads, through the `image` crate, to one decoded
//! picture ([`Decoded`]) that the preprocessing turns into grey levels or RGB.
//!
//! **Formats.** JPEG (baseline, progressive, greyscale, CMYK — `zune-jpeg`), PNG (1–16 bit,
//! palette, alpha), WebP (lossy and lossless), BMP, TIFF and PNM (PBM/PGM/PPM, binary and
//! ASCII). The format is recognised from the bytes (magic numbers), never from the file's
//! extension, so a mislabelled file still decodes and a text file named `.jpg` is refused
//! as "not a recognised image".
//!
//! **Orientation.** The EXIF orientation (JPEG, TIFF, WebP) is applied after decoding, as
//! Pillow's `ImageOps.exif_transpose` does, so a portrait photo taken with a turned camera
//! is upright (tested on `../shared/golden/images/files/exif_rotate90.jpg`).
//!
//! **To RGB as Pillow does** (`Image.convert("RGB")`, what torchvision's `ImageFolder`
//! loader calls): alpha is dropped (not composited), grey is replicated to three channels,
//! palettes are expanded, 16-bit samples become 8-bit by `round(v / 257)`, CMYK JPEGs are
//! converted by the decoder. [`Decoded::rgb8`] is that image, byte for byte equal to
//! Pillow's on lossless formats and within about one grey level on JPEG (different IDCTs
//! and chroma upsampling; the parity test, `tests/decode_golden.rs`). To grey
//! ([`Decoded::grey`]): grey sources keep their full precision (`v / 255` or
//! `v / 65535`), colour is `0.299 R + 0.587 G + 0.114 B` (ITU-R 601, the weights of
//! Pillow's `convert("L")`), in floats.
//!
//! **Bounds before decoding** ([`crate::limits`]): the header's width and height are read
//! first and checked against margin's caps, then against what the file's bytes can
//! produce — for PNG the deflate bound on its raw rows ([`DEFLATE_MAX_RATIO`]); for JPEG
//! [`JPEG_MAX_PIXELS_PER_BYTE`] (every 8×8 block of every scan costs at least one bit);
//! for the other formats [`MAX_PIXELS_PER_BYTE`] above a fixed [`SMALL_IMAGE_PIXELS`]
//! allowance. Only then is the pixel buffer allocated, with `image`'s own [`Limits`] as a
//! second fence. The decoder runs inside [`guarded`]. Where a decoder would trust a claim
//! inside the file, the claim is checked first: PNG palettes the `png` crate (0.18.1)
//! panics on, TIFF directory entries claiming more values than the file holds (the `tiff`
//! crate reserves them), JPEGs cut short (which `zune-jpeg` would fill with grey). One
//! bounded exception, stated: `image-webp` (0.2.4) reserves a lossy WebP's claimed
//! partition sizes (each below 16 MiB, at most 8) before reading them; the replay test
//! allows exactly that.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::DataError;
use crate::limits::{DEFLATE_MAX_RATIO, MAX_IMAGE_PIXELS, check_image_size, guarded};

/// The most pixels a JPEG can describe per byte of file: one bit per 8×8 block (a
/// one-bit Huffman code for "DC unchanged, end of block"), so 512 pixels a byte.
pub const JPEG_MAX_PIXELS_PER_BYTE: u64 = 512;

/// The most pixels per byte of file margin accepts from WebP, BMP, TIFF and PNM, whose
/// run-length and prefix codes can describe a blank picture in almost no bytes: deflate's
/// ratio, far above any real photo or scan (a lossless photo is rarely below 1 byte a pixel).
pub const MAX_PIXELS_PER_BYTE: u64 = DEFLATE_MAX_RATIO;

/// Pictures up to this many pixels (512 × 512) pass the per-byte bound whatever their
/// file size (a blank 512 × 512 mask is a legitimate 100-byte file; at 16-bit RGBA it is 2 MiB).
pub const SMALL_IMAGE_PIXELS: u64 = 1 << 18;

/// A decoded picture, upright (EXIF orientation applied), in the bit depth and colour
/// model of its file.
pub struct Decoded {
    image: DynamicImage,
    format: ImageFormat,
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Decoded({:?} {:?} {}×{})", self.format, self.image.color(), self.width(), self.height())
    }
}

impl Decoded {
    /// Width in pixels (after orientation).
    pub fn width(&self) -> usize {
        self.image.width() as usize
    }
    /// Height in pixels (after orientation).
    pub fn height(&self) -> usize {
        self.image.height() as usize
    }
    /// Whether the file had colour channels (false for grey and grey + alpha).
    pub fn has_colour(&self) -> bool {
        self.image.color().has_color()
    }
    /// The file's format, for messages.
    pub fn format_name(&self) -> &'static str {
        self.format.extensions_str().first().copied().unwrap_or("image")
    }

    /// RGB bytes, row-major `[h, w, 3]`: Pillow's `convert("RGB")` (module docs).
    pub fn rgb8(&self) -> Vec<u8> {
        self.image.to_rgb8().into_raw()
    }

    /// Grey levels in `[0, 1]`, row-major `[h, w]` (module docs: grey sources exact,
    /// colour by the ITU-R 601 weights).
    pub fn grey(&self) -> Vec<f32> {
        match &self.image {
            DynamicImage::ImageLuma8(b) => b.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect(),
            DynamicImage::ImageLumaA8(b) => b.as_raw().chunks_exact(2).map(|c| f32::from(c[0]) / 255.0).collect(),
            DynamicImage::ImageLuma16(b) => b.as_raw().iter().map(|&v| f32::from(v) / 65535.0).collect(),
            DynamicImage::ImageLumaA16(b) => b.as_raw().chunks_exact(2).map(|c| f32::from(c[0]) / 65535.0).collect(),
            other => other.to_rgb32f().into_raw().chunks_exact(3).map(|c| (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]).clamp(0.0, 1.0)).collect(),
        }
    }

    /// RGB in `[0, 1]`, planar `[3, h, w]` (the model's layout), from [`Decoded::rgb8`].
    pub fn rgb_planar(&self) -> Vec<f32> {
        let (h, w) = (self.height(), self.width());
        let rgb = self.rgb8();
        let mut out = vec![0f32; 3 * h * w];
        for (p, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * h * w + p] = f32::from(px[c]) / 255.0;
            }
        }
        out
    }
}

fn bad(what: &str, reason: impl Into<String>) -> DataError {
    DataError::Format { path: what.to_string(), reason: reason.into() }
}

/// Decodes one image file's bytes; `what` names the file in errors (module docs: formats,
/// orientation, bounds).
pub fn decode(bytes: &[u8], what: &str) -> Result<Decoded, DataError> {
    let format = checked_format(bytes, what)?;
    guarded(what, || decode_format(bytes, format, what))
}

/// What [`decode`] checks before it decodes a pixel — the format, the checks of broken
/// files (a short PNG palette, a JPEG cut short, TIFF entry counts), the header's size
/// against the caps and against what the bytes can hold — without decoding: the lazy
/// loader's index runs it on every file, so a bad file stops the run (or is skipped) at
/// load time, as with eager loading, instead of when a batch first meets it.
pub fn check_header(bytes: &[u8], what: &str) -> Result<(), DataError> {
    let format = checked_format(bytes, what)?;
    guarded(what, || header_checked_decoder(bytes, format, what).map(|_| ()))
}

/// The file's format, once the checks of broken files that need no decoder have passed.
fn checked_format(bytes: &[u8], what: &str) -> Result<ImageFormat, DataError> {
    if bytes.is_empty() {
        return Err(bad(what, "empty file (0 bytes), not an image"));
    }
    let format = image::guess_format(bytes).ok().filter(|f| SUPPORTED.contains(f)).ok_or_else(|| {
        bad(what, "not a recognised image (margin reads JPEG, PNG, WebP, BMP, TIFF, PBM/PGM/PPM)")
    })?;
    match format {
        ImageFormat::Png => check_png_palette(bytes, what)?,
        ImageFormat::Jpeg => check_jpeg_complete(bytes, what)?,
        ImageFormat::Tiff => check_tiff_entries(bytes, what)?,
        _ => {}
    }
    Ok(format)
}

fn corrupt(what: &str, format: ImageFormat) -> impl Fn(image::ImageError) -> DataError + '_ {
    move |e| bad(what, format!("corrupt or unsupported {}: {e}", format_name(format)))
}

/// A decoder of `bytes` whose header passed margin's caps and what the bytes can hold.
fn header_checked_decoder<'a>(bytes: &'a [u8], format: ImageFormat, what: &str) -> Result<impl ImageDecoder + 'a, DataError> {
    // margin's own caps are checked on the header below, with messages naming them; the
    // `image` limit is the second fence, on what the decoder allocates: the most a capped picture needs (16-bit RGBA) plus the decoders' working space.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_IMAGE_PIXELS as u64 * 8 + (64 << 20));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let dec = reader.into_decoder().map_err(corrupt(what, format))?;
    let (w, h) = dec.dimensions();
    let pixels = check_image_size(w as usize, h as usize, what)? as u64;
    check_producible(bytes, format, w, h, dec.color_type().bits_per_pixel(), pixels, what)?;
    Ok(dec)
}

/// The formats margin's `image` build decodes (its cargo features).
const SUPPORTED: [ImageFormat; 6] = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Bmp, ImageFormat::Tiff, ImageFormat::Pnm];

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        _ => "PNM (PBM/PGM/PPM)",
    }
}

fn decode_format(bytes: &[u8], format: ImageFormat, what: &str) -> Result<Decoded, DataError> {
    let corrupt = corrupt(what, format);
    let mut dec = header_checked_decoder(bytes, format, what)?;
    // Now the picture is known to be real: the decoder may allocate its output, a copy for
    // the orientation, and the file's worth of intermediate data (TIFF strips), no more.
    let mut tight = Limits::default();
    tight.max_alloc = Some(dec.total_bytes().saturating_mul(2).saturating_add(2 * bytes.len() as u64).saturating_add(1 << 20));
    dec.set_limits(tight).map_err(&corrupt)?;
    let orientation = dec.orientation().map_err(&corrupt)?;
    let mut image = DynamicImage::from_decoder(dec).map_err(&corrupt)?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, format })
}

/// Refuses a header whose picture the file's bytes cannot hold (module docs).
fn check_producible(bytes: &[u8], format: ImageFormat, w: u32, h: u32, bits: u16, pixels: u64, what: &str) -> Result<(), DataError> {
    let len = bytes.len() as u64;
    let ok = match format {
        // The raw rows (a filter byte each) come out of deflate.
        ImageFormat::Png => u64::from(h) * (1 + (u64::from(w) * u64::from(bits)).div_ceil(8)) <= len.saturating_mul(DEFLATE_MAX_RATIO),
        ImageFormat::Jpeg => pixels <= len.saturating_mul(JPEG_MAX_PIXELS_PER_BYTE),
        _ => pixels <= SMALL_IMAGE_PIXELS.max(len.saturating_mul(MAX_PIXELS_PER_BYTE)),
    };
    if ok {
        Ok(())
    } else {
        Err(bad(what, format!("header says {w}×{h} pixels, more than its {len} bytes can hold (margin_data::decode)")))
    }
}

/// Refuses a JPEG cut short. `zune-jpeg` (as `image` drives it) fills missing scan data
/// with grey instead of failing, so a truncated download would train as a half-grey
/// picture; Pillow refuses it ("image file is truncated"). The rule: an end-of-image
/// marker (`FF D9`) must follow the last start-of-scan marker (`FF DA`) — markers cannot
/// occur inside entropy-coded data (`FF` is stuffed as `FF 00` there), and an EXIF
/// thumbnail's own markers all precede the main image's scans.
fn check_jpeg_complete(bytes: &[u8], what: &str) -> Result<(), DataError> {
    let last = |m: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == m);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) if eoi > sos => Ok(()),
        (None, _) => Err(bad(what, "truncated or corrupt JPEG: no image data (no start-of-scan marker)")),
        _ => Err(bad(what, format!("truncated JPEG: no end-of-image marker after its image data ({} bytes)", bytes.len()))),
    }
}

/// Refuses a TIFF whose first directory claims more values than the file holds. The
/// `tiff` crate (0.11.3) reserves an entry's claimed value count (up to 256 MiB) while
/// opening the file, before it reads them — a 2 KB file could take 100 MB (found by the
/// replay test's mutation search). Every entry's `count × size of its type` must fit in
/// the file; classic (`*`) and BigTIFF (`+`) layouts, either byte order.
fn check_tiff_entries(bytes: &[u8], what: &str) -> Result<(), DataError> {
    let little = bytes.starts_with(b"II");
    let uint = |at: usize, n: usize| -> Option<u64> {
        let b = bytes.get(at..at.checked_add(n)?)?;
        Some(if little { b.iter().rev().fold(0, |v, &x| v << 8 | u64::from(x)) } else { b.iter().fold(0, |v, &x| v << 8 | u64::from(x)) })
    };
    let truncated = || bad(what, "truncated or corrupt TIFF: its first directory lies outside the file");
    let big = uint(2, 2) == Some(43);
    let (ifd, count_len, entry_len, count_at, count_size) = if big { (uint(8, 8), 8, 20, 4, 8) } else { (uint(4, 4), 2, 12, 4, 4) };
    let ifd = usize::try_from(ifd.ok_or_else(truncated)?).map_err(|_| truncated())?;
    let entries = uint(ifd, count_len).ok_or_else(truncated)?;
    let len = bytes.len() as u64;
    for k in 0..entries.min(len / entry_len as u64 + 1) {
        let at = ifd + count_len + k as usize * entry_len;
        let (Some(kind), Some(count)) = (uint(at + 2, 2), uint(at + count_at, count_size)) else { return Err(truncated()) };
        let size = match kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            _ => 8,
        };
        if count.saturating_mul(size) > len {
            let tag = uint(at, 2).unwrap_or(0);
            return Err(bad(what, format!("corrupt TIFF: tag {tag} claims {count} values, more than the file's {len} bytes hold")));
        }
    }
    Ok(())
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
        match &head[4..8] {
            b"IDAT" => break,
            b"PLTE" if len % 3 != 0 || !(3..=768).contains(&len) => {
                return Err(bad(what, format!("corrupt PNG: a PLTE chunk of {len} bytes (3 to 768, a multiple of 3)")));
            }
            b"PLTE" => entries = Some(len / 3),
            b"tRNS" if entries.is_some_and(|n| len > n) => {
                return Err(bad(what, format!("corrupt PNG: tRNS has {len} entries for a palette of {}", entries.unwrap_or(0))));
            }
            _ => {}
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn grey_and_rgb_of_small_pictures() {
        let g = image::GrayImage::from_raw(2, 1, vec![0, 255]).unwrap();
        let d = decode(&encode(g.into(), ImageFormat::Png), "g.png").unwrap();
        assert_eq!((d.height(), d.width(), d.has_colour()), (1, 2, false));
        assert_eq!(d.grey(), vec![0.0, 1.0]);
        assert_eq!(d.rgb8(), vec![0, 0, 0, 255, 255, 255]);
        let c = image::RgbaImage::from_raw(1, 1, vec![255, 0, 0, 7]).unwrap();
        let d = decode(&encode(c.into(), ImageFormat::Png), "c.png").unwrap();
        assert_eq!(d.rgb8(), vec![255, 0, 0], "alpha is dropped, as Pillow's convert(\"RGB\")");
        assert!((d.grey()[0] - 0.299).abs() < 1e-6);
        assert_eq!(d.rgb_planar(), vec![1.0, 0.0, 0.0]);
        let g16 = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(1, 1, vec![257u16 * 3]).unwrap();
        let d = decode(&encode(DynamicImage::ImageLuma16(g16), ImageFormat::Png), "g16.png").unwrap();
        assert_eq!(d.rgb8(), vec![3, 3, 3]);
        assert_eq!(d.grey(), vec![771.0 / 65535.0]);
    }

    #[test]
    fn pnm_ascii_and_garbage() {
        assert_eq!(decode(b"P2\n2 1\n# c\n4\n0 4\n", "x.pgm").unwrap().grey(), vec![0.0, 1.0]);
        for (b, name, want) in [
            (&b""[..], "e.png", "empty file"),
            (b"hello, not a picture", "t.jpg", "not a recognised image"),
            (b"\x89PNG\r\n\x1a\nxx", "bad.png", "corrupt"),
            (b"P5\n4 4\n255\n\x00", "short.pgm", "corrupt"),
        ] {
            let e = decode(b, name).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(want), "{e}");
        }
    }

    /// A header claiming more than the caps, or more than the bytes can hold, is refused
    /// before the buffer is allocated (issue 11's 100000×100000 PNG aborted).
    #[test]
    fn header_sizes_are_checked_before_allocating() {
        for (w, h, want) in [(100_000u32, 100_000u32, "exceeds"), (8000, 8000, "more than its")] {
            let e = decode(&png_header(w, h), "huge.png").unwrap_err().to_string();
            assert!(e.contains("huge.png") && e.contains(want), "{e}");
        }
        let e = decode(b"P5 30000 2000 255\n\x00", "big.pgm").unwrap_err().to_string();
        assert!(e.contains("big.pgm") && e.contains("more than its"), "{e}");
        let e = decode(b"P5 4294967296 4294967296 255\n\x00", "wrap.pgm").unwrap_err().to_string();
        assert!(e.contains("wrap.pgm"), "{e}");
    }

    /// A PNG with its signature, IHDR chunk (grey, 8 bits) and a short IDAT.
    pub(crate) fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        for body in [ihdr, b"IDAT\x78\x9c\x63\x60\x00\x00".to_vec()] {
            v.extend_from_slice(&(body.len() as u32 - 4).to_be_bytes());
            v.extend_from_slice(&body);
            v.extend_from_slice(&crc(&body).to_be_bytes());
        }
        v
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
