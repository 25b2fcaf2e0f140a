//! The size limits every reader checks *before* it allocates, and the guard that turns a
//! panic inside a third-party decoder into a [`DataError`].
//!
//! Why: a file header is a claim, not a fact. A 200-byte `.npy` can claim 10¹² elements,
//! a PGM header `4294967296 4294967296` wraps `w · h` on 64 bits, a 60-byte PNG can
//! claim 100000 × 100000 pixels, and a zip member can claim (or expand to) terabytes.
//! So every size computed from a header is computed with checked arithmetic and compared
//! with two bounds before any buffer is sized by it:
//!
//! - **the data actually present** (the file's or zip member's length; for compressed
//!   data, its length times deflate's maximum expansion, [`DEFLATE_MAX_RATIO`]), so a
//!   reader never allocates more than a small multiple of its input;
//! - **a stated cap** on what margin accepts at all: images of at most [`MAX_IMAGE_SIDE`]
//!   pixels a side and [`MAX_IMAGE_PIXELS`] pixels in all, archive members of at most
//!   [`MAX_MEMBER_BYTES`] bytes once decompressed.
//!
//! The image caps: 2¹⁵ = 32768 a side is above every camera and scanner format in use;
//! 2²⁶ ≈ 67 megapixels is above a 61-megapixel full-frame sensor, and one such image held
//! as `f32` grey levels is 256 MiB — margin trains on small grey images (28 × 28 for
//! Omniglot), so anything larger is a mistake or an attack, refused with its size. The
//! same caps bound a requested resize target (`data.image_size`). The member cap, 2³²
//! bytes (4 GiB), is 20 times Omniglot's largest array (212 MB of `bool`s) and bounds a
//! zip bomb whose members claim little and expand to much.
//!
//! Third-party decoders (zip's central directory and deflate, gzip, PNG) are run through
//! [`guarded`]: a bug in them that panics becomes a `DataError` naming the file instead of
//! aborting the whole run (the panic hook still prints the panic's message on stderr).

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::DataError;

/// The largest image side margin decodes or resizes to, in pixels (2¹⁵).
pub const MAX_IMAGE_SIDE: usize = 1 << 15;

/// The most pixels one image may have (2²⁶ ≈ 67 megapixels; 256 MiB as `f32`).
pub const MAX_IMAGE_PIXELS: usize = 1 << 26;

/// The most bytes one archive member (or one gzip stream) may decompress to (4 GiB).
pub const MAX_MEMBER_BYTES: u64 = 1 << 32;

/// Deflate's largest possible expansion: one compressed byte never yields more than 1032
/// (RFC 1951's longest match, 258 bytes, from 2 bits). Declared sizes above
/// `compressed × this` cannot be real data.
pub const DEFLATE_MAX_RATIO: u64 = 1032;

/// Checks an image size `w × h` (from a header) against the caps; `what` names the file.
pub fn check_image_size(w: usize, h: usize, what: &str) -> Result<usize, DataError> {
    let bad = |reason: String| Err(DataError::Format { path: what.to_string(), reason });
    if w == 0 || h == 0 {
        return bad(format!("image size {w}×{h} has no pixel"));
    }
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return bad(format!("image size {w}×{h} exceeds margin's limit of {MAX_IMAGE_SIDE} pixels a side"));
    }
    match w.checked_mul(h) {
        Some(n) if n <= MAX_IMAGE_PIXELS => Ok(n),
        _ => bad(format!("image size {w}×{h} exceeds margin's limit of {MAX_IMAGE_PIXELS} pixels")),
    }
}

/// Checks a requested resize target (`data.image_size`, `size × size`) against the caps.
pub fn check_target_size(size: usize, field: &'static str) -> Result<(), DataError> {
    let ok = size > 0 && size <= MAX_IMAGE_SIDE && size.checked_mul(size).is_some_and(|n| n <= MAX_IMAGE_PIXELS);
    if ok {
        Ok(())
    } else {
        Err(DataError::Config {
            field,
            value: size.to_string(),
            reason: "must be between 1 and 8192 (margin's image cap: 2^15 pixels a side and 2^26 pixels, see margin_data::limits)",
        })
    }
}

thread_local! {
    /// Set while [`crate::fuzzing::run`] runs: [`guarded`] then lets panics through, so the
    /// fuzzers and the replay test see every panic, ours and the decoders', as a failure.
    pub(crate) static STRICT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic inside it (a bug in a third-party decoder) into a
/// [`DataError::Format`] naming `what`.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, DataError>) -> Result<T, DataError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) if STRICT.with(|s| s.get()) => std::panic::resume_unwind(p),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(DataError::Format { path: what.to_string(), reason: format!("the decoder failed on this file (internal error: {msg})") })
        }
    }
}

/// Reads `r` to its end, refusing more than `limit` bytes (a zip bomb or a member longer
/// than it declared): the buffer grows with the data, never sized by a claim.
pub fn read_bounded(r: &mut impl Read, limit: u64, what: &str) -> Result<Vec<u8>, DataError> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| DataError::Format { path: what.to_string(), reason: format!("cannot decompress: {e}") })?;
    if buf.len() as u64 > limit {
        return Err(DataError::Format { path: what.to_string(), reason: format!("decompresses to more than {limit} bytes (the size it declares, or margin's cap)") });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_caps() {
        assert_eq!(check_image_size(4, 3, "x").unwrap(), 12);
        let e = check_image_size(1 << 32, 1 << 32, "x.pgm").unwrap_err().to_string();
        assert!(e.contains("x.pgm") && e.contains("32768 pixels a side"), "{e}");
        let e = check_image_size(1 << 15, 1 << 15, "x.pgm").unwrap_err().to_string();
        assert!(e.contains("67108864 pixels"), "{e}");
        assert!(check_image_size(0, 3, "x").is_err());
        assert!(check_target_size(8192, "data.image_size").is_ok());
        let e = check_target_size(8193, "data.image_size").unwrap_err().to_string();
        assert!(e.contains("data.image_size = 8193"), "{e}");
        assert!(check_target_size(0, "data.image_size").is_err());
    }

    #[test]
    fn guard_and_bounded_read() {
        let e = guarded::<()>("f.zip", || panic!("boom")).unwrap_err().to_string();
        assert!(e.contains("f.zip") && e.contains("boom"), "{e}");
        assert_eq!(read_bounded(&mut &b"abc"[..], 3, "m").unwrap(), b"abc");
        let e = read_bounded(&mut &b"abcd"[..], 3, "m").unwrap_err().to_string();
        assert!(e.contains("more than 3 bytes"), "{e}");
    }
}
