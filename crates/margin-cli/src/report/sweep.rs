//! `report.html` of `margin sweep`: one self-contained page (inline SVG, the run report's
//! CSS and chart helper, no scripts) — the best run, validation metric against each
//! parameter, the active-fraction curves of every run on one chart (the seed's "monitor the
//! fraction of active constraints"), the loss curves (what a loss without a hinge is judged
//! by), the verdict table and `best.toml`.

use std::fmt::Write;

use margin_train::sweep::grid::GridParam;
use margin_train::sweep::record::StepCurves;
use margin_train::sweep::verdict::{FLAT_LOSS_DROP, LATE_WINDOW, SATURATED_ACTIVE_FRACTION, STALL_ACTIVE_FRACTION};
use margin_train::sweep::{RunRecord, Verdict};

use super::{Chart, PALETTE, STYLE, card, esc};

/// Everything the sweep report shows.
pub struct SweepReportInput<'a> {
    /// Page title.
    pub title: String,
    /// The grid.
    pub params: &'a [GridParam],
    /// Every run, in grid order.
    pub records: &'a [RunRecord],
    /// The best run's grid index.
    pub best: Option<usize>,
    /// `best.toml`.
    pub best_toml: Option<&'a str>,
    /// Epochs of each run.
    pub run_epochs: usize,
}

fn colour(i: usize) -> String {
    PALETTE[i % PALETTE.len()].to_string()
}

/// A value's position on a parameter's axis: numbers as they are (log10 when they are all
/// positive and span 20× or more), anything else by its position in the grid.
struct Axis {
    label: String,
    xs: Vec<f64>,
}

fn axis(p: &GridParam) -> Axis {
    let nums: Option<Vec<f64>> = p.values.iter().map(serde_json::Value::as_f64).collect();
    match nums {
        Some(v) if v.iter().all(|x| *x > 0.0) && v.iter().cloned().fold(f64::NAN, f64::max) / v.iter().cloned().fold(f64::NAN, f64::min) >= 20.0 => {
            Axis { label: format!("log10 {}", p.path), xs: v.iter().map(|x| x.log10()).collect() }
        }
        Some(v) => Axis { label: p.path.clone(), xs: v },
        None => {
            let names: Vec<String> = p.values.iter().enumerate().map(|(i, v)| format!("{i} = {v}")).collect();
            Axis { label: format!("{} ({})", p.path, names.join(", ")), xs: (0..p.values.len()).map(|i| i as f64).collect() }
        }
    }
}

/// Validation metrics against parameter `k`: with one parameter MAP@R, P@1 and AUC; with
/// more, MAP@R with one line per setting of the others.
fn metric_chart(inp: &SweepReportInput, k: usize) -> String {
    let p = &inp.params[k];
    let ax = axis(p);
    let x_of = |r: &RunRecord| p.values.iter().position(|v| *v == r.params[k].value).map(|i| ax.xs[i]);
    let mut series = Vec::new();
    if inp.params.len() == 1 {
        type Pick = fn(&margin_train::sweep::ValMetrics) -> f64;
        let picks: [(&str, Pick); 3] = [("MAP@R", |m| m.map_at_r), ("P@1", |m| m.precision_at_1), ("AUC", |m| m.auc)];
        for (i, (name, pick)) in picks.into_iter().enumerate() {
            let mut pts: Vec<(f64, f64)> = inp.records.iter().filter_map(|r| Some((x_of(r)?, pick(&r.metrics?)))).collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push((name.to_string(), colour(i), pts, false));
        }
    } else {
        let others = |r: &RunRecord| r.params.iter().enumerate().filter(|(j, _)| *j != k).map(|(_, q)| format!("{}={}", q.path, q.value)).collect::<Vec<_>>().join(", ");
        let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for r in inp.records {
            let (Some(x), Some(m)) = (x_of(r), r.metrics) else { continue };
            let g = others(r);
            match groups.iter_mut().find(|(name, _)| *name == g) {
                Some((_, pts)) => pts.push((x, m.map_at_r)),
                None => groups.push((g, vec![(x, m.map_at_r)])),
            }
        }
        let named = groups.len() <= 4;
        for (i, (name, mut pts)) in groups.into_iter().enumerate() {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push((if named { name } else { String::new() }, colour(i), pts, i >= PALETTE.len()));
        }
    }
    let what = if inp.params.len() == 1 { "Validation metrics" } else { "Validation MAP@R" };
    Chart { w: 520.0, h: 260.0, title: format!("{what} vs {}", p.path), x_label: ax.label, series, y_min: None, y_max: None, square: false, marks: vec![] }.svg()
}

/// `values` smoothed by an exponential moving average, at x = fractional epoch.
fn per_epoch(steps: &StepCurves, values: &[f64]) -> Vec<(f64, f64)> {
    let mut m = f64::NAN;
    let mut out = Vec::with_capacity(values.len());
    let mut i = 0;
    while i < values.len() {
        let e = steps.epoch[i];
        let n = steps.epoch[i..].iter().take_while(|x| **x == e).count();
        for j in 0..n {
            let y = values[i + j];
            m = if m.is_nan() { y } else { 0.9 * m + 0.1 * y };
            out.push(((e - 1) as f64 + (j + 1) as f64 / n as f64, m));
        }
        i += n;
    }
    let thin = (out.len() / 400).max(1);
    out.into_iter().step_by(thin).collect()
}

fn active_of(s: &StepCurves) -> &[f64] {
    &s.active_fraction
}

fn loss_of(s: &StepCurves) -> &[f64] {
    &s.loss
}

/// One curve per run (named by its number in the table).
fn curves_chart(inp: &SweepReportInput, title: &str, pick: fn(&StepCurves) -> &[f64], y_max: Option<f64>) -> String {
    let named = inp.records.len() <= 8;
    let series = inp
        .records
        .iter()
        .map(|r| (if named { format!("#{}", r.index + 1) } else { String::new() }, colour(r.index), per_epoch(&r.steps, pick(&r.steps)), r.index >= PALETTE.len()))
        .collect();
    Chart { w: 520.0, h: 260.0, title: title.into(), x_label: "epoch (per step, smoothed)".into(), series, y_min: Some(0.0), y_max, square: false, marks: vec![] }.svg()
}

fn verdict_table(inp: &SweepReportInput) -> String {
    let f = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{x:.4}"));
    let mut rows = String::from("<tr><th>#</th><th>params</th><th>MAP@R</th><th>P@1</th><th>AUC</th><th>late active</th><th>loss drop</th><th>verdict</th><th>wall</th></tr>");
    for r in inp.records {
        let m = r.metrics;
        let best = inp.best == Some(r.index);
        let class = match r.diagnosis.verdict {
            Verdict::Ok | Verdict::NoHinge => "",
            _ => " class=\"bad\"",
        };
        let _ = write!(
            rows,
            "<tr{}><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td><td>{:.1} s</td></tr>",
            if best { " class=\"best\"" } else { "" },
            r.index + 1,
            if best { " ★" } else { "" },
            esc(&r.label()),
            f(m.map(|m| m.map_at_r)),
            f(m.map(|m| m.precision_at_1)),
            f(m.map(|m| m.auc)),
            f(r.diagnosis.late_active_fraction),
            f(r.diagnosis.loss_drop),
            esc(r.diagnosis.verdict.words()),
            r.wall_seconds
        );
    }
    format!("<table class=\"sweep\">{rows}</table>")
}

/// Renders the page.
pub fn render(inp: &SweepReportInput) -> String {
    let best = inp.best.and_then(|i| inp.records.iter().find(|r| r.index == i));
    let mut cards = card("Runs", inp.records.len().to_string(), &format!("{} epoch(s) each", inp.run_epochs));
    if let Some(b) = best
        && let Some(m) = b.metrics
    {
        cards += &card("Best validation MAP@R", format!("{:.3}", m.map_at_r), &b.label());
        cards += &card("Its P@1 / AUC", format!("{:.3} / {:.3}", m.precision_at_1, m.auc), &format!("run #{}", b.index + 1));
    }
    if let Some(r) = inp.records.first() {
        let v = &r.validation;
        let from = match v.source {
            margin_train::sweep::ValidationSource::Configuration => "the configuration's validation classes".to_string(),
            margin_train::sweep::ValidationSource::HeldOut => format!("{:.0}% of the training classes, held out", 100.0 * margin_train::sweep::VALIDATION_FRACTION),
        };
        cards += &card("Validation", format!("{} classes", v.classes.len()), &format!("{} samples: {from}; never the test classes", v.samples));
    }
    let mut charts = String::new();
    for k in 0..inp.params.len() {
        let _ = write!(charts, "<div class=\"panel\">{}</div>", metric_chart(inp, k));
    }
    let _ = write!(charts, "<div class=\"panel\">{}</div>", curves_chart(inp, "Active fraction of every run", active_of, Some(1.0)));
    let _ = write!(charts, "<div class=\"panel\">{}</div>", curves_chart(inp, "Training loss of every run", loss_of, None));
    let rules = format!(
        "Verdicts for losses with a hinge: the mean active fraction over the last {:.0}% of the steps at or below {STALL_ACTIVE_FRACTION} — margin too small or easy batches (collapse/stall); at or above {SATURATED_ACTIVE_FRACTION} with a loss that fell by less than {:.0}% — margin too large. Losses without a hinge are judged by their loss curve.",
        100.0 * LATE_WINDOW,
        100.0 * FLAT_LOSS_DROP
    );
    let best_toml = inp.best_toml.map(|t| format!("<h2>best.toml</h2><p class=\"note\">The original configuration with the best run's values: its own epochs and split, not the sweep's.</p><pre>{}</pre>", esc(t))).unwrap_or_default();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title><style>
{STYLE}th{{text-align:left;padding:7px 14px;border-bottom:1px solid var(--line);font-weight:600}}table.sweep td{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}table.sweep td:nth-child(2),table.sweep td:nth-child(8){{text-align:left;white-space:normal}}tr.best{{background:#ecfdf5}}td.bad{{color:#b91c1c;font-weight:600}}</style></head><body><header><h1>{title}</h1><p>Short runs validated on training classes held out of training · distances between L2-normalised embeddings</p></header><main>
<div class="cards">{cards}</div>
<h2>Runs</h2>{table}<p class="note">{rules}</p>
<div class="grid">{charts}</div>
{best_toml}
<footer>Generated by margin {ver}. Self-contained page: no scripts, no network.</footer></main></body></html>"#,
        title = esc(&inp.title),
        table = verdict_table(inp),
        rules = esc(&rules),
        ver = env!("CARGO_PKG_VERSION"),
    )
}
