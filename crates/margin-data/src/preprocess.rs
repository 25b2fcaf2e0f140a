//! Image preprocessing as a typed spec ([`ImagePreprocess`]): how a decoded picture
//! ([`crate::decode::Decoded`]) becomes the model's input tensor `[c, size, size]`. The
//! spec is stored in the model card ([`crate::card::Preprocessing::Image`]) by training
//! and applied by `margin embed`, through this one function ([`ImagePreprocess::apply`]),
//! so training and embedding can never prepare pictures differently.
//!
//! Steps, in order: **channels** (`grey` | `rgb`; a colour picture given to a grey spec
//! is an error naming `preprocessing.channels`, never a silent conversion), **resize**
//! (`shorter_side` then a centre crop — torchvision's `Resize(s)` + `CenterCrop(size)`;
//! `pad_square` — pad the short side with `pad` to a square, then resize; `squash` — to
//! `size × size` ignoring the aspect ratio), **filter** (`bilinear`: Pillow's antialiased
//! triangle filter, what torchvision's `Resize` uses on pictures; `area`: box averaging,
//! margin's grey-drawing resize), **invert** (grey: ink = 1 − grey), **scaling** (values
//! in `[0, 1]` or `[0, 255]`), **normalisation** (`none`, `imagenet` — torchvision's
//! mean/std — or explicit `mean_std`). Agreement with torchvision's standard eval
//! preprocessing on `../shared/golden/images` is `tests/preprocess_golden.rs`.

use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::decode::Decoded;
use crate::images::area_resize;

/// The model's input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// One grey channel.
    Grey,
    /// Red, green, blue.
    Rgb,
}

/// How a picture is brought to `size × size`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resize {
    /// The shorter side to `side` (the longer in proportion, truncated as torchvision
    /// does), then the central `size × size` (default `side`: `size · 8 / 7`, 256 for 224).
    ShorterSide {
        /// The shorter side before cropping (default `round(size · 8 / 7)`).
        #[serde(default)]
        side: Option<usize>,
    },
    /// Pad the shorter side equally on both sides with the value `pad` (in `[0, 1]`)
    /// to a square, then resize to `size × size`.
    PadSquare {
        /// The padding value (0: black).
        #[serde(default)]
        pad: f32,
    },
    /// Straight to `size × size`, aspect ratio not kept.
    Squash,
}

/// The resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Pillow's antialiased bilinear (triangle) filter.
    Bilinear,
    /// Box averaging (PyTorch's `interpolate(mode="area")`).
    Area,
}

/// The range of the values before normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// `[0, 1]` (torchvision's `ToTensor`).
    Unit,
    /// `[0, 255]`.
    Byte,
}

/// Per-channel normalisation `(v − mean) / std`, after scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Normalize {
    /// None.
    None,
    /// torchvision's ImageNet statistics ([`IMAGENET_MEAN`], [`IMAGENET_STD`]), for
    /// pretrained backbones.
    Imagenet,
    /// Explicit statistics, one per channel (grey: the first value).
    MeanStd {
        /// Means.
        mean: [f32; 3],
        /// Standard deviations (> 0).
        std: [f32; 3],
    },
}

/// ImageNet channel means (torchvision).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (torchvision).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The whole preprocessing of one picture (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePreprocess {
    /// Input channels.
    pub channels: Channels,
    /// Side of the model's square input.
    pub size: usize,
    /// How the picture is brought to `size × size`.
    #[serde(default = "default_resize")]
    pub resize: Resize,
    /// The resampling filter.
    #[serde(default = "default_filter")]
    pub filter: Filter,
    /// Ink = 1 − grey (grey only; dark drawings on light paper).
    #[serde(default)]
    pub invert: bool,
    /// Value range before normalisation.
    #[serde(default = "default_scaling")]
    pub scaling: Scaling,
    /// Normalisation.
    #[serde(default = "default_normalize")]
    pub normalize: Normalize,
}

fn default_resize() -> Resize {
    Resize::ShorterSide { side: None }
}
fn default_filter() -> Filter {
    Filter::Bilinear
}
fn default_scaling() -> Scaling {
    Scaling::Unit
}
fn default_normalize() -> Normalize {
    Normalize::None
}

impl ImagePreprocess {
    /// torchvision's standard eval preprocessing for ImageNet backbones: RGB, shorter side
    /// 256, centre crop 224, bilinear, `[0, 1]`, ImageNet mean/std.
    pub fn imagenet_eval() -> Self {
        ImagePreprocess {
            channels: Channels::Rgb,
            size: 224,
            resize: Resize::ShorterSide { side: Some(256) },
            filter: Filter::Bilinear,
            invert: false,
            scaling: Scaling::Unit,
            normalize: Normalize::Imagenet,
        }
    }

    /// The number of channels.
    pub fn channel_count(&self) -> usize {
        match self.channels {
            Channels::Grey => 1,
            Channels::Rgb => 3,
        }
    }

    /// The sample shape produced: `[channels, size, size]`.
    pub fn sample_shape(&self) -> Vec<usize> {
        vec![self.channel_count(), self.size, self.size]
    }

    /// Checks the fields (`field` prefixes their names in errors, e.g. `data.preprocess`).
    pub fn validate(&self, field: &'static str) -> Result<(), DataError> {
        crate::limits::check_target_size(self.size, field)?;
        if let Resize::ShorterSide { side: Some(s) } = self.resize
            && (s < self.size || crate::limits::check_target_size(s, field).is_err())
        {
            return Err(DataError::Config { field, value: format!("resize.side = {s}, size = {}", self.size), reason: "the shorter side must be at least the crop size and within the image caps" });
        }
        if let Resize::PadSquare { pad } = self.resize
            && !(0.0..=1.0).contains(&pad)
        {
            return Err(DataError::Config { field, value: format!("resize.pad = {pad}"), reason: "the padding value is a level in [0, 1]" });
        }
        if self.invert && self.channels == Channels::Rgb {
            return Err(DataError::Config { field, value: "invert = true, channels = \"rgb\"".into(), reason: "inversion (ink = 1 - grey) applies to grey input" });
        }
        if let Normalize::MeanStd { mean, std } = self.normalize
            && (mean.iter().chain(&std).any(|v| !v.is_finite()) || std.iter().any(|&s| s <= 0.0))
        {
            return Err(DataError::Config { field, value: format!("normalize mean {mean:?}, std {std:?}"), reason: "means must be finite and standard deviations finite and > 0" });
        }
        Ok(())
    }

    /// Prepares `img` (decoded from `what`) into `out` (`[c, size, size]` values).
    pub fn apply(&self, img: &Decoded, what: &str, out: &mut [f32]) -> Result<(), DataError> {
        let c = self.channel_count();
        let n = self.size * self.size;
        if out.len() != c * n {
            return Err(DataError::Split(format!("{what}: an output of {} values for a [{c}, {s}, {s}] sample", out.len(), s = self.size)));
        }
        let (h, w) = (img.height(), img.width());
        let planes = match self.channels {
            Channels::Grey if img.has_colour() => {
                return Err(DataError::Format {
                    path: what.to_string(),
                    reason: "a colour image, but the model takes grey input (preprocessing.channels = \"grey\"); convert the images to grey, or train with channels = \"rgb\"".into(),
                });
            }
            Channels::Grey => img.grey(),
            Channels::Rgb => img.rgb_planar(),
        };
        for (k, plane) in planes.chunks_exact(h * w).enumerate() {
            let dst = &mut out[k * n..(k + 1) * n];
            self.resize_plane(plane, h, w, dst);
            let (mean, std) = match self.normalize {
                Normalize::None => (0.0, 1.0),
                Normalize::Imagenet => (IMAGENET_MEAN[k], IMAGENET_STD[k]),
                Normalize::MeanStd { mean, std } => (mean[k], std[k]),
            };
            let scale = if self.scaling == Scaling::Byte { 255.0 } else { 1.0 };
            for v in dst.iter_mut() {
                let v0 = if self.invert { crate::omniglot::ink(*v) } else { *v };
                *v = (v0 * scale - mean) / std;
            }
        }
        Ok(())
    }

    fn resize_plane(&self, src: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        let s = self.size;
        let resample = |src: &[f32], h: usize, w: usize, oh: usize, ow: usize| -> Vec<f32> {
            let mut o = vec![0f32; oh * ow];
            match self.filter {
                Filter::Area => area_resize(src, h, w, &mut o, oh, ow),
                Filter::Bilinear => bilinear_resize(src, h, w, &mut o, oh, ow),
            }
            o
        };
        match self.resize {
            Resize::Squash => dst.copy_from_slice(&resample(src, h, w, s, s)),
            Resize::PadSquare { pad } => {
                let m = h.max(w);
                let (t, l) = ((m - h) / 2, (m - w) / 2);
                let mut sq = vec![pad; m * m];
                for r in 0..h {
                    sq[(t + r) * m + l..(t + r) * m + l + w].copy_from_slice(&src[r * w..(r + 1) * w]);
                }
                dst.copy_from_slice(&resample(&sq, m, m, s, s));
            }
            Resize::ShorterSide { side } => {
                let side = side.unwrap_or((s * 8 + 3) / 7);
                // torchvision: the longer side is `int(side · long / short)`.
                let (rh, rw) = if h <= w { (side, (side * w / h).max(1)) } else { ((side * h / w).max(1), side) };
                let big = resample(src, h, w, rh, rw);
                // torchvision's CenterCrop: top = int(round((rh − s) / 2)), likewise left.
                let (t, l) = (((rh - s) as f64 / 2.0).round() as usize, ((rw - s) as f64 / 2.0).round() as usize);
                for r in 0..s {
                    dst[r * s..(r + 1) * s].copy_from_slice(&big[(t + r) * rw + l..(t + r) * rw + l + s]);
                }
            }
        }
    }
}

/// Pillow's antialiased bilinear resampling (`Image.resize(…, BILINEAR)`, the triangle
/// filter widened by the downscaling factor), in floats, separable: horizontal pass, then
/// vertical. Sides ≥ 1.
pub fn bilinear_resize(src: &[f32], h: usize, w: usize, dst: &mut [f32], oh: usize, ow: usize) {
    assert!(src.len() == h * w && dst.len() == oh * ow && h > 0 && w > 0 && oh > 0 && ow > 0, "bilinear_resize: sizes");
    let hw = weights(w, ow);
    let mut tmp = vec![0f32; h * ow];
    for r in 0..h {
        let row = &src[r * w..(r + 1) * w];
        for (x, (start, ws)) in hw.iter().enumerate() {
            tmp[r * ow + x] = ws.iter().enumerate().map(|(k, wt)| wt * row[start + k]).sum();
        }
    }
    let vw = weights(h, oh);
    for (y, (start, ws)) in vw.iter().enumerate() {
        let out = &mut dst[y * ow..(y + 1) * ow];
        out.iter_mut().for_each(|v| *v = 0.0);
        for (k, wt) in ws.iter().enumerate() {
            let row = &tmp[(start + k) * ow..(start + k + 1) * ow];
            out.iter_mut().zip(row).for_each(|(o, v)| *o += wt * v);
        }
    }
}

/// Per output pixel: the first input index and the normalised weights (Pillow's
/// `precompute_coeffs` with the bilinear filter, support 1).
fn weights(inp: usize, out: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = inp as f64 / out as f64;
    let fscale = scale.max(1.0);
    let support = fscale;
    (0..out)
        .map(|x| {
            let center = (x as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((center + support + 0.5).floor() as usize).min(inp);
            let mut ws: Vec<f64> = (lo..hi).map(|i| (1.0 - ((i as f64 - center + 0.5) / fscale).abs()).max(0.0)).collect();
            let sum: f64 = ws.iter().sum();
            if sum > 0.0 {
                ws.iter_mut().for_each(|v| *v /= sum);
            }
            (lo, ws.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_constants_and_halves_exactly() {
        let src = vec![0.5f32; 6 * 4];
        let mut dst = vec![0f32; 3 * 2];
        bilinear_resize(&src, 6, 4, &mut dst, 3, 2);
        assert!(dst.iter().all(|v| (v - 0.5).abs() < 1e-6));
        // Halving [0, 1, 2, 3] with the widened triangle: weights 1/8, 3/8, 3/8, 1/8 at the
        // centre 1 (edge-truncated and renormalised): output 0 = (0·3 + 1·3 + 2·1) / 7.
        let src = [0.0, 1.0, 2.0, 3.0];
        let mut dst = [0f32; 2];
        bilinear_resize(&src, 1, 4, &mut dst, 1, 2);
        assert!((dst[0] - 5.0 / 7.0).abs() < 1e-6 && (dst[1] - (3.0 - 5.0 / 7.0)).abs() < 1e-6, "{dst:?}");
        // Identity size is the identity.
        let mut same = [0f32; 4];
        bilinear_resize(&src, 1, 4, &mut same, 1, 4);
        assert_eq!(same, src);
    }

    #[test]
    fn specs_read_from_toml_and_are_checked() {
        let p: ImagePreprocess = toml::from_str("channels = \"rgb\"\nsize = 224\nnormalize = { kind = \"imagenet\" }\nresize = { kind = \"shorter_side\", side = 256 }").unwrap();
        assert_eq!(p, ImagePreprocess::imagenet_eval());
        p.validate("data.preprocess").unwrap();
        let bad = ImagePreprocess { resize: Resize::ShorterSide { side: Some(100) }, ..p };
        assert!(bad.validate("data.preprocess").unwrap_err().to_string().contains("data.preprocess"));
        let bad = ImagePreprocess { invert: true, ..p };
        assert!(bad.validate("data.preprocess").is_err());
        assert!(toml::from_str::<ImagePreprocess>("channels = \"cmyk\"\nsize = 2").is_err());
    }
}
