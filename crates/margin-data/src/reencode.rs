//! JPEG re-encoding of a prepared picture: the "same picture saved again" of a
//! near-duplicate, used by `margin train` to make the augmented copies its dedup threshold
//! is calibrated on. Levels in `[0, 1]` (planar, 1 or 3 channels) are rounded to 8 bits,
//! encoded at a JPEG quality by the `image` crate's encoder, decoded by margin's own
//! decoder ([`crate::decode`], as a file on disk would be) and written back as levels.

use image::ExtendedColorType;
use image::codecs::jpeg::JpegEncoder;

use crate::DataError;

/// The JPEG quality of the calibration copies (libjpeg's / Pillow's default is 75).
pub const JPEG_QUALITY: u8 = 75;

/// Re-encodes the `c × h × w` levels `planar` (c = 1 or 3, values clamped to `[0, 1]`) as
/// JPEG at `quality` and decodes them back in place.
///
/// # Errors
/// A channel count other than 1 or 3, a buffer of the wrong length, or an encoder error.
pub fn jpeg_round_trip(planar: &mut [f32], c: usize, h: usize, w: usize, quality: u8) -> Result<(), DataError> {
    let n = h * w;
    if !(c == 1 || c == 3) || planar.len() != c * n || n == 0 {
        return Err(DataError::Format { path: "JPEG re-encoding".into(), reason: format!("needs 1 or 3 channels of {h} × {w}, got {} values for {c} channels", planar.len()) });
    }
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let interleaved: Vec<u8> = (0..n).flat_map(|p| (0..c).map(move |k| (p, k))).map(|(p, k)| byte(planar[k * n + p])).collect();
    let mut jpeg = Vec::new();
    let colour = if c == 1 { ExtendedColorType::L8 } else { ExtendedColorType::Rgb8 };
    JpegEncoder::new_with_quality(&mut jpeg, quality)
        .encode(&interleaved, w as u32, h as u32, colour)
        .map_err(|e| DataError::Format { path: "JPEG re-encoding".into(), reason: e.to_string() })?;
    let d = crate::decode::decode(&jpeg, "re-encoded JPEG")?;
    let back = if c == 1 { d.grey() } else { d.rgb_planar() };
    if back.len() != planar.len() {
        return Err(DataError::Format { path: "JPEG re-encoding".into(), reason: format!("decoded {} values, expected {}", back.len(), planar.len()) });
    }
    planar.copy_from_slice(&back);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_changes_a_textured_picture_a_little() {
        for c in [1usize, 3] {
            let (h, w) = (16, 16);
            let orig: Vec<f32> = (0..c * h * w).map(|i| ((i * 37 % 97) as f32 / 96.0) * 0.6 + 0.2).collect();
            let mut v = orig.clone();
            jpeg_round_trip(&mut v, c, h, w, JPEG_QUALITY).unwrap();
            let diff = v.iter().zip(&orig).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff > 1.0 / 255.0 && diff < 0.6, "{c} channels: max change {diff}");
        }
        assert!(jpeg_round_trip(&mut [0.0; 8], 2, 2, 2, 75).is_err());
    }
}
