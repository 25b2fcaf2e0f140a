//! The HTML page beside `groups.json`: each group's representative and members with their
//! distances; an id that names an existing PNG or JPEG file (relative to `--root`) of at
//! most [`MAX_INLINE`] bytes is shown as that file inlined as a base64 `data:` URI and
//! scaled by the browser (no image crate: the file's own bytes are the thumbnail); for text
//! inputs each id's text is shown as an escaped snippet (first [`SNIPPET`] characters);
//! every other id as escaped text. One self-contained file, no scripts.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use margin_search::dedup::Groups;

/// Largest image file inlined (bytes).
pub const MAX_INLINE: u64 = 256 * 1024;

/// Characters of a text item shown.
pub const SNIPPET: usize = 240;

/// Groups shown (the JSON holds them all).
const MAX_GROUPS: usize = 1000;

/// The page and how many ids it showed as images.
pub struct Page {
    /// The HTML.
    pub html: String,
    /// Ids shown as inline images.
    pub thumbnails: usize,
}

/// `s` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Standard base64 (RFC 4648, with padding), by the `base64` crate (the report's
/// thumbnails use the same).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The id as an inline image, when it names a small PNG or JPEG file.
fn thumbnail(id: &str, root: &Path) -> Option<String> {
    let lower = id.to_lowercase();
    let mime = if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else {
        return None;
    };
    let p = root.join(id);
    let meta = std::fs::metadata(&p).ok()?;
    if !meta.is_file() || meta.len() > MAX_INLINE {
        return None;
    }
    let bytes = std::fs::read(&p).ok()?;
    Some(format!("<img src=\"data:{mime};base64,{}\" alt=\"{}\">", base64(&bytes), escape(id)))
}

/// The first [`SNIPPET`] characters of `text`, escaped.
fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(SNIPPET).collect();
    if text.chars().nth(SNIPPET).is_some() {
        s.push('…');
    }
    format!("<blockquote>{}</blockquote>", escape(&s))
}

fn cell(out: &mut String, id: &str, distance: Option<f32>, root: &Path, texts: Option<&HashMap<&str, &str>>, thumbs: &mut usize) {
    let img = match texts.and_then(|t| t.get(id)) {
        Some(text) => Some(snippet(text)),
        None => thumbnail(id, root).inspect(|_| *thumbs += 1),
    };
    let d = distance.map_or("representative".to_string(), |d| format!("{d:.4}"));
    let _ = write!(out, "<figure>{}<figcaption>{}<br><small>{d}</small></figcaption></figure>", img.unwrap_or_default(), escape(id));
}

/// The page of `groups`; `texts` maps a text item's id to its text.
pub fn page(groups: &Groups, root: &Path, texts: Option<&HashMap<&str, &str>>) -> Page {
    let mut h = String::from(
        "<!doctype html><meta charset=\"utf-8\"><title>margin dedup</title><style>\
         body{font-family:sans-serif}section{border-top:1px solid #ccc;padding:6px 0}\
         figure{display:inline-block;margin:4px;vertical-align:top;max-width:160px;word-break:break-all}\
         img{max-width:128px;max-height:128px;display:block}small{color:#555}blockquote{margin:0;font-size:90%;white-space:pre-wrap}</style>",
    );
    let _ = write!(
        h,
        "<h1>Near-duplicate groups</h1><p>{} groups, {} singletons; threshold {} ({}) from {}.</p><p>Rule: {}</p>",
        groups.groups.len(),
        groups.singletons,
        groups.threshold,
        escape(&groups.metric),
        escape(&groups.threshold_source),
        escape(&groups.rule)
    );
    let mut thumbs = 0;
    for (i, g) in groups.groups.iter().take(MAX_GROUPS).enumerate() {
        let _ = write!(h, "<section><h3>group {} ({} items)</h3>", i + 1, 1 + g.members.len());
        cell(&mut h, &g.representative, None, root, texts, &mut thumbs);
        for m in &g.members {
            cell(&mut h, &m.id, Some(m.distance), root, texts, &mut thumbs);
        }
        h.push_str("</section>");
    }
    if groups.groups.len() > MAX_GROUPS {
        let _ = write!(h, "<p>… {} more groups in the JSON file.</p>", groups.groups.len() - MAX_GROUPS);
    }
    Page { html: h, thumbnails: thumbs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn image_ids_are_inlined_and_other_ids_listed() {
        let dir = std::env::temp_dir().join(format!("margin-dedup-html-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/x.png"), b"\x89PNG fake").unwrap();
        let a = margin_search::dedup::Assignment { rep: vec![0, 0, 2, 2], dist: vec![0.0, 0.1, 0.0, 0.2] };
        let ids: Vec<String> = ["a/x.png", "a/missing.png", "<t>", "u"].iter().map(|s| s.to_string()).collect();
        let g = Groups::new(&a, &ids, 0.5, "--threshold", "euclidean", 4);
        let p = page(&g, &dir, None);
        assert_eq!(p.thumbnails, 1);
        assert!(p.html.contains(&format!("data:image/png;base64,{}", base64(b"\x89PNG fake"))));
        assert!(p.html.contains("a/missing.png") && p.html.contains("&lt;t&gt;") && !p.html.contains("<t>"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn text_items_show_escaped_snippets() {
        let a = margin_search::dedup::Assignment { rep: vec![0, 0], dist: vec![0.0, 0.1] };
        let ids: Vec<String> = ["t.txt:1", "t.txt:2"].iter().map(|s| s.to_string()).collect();
        let g = Groups::new(&a, &ids, 0.5, "--threshold", "cosine", 2);
        let long = "x".repeat(SNIPPET + 10);
        let texts: HashMap<&str, &str> = [("t.txt:1", "a <b> cat"), ("t.txt:2", long.as_str())].into_iter().collect();
        let p = page(&g, Path::new("."), Some(&texts));
        assert!(p.html.contains("<blockquote>a &lt;b&gt; cat</blockquote>"), "{}", p.html);
        assert!(p.html.contains(&format!("{}…", "x".repeat(SNIPPET))) && !p.html.contains(&long));
        assert_eq!(p.thumbnails, 0);
    }

    #[test]
    fn ids_are_escaped() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
