//! The report's first view: a seeded sample of test queries with their top-5 neighbours
//! (green border = same class, red = different), and the class pairs most often each
//! other's nearest neighbour. Everything comes from margin-train's [`Gallery`] (one kNN on
//! the test embeddings); thumbnails are small PNG data URIs, so the page stays one file.

use std::fmt::Write;

use base64::Engine;
use margin_train::gallery::Gallery;

use super::{class_label, esc};

/// Longest thumbnail side in pixels.
const THUMB: usize = 64;

pub use margin_train::gallery::confused_pairs;

/// A PNG data URI of one picture (`[c, h, w]` levels in `[0, 1]`), nearest-sampled to at most
/// [`THUMB`] pixels a side.
pub fn thumbnail(px: &[f32], [c, h, w]: [usize; 3]) -> Option<String> {
    let s = (h.max(w) as f64 / THUMB as f64).max(1.0);
    let (th, tw) = (((h as f64 / s).round() as usize).max(1), ((w as f64 / s).round() as usize).max(1));
    let mut rgb = Vec::with_capacity(th * tw * 3);
    for y in 0..th {
        for x in 0..tw {
            let sy = (((y as f64 + 0.5) * s) as usize).min(h - 1);
            let sx = (((x as f64 + 0.5) * s) as usize).min(w - 1);
            for ch in 0..3 {
                let v = px[(ch.min(c - 1) * h + sy) * w + sx];
                rgb.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
    }
    let mut png = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::write_image(enc, &rgb, tw as u32, th as u32, image::ExtendedColorType::Rgb8).ok()?;
    Some(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png)))
}

fn tile(g: &Gallery, i: usize, caption: &str, border: &str) -> String {
    let pic = g.shape.and_then(|s| g.pixels.get(&i).and_then(|p| thumbnail(p, s)));
    let body = match pic {
        Some(uri) => format!(r#"<img src="{uri}" alt="test item {i}">"#),
        None => format!(r#"<div class="noimg">#{i}</div>"#),
    };
    format!(r#"<figure class="nb {border}">{body}<figcaption>{}</figcaption></figure>"#, esc(caption))
}

/// The gallery section's HTML (empty without a gallery).
pub fn section(g: Option<&Gallery>, labels: &[i64], names: &[String]) -> String {
    let Some(g) = g else { return String::new() };
    let nb = &g.neighbours;
    let mut s = String::from("<h2>Nearest neighbours of sample test queries</h2>");
    if g.shape.is_none() {
        s += r#"<p class="note">Feature-vector data: no pictures; sample ids and class names shown.</p>"#;
    }
    s += r#"<div class="panel gallery">"#;
    for &q in &g.queries {
        let _ = write!(s, r#"<div class="row">{}<span class="arrow">→</span>"#, tile(g, q, &class_label(names, labels[q]), "query"));
        for (&j, &d) in nb.indices_of(q).iter().zip(nb.values_of(q)) {
            let j = j as usize;
            let border = if labels[j] == labels[q] { "same" } else { "diff" };
            s += &tile(g, j, &format!("{} · {d:.3}", class_label(names, labels[j])), border);
        }
        s += "</div>";
    }
    s += "</div>";
    let nearest: Vec<u32> = (0..nb.n_queries).map(|i| nb.indices_of(i)[0]).collect();
    let pairs = confused_pairs(&nearest, labels, 10);
    s += "<h2>Most confused class pairs</h2><table>";
    if pairs.is_empty() {
        s += "<tr><td>Every test item's nearest neighbour is of its own class.</td><td></td></tr>";
    }
    for ((a, b), n) in pairs {
        let _ = write!(s, "<tr><td>{} ↔ {}</td><td>{n} nearest-neighbour confusions</td></tr>", esc(&class_label(names, a)), esc(&class_label(names, b)));
    }
    s += "</table>";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_is_a_decodable_png_at_most_64_a_side() {
        let px: Vec<f32> = (0..3 * 100 * 80).map(|k| (k % 7) as f32 / 6.0).collect();
        let uri = thumbnail(&px, [3, 100, 80]).unwrap();
        let b = uri.strip_prefix("data:image/png;base64,").unwrap();
        let png = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), (51, 64));
    }
}
