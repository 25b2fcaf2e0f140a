//! `report.html`: one self-contained page (inline SVG and CSS, no scripts, no network).
//!
//! Sections: headline metrics, training curves (loss; active fraction with d_ap/d_an),
//! same- vs different-class distance histograms, ROC with the EER point, a 2-D PCA
//! map of test embeddings for a sample of classes, the full metrics table and the
//! resolved configuration.

use std::fmt::Write;

mod gallery;
pub(crate) mod sweep;

use margin_eval::{EvalReport, OneShotReport, TarAtFar};

/// Everything the report shows.
pub struct ReportInput<'a> {
    /// Page title.
    pub title: String,
    /// The resolved configuration.
    pub config_toml: String,
    /// train_log.jsonl content.
    pub log: &'a str,
    /// Final evaluation.
    pub eval: &'a EvalReport,
    /// Omniglot one-shot result.
    pub one_shot: Option<&'a OneShotReport>,
    /// metrics.json.
    pub metrics: &'a serde_json::Value,
    /// Test embeddings (row-major).
    pub embeddings: &'a [f32],
    /// Embedding dimension.
    pub dim: usize,
    /// Test labels.
    pub labels: &'a [i64],
    /// The class-name table `labels` index (the legend shows names).
    pub class_names: &'a [String],
    /// Classes shown in the PCA map.
    pub map_classes: usize,
    /// Seed of the class sample.
    pub seed: u64,
    /// Top-5 neighbours and the shown pictures (margin-train's one test kNN).
    pub gallery: Option<&'a margin_train::gallery::Gallery>,
}

/// The pages' CSS (the run report and the sweep report share it).
const STYLE: &str = r#":root{--ink:#1d2330;--mute:#6b7280;--line:#e5e7eb;--bg:#f7f8fa}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#24324a,#3d5a80);color:#fff;padding:26px 36px}header h1{margin:0;font-size:22px;font-weight:600}header p{margin:4px 0 0;opacity:.8}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:14px;margin:-44px 0 24px}
.card{background:#fff;border-radius:10px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}.card .v{font-size:28px;font-weight:650;letter-spacing:-.5px}.card .l{font-weight:600}.card .n{color:var(--mute);font-size:12.5px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
.panel{background:#fff;border-radius:10px;padding:10px 12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
svg.chart{width:100%;height:auto;display:block}.ct{font-size:13px;font-weight:600;fill:var(--ink)}.tick{font-size:10.5px;fill:var(--mute)}.mark{fill:#e15759;font-weight:600}
line.grid{stroke:var(--line);stroke-width:1}line.axis{stroke:#9ca3af}line.diag{stroke:#d1d5db;stroke-dasharray:3 3}
h2{font-size:16px;margin:28px 0 10px}table{border-collapse:collapse;width:100%;background:#fff;border-radius:10px;overflow:hidden;box-shadow:0 1px 3px rgba(0,0,0,.08)}
td{padding:7px 14px;border-bottom:1px solid var(--line)}td:last-child{text-align:right;font-variant-numeric:tabular-nums}tr:last-child td{border-bottom:0}
pre{background:#fff;padding:14px;border-radius:10px;overflow:auto;font-size:12.5px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.warn{background:#fff7ed;border:1px solid #fdba74;border-radius:10px;padding:4px 18px;margin-top:16px}
.gallery .row{display:flex;align-items:flex-start;gap:6px;margin:6px 0}.nb{margin:0;width:76px;text-align:center;font-size:10.5px;color:var(--mute)}
.nb img,.nb .noimg{width:68px;height:68px;object-fit:contain;border:3px solid #9ca3af;border-radius:4px;image-rendering:pixelated;background:#fff;display:block;margin:0 auto}
.nb .noimg{line-height:62px;font-size:11px}.nb.same img,.nb.same .noimg{border-color:#16a34a}.nb.diff img,.nb.diff .noimg{border-color:#dc2626}.nb.query img,.nb.query .noimg{border-color:#24324a}
.arrow{align-self:center;color:var(--mute);padding:0 4px}.note{color:var(--mute)}
footer{color:var(--mute);font-size:12px;margin-top:28px}
"#;

const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A line chart: several series over a shared x axis.
struct Chart {
    w: f64,
    h: f64,
    title: String,
    x_label: String,
    series: Vec<(String, String, Vec<(f64, f64)>, bool)>, // name, colour, points, dashed
    y_min: Option<f64>,
    y_max: Option<f64>,
    square: bool,
    marks: Vec<(f64, f64, String)>,
}

fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(hi > lo) {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(raw);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 * step {
        out.push(t);
        t += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{:.0}", v)
    } else if v.fract().abs() < 1e-9 {
        format!("{:.0}", v)
    } else {
        let s = format!("{:.3}", v);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Chart {
    fn svg(&self) -> String {
        let (ml, mr, mt, mb) = (52.0, 14.0, 44.0, 40.0);
        let pw = self.w - ml - mr;
        let ph = self.h - mt - mb;
        let pts = self.series.iter().flat_map(|s| s.2.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts {
            if x.is_finite() && y.is_finite() {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
        if !x0.is_finite() {
            return String::new();
        }
        if let Some(v) = self.y_min {
            y0 = v;
        }
        if let Some(v) = self.y_max {
            y1 = v;
        }
        if self.square {
            x0 = x0.min(y0);
            y0 = x0;
            x1 = x1.max(y1);
            y1 = x1;
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let pad = (y1 - y0) * 0.04;
        if self.y_min.is_none() && !self.square {
            y0 -= pad;
        }
        if self.y_max.is_none() && !self.square {
            y1 += pad;
        }
        let sx = |x: f64| ml + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| mt + ph - (y - y0) / (y1 - y0) * ph;
        let mut s = String::new();
        let _ = write!(s, r#"<svg viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="{t}"><text x="{ml}" y="18" class="ct">{t}</text>"#, w = self.w, h = self.h, t = esc(&self.title));
        for t in nice_ticks(y0, y1, 5) {
            let y = sy(t);
            let _ = write!(s, r#"<line x1="{ml}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{l}</text>"#, x2 = ml + pw, tx = ml - 6.0, ty = y + 4.0, l = fmt_tick(t));
        }
        for t in nice_ticks(x0, x1, 6) {
            let x = sx(t);
            let _ = write!(s, r#"<line x1="{x:.1}" x2="{x:.1}" y1="{mt}" y2="{y2}" class="grid"/><text x="{x:.1}" y="{ty}" class="tick" text-anchor="middle">{l}</text>"#, y2 = mt + ph, ty = mt + ph + 16.0, l = fmt_tick(t));
        }
        let _ = write!(s, r#"<text x="{x}" y="{y}" class="tick" text-anchor="middle">{l}</text>"#, x = ml + pw / 2.0, y = self.h - 6.0, l = esc(&self.x_label));
        if self.square {
            let _ = write!(s, r#"<line x1="{}" y1="{}" x2="{}" y2="{}" class="diag"/>"#, sx(x0), sy(y0), sx(x1), sy(y1));
        }
        for (_, colour, p, dashed) in &self.series {
            let d: Vec<String> = p.iter().filter(|(x, y)| x.is_finite() && y.is_finite()).map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y.clamp(y0, y1)))).collect();
            let _ = write!(s, r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="{}" {}/>"#, d.join(" "), if *dashed { 1.2 } else { 1.8 }, if *dashed { r#"stroke-dasharray="4 3""# } else { "" });
        }
        for (x, y, label) in &self.marks {
            let _ = write!(s, r##"<circle cx="{:.1}" cy="{:.1}" r="5" fill="#e15759" stroke="white" stroke-width="1.5"/><text x="{:.1}" y="{:.1}" class="tick mark">{}</text>"##, sx(*x), sy(*y), sx(*x) + 9.0, sy(*y) + 4.0, esc(label));
        }
        // Legend, right-aligned in the title row (never over the data).
        let named: Vec<_> = self.series.iter().filter(|s| !s.0.is_empty()).collect();
        let width: f64 = named.iter().map(|s| 30.0 + 5.6 * s.0.chars().count() as f64).sum();
        let mut lx = self.w - mr - width;
        for (name, colour, _, dashed) in named {
            let _ = write!(s, r#"<line x1="{lx}" x2="{x2}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2" {d}/><text x="{tx}" y="{ty}" class="tick">{n}</text>"#, x2 = lx + 16.0, y = 30.0, d = if *dashed { r#"stroke-dasharray="4 3""# } else { "" }, tx = lx + 20.0, ty = 34.0, n = esc(name));
            lx += 30.0 + 5.6 * name.chars().count() as f64;
        }
        s.push_str("</svg>");
        s
    }
}

fn histogram_svg(eval: &EvalReport) -> String {
    let Some(v) = &eval.verification else { return String::new() };
    let h = &v.histogram;
    if h.edges.len() < 2 {
        return String::new();
    }
    let (w, ht) = (520.0, 260.0);
    let (ml, mr, mt, mb) = (52.0, 14.0, 44.0, 40.0);
    let (pw, ph) = (w - ml - mr, ht - mt - mb);
    let ng: u64 = h.genuine.iter().sum::<u64>().max(1);
    let ni: u64 = h.impostor.iter().sum::<u64>().max(1);
    let dens = |c: u64, n: u64| c as f64 / n as f64;
    let ymax = h.genuine.iter().map(|&c| dens(c, ng)).chain(h.impostor.iter().map(|&c| dens(c, ni))).fold(0.0, f64::max).max(1e-9);
    let (x0, x1) = (h.edges[0], *h.edges.last().unwrap());
    let sx = |x: f64| ml + (x - x0) / (x1 - x0).max(1e-12) * pw;
    let sy = |y: f64| mt + ph - y / ymax * ph;
    let mut s = String::new();
    let _ = write!(s, r#"<svg viewBox="0 0 {w} {ht}" class="chart" role="img"><text x="{ml}" y="18" class="ct">Pair distances, unseen classes</text>"#);
    for t in nice_ticks(x0, x1, 6) {
        let _ = write!(s, r#"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"#, sx(t), mt + ph + 16.0, fmt_tick(t));
    }
    let _ = write!(s, r#"<line x1="{ml}" x2="{}" y1="{}" y2="{}" class="axis"/>"#, ml + pw, mt + ph, mt + ph);
    for (counts, n, colour) in [(&h.impostor, ni, "#e15759"), (&h.genuine, ng, "#4e79a7")] {
        for (b, &c) in counts.iter().enumerate() {
            let (a, z) = (sx(h.edges[b]), sx(h.edges[b + 1]));
            let y = sy(dens(c, n));
            let _ = write!(s, r#"<rect x="{a:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{colour}" fill-opacity="0.55"/>"#, (z - a).max(0.5), mt + ph - y);
        }
    }
    let thr = v.metrics.eer_threshold;
    if thr.is_finite() && thr >= x0 && thr <= x1 {
        let _ = write!(s, r##"<line x1="{x:.1}" x2="{x:.1}" y1="{mt}" y2="{}" stroke="#333" stroke-dasharray="3 3"/><text x="{:.1}" y="{}" class="tick">EER threshold {:.3}</text>"##, mt + ph, sx(thr) + 4.0, mt + 12.0, thr, x = sx(thr));
    }
    let _ = write!(s, r##"<rect x="{a}" y="{b}" width="10" height="10" fill="#4e79a7" fill-opacity="0.6"/><text x="{c}" y="{d}" class="tick">same class ({ng})</text><rect x="{a2}" y="{e}" width="10" height="10" fill="#e15759" fill-opacity="0.6"/><text x="{c2}" y="{f}" class="tick">different class ({ni})</text>"##,
        a = ml + pw - 300.0, a2 = ml + pw - 140.0, c2 = ml + pw - 126.0, b = 25.0, c = ml + pw - 286.0, d = 34.0, e = 25.0, f = 34.0);
    let _ = write!(s, r#"<text x="{}" y="{}" class="tick" text-anchor="middle">{} distance between L2-normalised embeddings</text></svg>"#, ml + pw / 2.0, ht - 6.0, v.distance.name());
    s
}

fn roc_svg(eval: &EvalReport) -> String {
    let Some(v) = &eval.verification else { return String::new() };
    let m = &v.metrics;
    // Thin the ROC to ≤ 600 points for a light page.
    let step = (m.roc.len() / 600).max(1);
    let mut pts: Vec<(f64, f64)> = m.roc.iter().step_by(step).map(|p| (p.far, p.tar)).collect();
    if let Some(l) = m.roc.last() {
        pts.push((l.far, l.tar));
    }
    Chart {
        w: 520.0,
        h: 260.0,
        title: format!("ROC (AUC {:.4})", m.auc),
        x_label: "false accept rate".into(),
        series: vec![(String::new(), "#4e79a7".into(), pts, false)],
        y_min: Some(0.0),
        y_max: Some(1.0),
        square: true,
        marks: vec![(m.eer, 1.0 - m.eer, format!("EER {:.2}%", 100.0 * m.eer))],
    }
    .svg()
}

/// Top-2 principal components (power iteration with deflation), data centred.
fn pca2(x: &[f64], n: usize, d: usize) -> Vec<(f64, f64)> {
    let mut mean = vec![0.0; d];
    for i in 0..n {
        for j in 0..d {
            mean[j] += x[i * d + j] / n as f64;
        }
    }
    let c: Vec<f64> = (0..n * d).map(|k| x[k] - mean[k % d]).collect();
    let mut cov = vec![0.0; d * d];
    for i in 0..n {
        let r = &c[i * d..(i + 1) * d];
        for a in 0..d {
            for b in 0..d {
                cov[a * d + b] += r[a] * r[b];
            }
        }
    }
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for k in 0..2 {
        let mut v: Vec<f64> = (0..d).map(|j| 1.0 + ((j * 7 + k * 13) % 5) as f64 * 0.1).collect();
        for _ in 0..200 {
            let mut nv = vec![0.0; d];
            for a in 0..d {
                nv[a] = (0..d).map(|b| cov[a * d + b] * v[b]).sum();
            }
            for u in &comps {
                let p: f64 = nv.iter().zip(u).map(|(a, b)| a * b).sum();
                nv.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
            }
            let norm = nv.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
            v = nv.into_iter().map(|a| a / norm).collect();
        }
        comps.push(v);
    }
    (0..n)
        .map(|i| {
            let r = &c[i * d..(i + 1) * d];
            (r.iter().zip(&comps[0]).map(|(a, b)| a * b).sum(), r.iter().zip(&comps[1]).map(|(a, b)| a * b).sum())
        })
        .collect()
}

fn pca_svg(inp: &ReportInput) -> String {
    let classes: Vec<i64> = inp.labels.iter().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if classes.len() < 2 || inp.dim == 0 {
        return String::new();
    }
    // A seeded, evenly spread sample of classes.
    let k = inp.map_classes.min(classes.len()).min(PALETTE.len());
    let off = (inp.seed as usize) % classes.len();
    let chosen: Vec<i64> = (0..k).map(|i| classes[(off + i * classes.len() / k) % classes.len()]).collect();
    let idx: Vec<usize> = (0..inp.labels.len()).filter(|&i| chosen.contains(&inp.labels[i])).take(4000).collect();
    let x: Vec<f64> = idx.iter().flat_map(|&i| inp.embeddings[i * inp.dim..(i + 1) * inp.dim].iter().map(|&v| v as f64)).collect();
    let p = pca2(&x, idx.len(), inp.dim);
    let (w, h) = (1040.0, 560.0);
    let m = 24.0;
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(a, b) in &p {
        x0 = x0.min(a);
        x1 = x1.max(a);
        y0 = y0.min(b);
        y1 = y1.max(b);
    }
    let sx = |a: f64| m + (a - x0) / (x1 - x0).max(1e-12) * (w - 2.0 * m - 130.0);
    let sy = |b: f64| 30.0 + (y1 - b) / (y1 - y0).max(1e-12) * (h - 30.0 - m);
    let mut s = String::new();
    let _ = write!(s, r#"<svg viewBox="0 0 {w} {h}" class="chart" role="img"><text x="{m}" y="18" class="ct">Test embeddings, first two principal components ({k} unseen classes)</text>"#);
    for (j, &i) in idx.iter().enumerate() {
        let ci = chosen.iter().position(|&c| c == inp.labels[i]).unwrap_or(0);
        let _ = write!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3.2" fill="{}" fill-opacity="0.8"/>"#, sx(p[j].0), sy(p[j].1), PALETTE[ci]);
    }
    for (ci, c) in chosen.iter().enumerate() {
        let y = 40.0 + ci as f64 * 18.0;
        let _ = write!(s, r#"<circle cx="{}" cy="{y}" r="5" fill="{}"/><text x="{}" y="{}" class="tick">{}</text>"#, w - 120.0, PALETTE[ci], w - 110.0, y + 4.0, esc(&class_label(inp.class_names, *c)));
    }
    s.push_str("</svg>");
    s
}

/// A class's name for the legend (its label when the table lacks it), shortened to fit.
fn class_label(names: &[String], c: i64) -> String {
    let name = usize::try_from(c).ok().and_then(|k| names.get(k)).cloned().unwrap_or_else(|| format!("class {c}"));
    if name.chars().count() > 16 { format!("{}…", name.chars().take(15).collect::<String>()) } else { name }
}

fn curves(log: &str) -> (String, String) {
    let mut steps: Vec<(f64, f64, f64)> = Vec::new();
    let mut epochs: Vec<serde_json::Value> = Vec::new();
    let mut steps_per_epoch = 1.0;
    for l in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else { continue };
        match v["kind"].as_str() {
            Some("step") => steps.push((v["step"].as_f64().unwrap_or(0.0), v["loss"].as_f64().unwrap_or(f64::NAN), v["active_fraction"].as_f64().unwrap_or(f64::NAN))),
            Some("epoch") => epochs.push(v),
            _ => {}
        }
    }
    if let Some(e) = epochs.first() {
        let n = steps.iter().filter(|s| s.0 > 0.0).count() as f64;
        steps_per_epoch = (n / epochs.len() as f64).max(1.0);
        let _ = e;
    }
    // Smooth per-step values with an exponential moving average.
    let ema = |vals: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        let mut m = f64::NAN;
        vals.into_iter()
            .map(|(x, y)| {
                m = if m.is_nan() { y } else { 0.9 * m + 0.1 * y };
                (x / steps_per_epoch, m)
            })
            .collect()
    };
    let thin = |v: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        let step = (v.len() / 800).max(1);
        v.into_iter().step_by(step).collect()
    };
    let loss_raw: Vec<(f64, f64)> = thin(steps.iter().map(|s| (s.0 / steps_per_epoch, s.1)).collect());
    let loss = thin(ema(steps.iter().map(|s| (s.0, s.1)).collect()));
    let act = thin(ema(steps.iter().map(|s| (s.0, s.2)).collect()));
    let ep = |key: &str| -> Vec<(f64, f64)> { epochs.iter().filter_map(|e| Some((e["epoch"].as_f64()?, e[key].as_f64()?))).collect() };
    let mut loss_series = vec![("loss per step".to_string(), "#c9d6e8".to_string(), loss_raw, false), ("smoothed".to_string(), "#4e79a7".to_string(), loss, false)];
    let val = ep("val_map_at_r");
    if !val.is_empty() {
        loss_series.push(("val MAP@R".into(), "#59a14f".into(), val, true));
    }
    let c1 = Chart { w: 520.0, h: 260.0, title: "Training loss".into(), x_label: "epoch".into(), series: loss_series, y_min: Some(0.0), y_max: None, square: false, marks: vec![] }.svg();
    let c2 = Chart {
        w: 520.0,
        h: 260.0,
        title: "Active fraction and mean distances".into(),
        x_label: "epoch".into(),
        series: vec![
            ("active fraction".into(), "#f28e2b".into(), act, false),
            ("d(a,p)".into(), "#4e79a7".into(), ep("mean_ap_dist"), true),
            ("d(a,n)".into(), "#e15759".into(), ep("mean_an_dist"), true),
        ],
        y_min: Some(0.0),
        y_max: None,
        square: false,
        marks: vec![],
    }
    .svg();
    (c1, c2)
}

fn card(label: &str, value: String, note: &str) -> String {
    format!(r#"<div class="card"><div class="v">{value}</div><div class="l">{}</div><div class="n">{}</div></div>"#, esc(label), esc(note))
}

/// Renders the page.
pub fn render(inp: &ReportInput) -> String {
    let e = inp.eval;
    let r = &e.retrieval;
    let m = inp.metrics;
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let mut cards = String::new();
    if let Some(o) = inp.one_shot {
        cards += &card("20-way one-shot", pct(o.accuracy), "Omniglot, 20 standard runs (PyTorch ref. 89.8%)");
    }
    cards += &card("MAP@R", format!("{:.3}", r.map_at_r), "unseen classes (PyTorch ref. 0.430)");
    cards += &card("P@1", format!("{:.3}", r.precision_at_1), "nearest neighbour is same class");
    if let Some(v) = &e.verification {
        cards += &card("Verification AUC", format!("{:.4}", v.metrics.auc), &format!("EER {}", pct(v.metrics.eer)));
    }
    let ips = m["train"]["images_per_s"].as_f64().unwrap_or(0.0);
    cards += &card("Throughput", format!("{ips:.0} img/s"), &format!("training, {:.0} s (PyTorch ref. 1321 img/s)", m["train"]["train_seconds"].as_f64().unwrap_or(0.0)));
    let (c1, c2) = curves(inp.log);
    let mut rows = String::new();
    let mut row = |k: &str, v: String| {
        let _ = write!(rows, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    };
    row("Test queries / classes", format!("{} / {}", e.n_queries, e.n_query_classes));
    row("Precision@1", format!("{:.4}", r.precision_at_1));
    for ra in &r.recall_at {
        row(&format!("Recall@{}", ra.k), format!("{:.4}", ra.value));
    }
    row("R-Precision", format!("{:.4}", r.r_precision));
    row("MAP@R", format!("{:.4}", r.map_at_r));
    if let Some(x) = r.mrr {
        row("MRR", format!("{x:.4}"));
    }
    if let Some(c) = &e.clustering {
        row("NMI (k-means)", format!("{:.4}", c.nmi));
        row("AMI (k-means)", format!("{:.4}", c.ami));
    }
    if let Some(v) = &e.verification {
        row("Verification AUC", format!("{:.4}", v.metrics.auc));
        row("EER", format!("{:.4}", v.metrics.eer));
        for t in &v.metrics.tar_at_far {
            match t {
                TarAtFar::Estimated { far_target, tar, .. } => row(&format!("TAR @ FAR {far_target:e}"), format!("{tar:.4}")),
                TarAtFar::NotEstimable { far_target, impostors, required } => {
                    row(&format!("TAR @ FAR {far_target:e}"), format!("not estimable ({impostors} impostor pairs, {required} needed)"))
                }
            }
        }
        row("Verification pairs", format!("{} same / {} different{}", v.metrics.n_genuine, v.metrics.n_impostor, if v.exhaustive { " (all)" } else { " (sample)" }));
    }
    if let Some(f) = &e.few_shot {
        row(&format!("{}-way {}-shot episodes", f.config.n_way, f.config.k_shot), serde_json::to_value(f).ok().and_then(|v| v["accuracy"].as_f64()).map(|a| format!("{a:.4}")).unwrap_or_default());
    }
    if let Some(o) = inp.one_shot {
        row("Omniglot 20-way one-shot (400 trials)", format!("{:.4} ({} correct)", o.accuracy, o.correct));
    }
    if let Some(u) = m.get("untrained") {
        row("Untrained network MAP@R / P@1", format!("{:.4} / {:.4}", u["map_at_r"].as_f64().unwrap_or(f64::NAN), u["precision_at_1"].as_f64().unwrap_or(f64::NAN)));
    }
    row("Training", format!("{} epochs, {} steps, {:.1} s, {:.0} images/s", m["train"]["epochs"], m["train"]["steps"], m["train"]["train_seconds"].as_f64().unwrap_or(0.0), ips));
    if let Some(t) = m["eval_seconds"].as_f64() {
        row("Evaluation time", format!("{t:.1} s"));
    }
    let mut warn_html = String::new();
    for l in inp.log.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(l)
            && let Some(ws) = v["warnings"].as_array()
        {
            for w in ws {
                let _ = write!(warn_html, "<li>epoch {}: {}</li>", v["epoch"], esc(w.as_str().unwrap_or("")));
            }
        }
    }
    if !warn_html.is_empty() {
        warn_html = format!(r#"<section class="warn"><h2>Warnings</h2><ul>{warn_html}</ul></section>"#);
    }
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title><style>
{style}</style></head><body><header><h1>{title}</h1><p>Embedding quality on classes never seen in training · distances between L2-normalised embeddings</p></header><main>
<div class="cards">{cards}</div>{warn_html}
{gallery}
<div class="grid"><div class="panel">{c1}</div><div class="panel">{c2}</div><div class="panel">{hist}</div><div class="panel">{roc}</div></div>
<h2>Where the unseen classes land</h2><div class="panel">{pca}</div>
<h2>All metrics</h2><table>{rows}</table>
<h2>Configuration</h2><pre>{config}</pre>
<footer>Generated by margin {ver}. Self-contained page: no scripts, no network.</footer></main></body></html>"#,
        title = esc(&inp.title),
        style = STYLE,
        hist = histogram_svg(e),
        roc = roc_svg(e),
        pca = pca_svg(inp),
        gallery = gallery::section(inp.gallery, inp.labels, inp.class_names),
        config = esc(&inp.config_toml),
        ver = env!("CARGO_PKG_VERSION"),
    )
}
