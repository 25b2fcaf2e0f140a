//! Grey images and resampling: [`decode_grey`] (any format [`crate::decode`] reads, to
//! grey levels in `[0, 1]`) and area resizing. Folders and zips of images are
//! [`crate::image_folder`]; the photo preprocessing (RGB, resize modes, normalisation) is
//! [`crate::preprocess`].

use super::DataError;
use crate::limits::MAX_IMAGE_SIDE;

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

/// Decodes an image file's bytes to grey levels in `[0, 1]` (`(pixels, h, w)`, the
/// rules of [`crate::decode::Decoded::grey`]); `what` names the file in errors.
pub fn decode_grey(bytes: &[u8], what: &str) -> Result<(Vec<f32>, usize, usize), DataError> {
    let d = crate::decode::decode(bytes, what)?;
    Ok((d.grey(), d.height(), d.width()))
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
    fn pgm_decodes_to_grey() {
        let mut b = b"P5\n2 1\n255\n".to_vec();
        b.extend_from_slice(&[0, 255]);
        assert_eq!(decode_grey(&b, "x.pgm").unwrap(), (vec![0.0, 1.0], 1, 2));
        // 16-bit samples, big-endian, at full precision.
        assert_eq!(decode_grey(b"P5 1 1 65535\n\xff\xff", "x.pgm").unwrap().0, vec![1.0]);
        let e = decode_grey(&b"P5\n4 4\n255\n\x00"[..], "x.pgm").unwrap_err().to_string();
        assert!(e.contains("x.pgm"), "{e}");
    }

    /// Issue 11: `w · h` wrapped on 64 bits, passed the size check, and `area_resize`
    /// panicked; now refused by the image cap.
    #[test]
    fn pgm_header_overflow_is_refused() {
        for b in [&b"P5 4294967296 4294967296 255\n\x00"[..], b"P5 99999999999999999999999 1 255\n\x00", b"P5 40000 40000 255\n\x00"] {
            let e = decode_grey(b, "big.pgm").unwrap_err().to_string();
            assert!(e.contains("big.pgm"), "{e}");
        }
    }

    #[test]
    fn pgm_maxval_and_samples_are_checked() {
        for m in ["0", "65536", "18446744073709551615"] {
            let e = decode_grey(format!("P5 1 1 {m}\n\x00\x00").as_bytes(), "m.pgm").unwrap_err().to_string();
            assert!(e.contains("m.pgm"), "{e}");
        }
        let e = decode_grey(b"P2 2 1 4 1 nan", "s.pgm").unwrap_err().to_string();
        assert!(e.contains("s.pgm"), "{e}");
        // A sample above maxval (invalid Netpbm) is clamped to maxval by the decoder:
        // never a level above 1. (Maxvals other than 255 and 65535 are rescaled to 8 bits.)
        let g = decode_grey(b"P2 2 1 4 1 5", "s.pgm").unwrap().0;
        assert!((g[0] - 0.25).abs() < 1.0 / 255.0 && g[1] == 1.0, "{g:?}");
    }
}
