//! `margin eval`: every retrieval, clustering, verification and few-shot
//! metric of a set of labelled embeddings, computed by `margin-eval`.
//!
//! Inputs are `.npy` files: embeddings 2-D `f32` or `f64` (rows = samples),
//! labels 1-D of any integer type (or bool), or `.txt` label files of class names, one
//! a line (what `margin embed --labels-out` writes; `margin_data::label_file`). Query and
//! reference labels are compared by name when either is a `.txt` file (an integer label
//! is named by its decimal form). Without `--reference-*` the
//! query set is searched against itself, each query's own row excluded.
//! Output is a readable table, or the full report as JSON with `--json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use margin_eval::{
    Distance, Embeddings, EvalConfig, EvalReport, FewShotConfig, Labelled, RetrievalConfig,
    TarAtFar, VerificationConfig, evaluate,
};

/// Arguments of `margin eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Query embeddings: .npy, 2-D (rows × dim), f32 or f64.
    #[arg(long, value_name = "E.npy")]
    pub embeddings: PathBuf,
    /// Labels of the query embeddings: .npy, 1-D, any integer type; or .txt, one class
    /// name per line.
    #[arg(long, value_name = "L.npy|L.txt")]
    pub labels: PathBuf,
    /// Reference (gallery) embeddings; default: the queries themselves,
    /// each query's own row excluded.
    #[arg(long, value_name = "R.npy", requires = "reference_labels")]
    pub reference_embeddings: Option<PathBuf>,
    /// Labels of the reference embeddings (.npy or .txt, as --labels).
    #[arg(long, value_name = "RL.npy|RL.txt", requires = "reference_embeddings")]
    pub reference_labels: Option<PathBuf>,
    /// euclidean, squared-euclidean, cosine or dot.
    #[arg(long, default_value = "euclidean", value_parser = parse_distance)]
    pub distance: Distance,
    /// Neighbours for P@k, R-Precision and MAP@R; default: the largest
    /// number of same-label references of any query (the largest class
    /// size, minus one for the query itself without a separate reference).
    #[arg(long, value_parser = crate::flags::count)]
    pub k: Option<usize>,
    /// Verification pairs: all pairs when there are at most this many,
    /// else a seeded sample of this size (half genuine when possible).
    #[arg(long, value_name = "MAX", default_value_t = 1_000_000, value_parser = crate::flags::pairs)]
    pub pairs: usize,
    /// Few-shot episodes as N-way,K-shot,count (e.g. 5,1,1000); default
    /// 5,1,1000, skipped with a note when the data has too few classes.
    #[arg(long, value_name = "N,K,COUNT", value_parser = parse_episodes)]
    pub episodes: Option<(usize, usize, usize)>,
    /// Query examples per class in each few-shot episode.
    #[arg(long, default_value_t = 15, value_parser = crate::flags::count)]
    pub episode_queries: usize,
    /// Seed of k-means++, the pair sample and the episodes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip k-means clustering (NMI, AMI).
    #[arg(long)]
    pub no_clustering: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = crate::flags::count)]
    pub threads: Option<usize>,
    /// Print the full report as JSON (including ROC points and histograms).
    #[arg(long)]
    pub json: bool,
}

fn parse_distance(s: &str) -> Result<Distance, String> {
    s.parse().map_err(|e: margin_eval::EvalError| e.to_string())
}

fn parse_episodes(s: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let nums: Result<Vec<usize>, _> = parts.iter().map(|p| p.parse::<usize>()).collect();
    match nums.as_deref() {
        Ok([n, k, c]) if *n >= 1 && *k >= 1 && *c >= 1 => Ok((*n, *k, *c)),
        _ => Err(format!(
            "expected N-way,K-shot,count with positive integers (e.g. 5,1,1000), got {s:?}"
        )),
    }
}

/// Embeddings read from disk, in their own precision.
enum Matrix {
    F32(Vec<f32>, usize),
    F64(Vec<f64>, usize),
}

impl Matrix {
    fn into_f64(self) -> (Vec<f64>, usize) {
        match self {
            Matrix::F32(v, d) => (v.into_iter().map(f64::from).collect(), d),
            Matrix::F64(v, d) => (v, d),
        }
    }
}

fn read_embeddings(path: &Path) -> anyhow::Result<Matrix> {
    let a = margin_data::npy::read_npy(path)?;
    if a.header.shape.len() != 2 {
        bail!("{}: embeddings must be 2-D (rows × dim), got shape {:?}", path.display(), a.header.shape);
    }
    let dim = a.header.shape[1];
    match a.data {
        margin_data::npy::NpyData::F32(v) => Ok(Matrix::F32(v, dim)),
        margin_data::npy::NpyData::F64(v) => Ok(Matrix::F64(v, dim)),
        margin_data::npy::NpyData::Int(_) => bail!("{}: embeddings must be float32 or float64, found {:?}", path.display(), a.header.dtype),
    }
}

/// The query (and reference) labels: `.npy` integers as they are; when either file is
/// `.txt` (class names), both as indices into one table of names.
fn read_label_files(query: &Path, reference: Option<&Path>) -> anyhow::Result<(Vec<i64>, Option<Vec<i64>>)> {
    let is_txt = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("txt"));
    if !is_txt(query) && reference.is_none_or(|r| !is_txt(r)) {
        return Ok((crate::npy::read_labels(query)?, reference.map(crate::npy::read_labels).transpose()?));
    }
    let names = |p: &Path| -> anyhow::Result<Vec<String>> {
        if is_txt(p) {
            Ok(margin_data::label_file::read_label_names(p)?)
        } else {
            Ok(crate::npy::read_labels(p)?.iter().map(i64::to_string).collect())
        }
    };
    let q = names(query)?;
    let r = reference.map(names).transpose()?;
    let mut lists = vec![q.as_slice()];
    lists.extend(r.as_deref());
    let (mut idx, _) = margin_data::label_file::index_names(&lists);
    let r = r.map(|_| idx.pop().expect("one list per file"));
    Ok((idx.pop().expect("one list per file"), r))
}

/// Runs `margin eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        margin_eval::init_threads(t).context("cannot start worker threads")?;
    }
    let q = read_embeddings(&args.embeddings)?;
    let (ql, rl) = read_label_files(&args.labels, args.reference_labels.as_deref())?;
    let reference = match (&args.reference_embeddings, rl) {
        (Some(e), Some(l)) => Some((read_embeddings(e)?, l)),
        _ => None,
    };
    let config = EvalConfig {
        distance: args.distance,
        retrieval: RetrievalConfig {
            k: args.k,
            ..Default::default()
        },
        clustering: (!args.no_clustering).then(|| margin_eval::ClusteringConfig {
            seed: args.seed,
            ..Default::default()
        }),
        verification: Some(VerificationConfig {
            max_pairs: args.pairs,
            seed: args.seed,
            ..Default::default()
        }),
        few_shot: Some({
            let (n, k, c) = args.episodes.unwrap_or((5, 1, 1000));
            FewShotConfig {
                n_way: n,
                k_shot: k,
                n_query: args.episode_queries,
                episodes: c,
                seed: args.seed,
            }
        }),
    };
    let name = |p: &Path, flag: &str| format!("{flag} {}", p.display());
    // Mixed precisions are evaluated in f64.
    let all_f32 = matches!(q, Matrix::F32(..))
        && reference
            .as_ref()
            .is_none_or(|(r, _)| matches!(r, Matrix::F32(..)));
    let report = if all_f32 {
        let Matrix::F32(qv, qd) = q else {
            unreachable!()
        };
        let rv = reference.map(|(r, l)| match r {
            Matrix::F32(v, d) => (v, d, l),
            Matrix::F64(..) => unreachable!(),
        });
        run_typed(
            &args,
            &config,
            (&qv, qd, &ql),
            rv.as_ref()
                .map(|(v, d, l)| (v.as_slice(), *d, l.as_slice())),
            &name,
        )?
    } else {
        let (qv, qd) = q.into_f64();
        let rv = reference.map(|(r, l)| {
            let (v, d) = r.into_f64();
            (v, d, l)
        });
        run_typed(
            &args,
            &config,
            (&qv, qd, &ql),
            rv.as_ref()
                .map(|(v, d, l)| (v.as_slice(), *d, l.as_slice())),
            &name,
        )?
    };
    if args.episodes.is_some() && report.few_shot.is_none() {
        let why = report
            .skipped
            .iter()
            .find(|s| s.section == "few_shot")
            .map_or("", |s| s.reason.as_str());
        bail!("the requested few-shot episodes cannot be drawn: {why}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

type Input<'a, T> = (&'a [T], usize, &'a [i64]);

fn run_typed<T: margin_eval::Real>(
    args: &EvalArgs,
    config: &EvalConfig,
    query: Input<T>,
    reference: Option<Input<T>>,
    name: &dyn Fn(&Path, &str) -> String,
) -> anyhow::Result<EvalReport> {
    let qe = Embeddings::new(name(&args.embeddings, "--embeddings"), query.0, query.1)?;
    let qs = Labelled::new(qe, name(&args.labels, "--labels"), query.2)?;
    let rs = match (
        reference,
        &args.reference_embeddings,
        &args.reference_labels,
    ) {
        (Some((v, d, l)), Some(pe), Some(pl)) => {
            let re = Embeddings::new(name(pe, "--reference-embeddings"), v, d)?;
            Some(Labelled::new(re, name(pl, "--reference-labels"), l)?)
        }
        _ => None,
    };
    Ok(evaluate(&qs, rs.as_ref(), config)?)
}

/// The readable report.
fn table(r: &EvalReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let src = if r.retrieval.same_source {
        "queries against themselves, own row excluded".to_string()
    } else {
        format!("against {} reference rows", r.n_references)
    };
    let _ = writeln!(
        s,
        "margin eval: {} queries ({src}), dim {}, {} classes (largest {}), distance {}, {}",
        r.n_queries, r.dim, r.n_query_classes, r.largest_query_class, r.distance, r.element_type
    );
    let rt = &r.retrieval;
    let _ = writeln!(
        s,
        "\nRetrieval  (k = {}; {} queries evaluated, {} lone queries without a same-label reference excluded)",
        rt.k, rt.n_evaluated, rt.n_lone_queries
    );
    let row = |s: &mut String, name: &str, v: String| {
        let _ = writeln!(s, "  {name:<26} {v}");
    };
    row(&mut s, "precision@1", format!("{:.4}", rt.precision_at_1));
    row(
        &mut s,
        &format!("precision@{}", rt.k),
        format!("{:.4}", rt.precision_at_k),
    );
    for x in &rt.recall_at {
        row(
            &mut s,
            &format!("recall@{}", x.k),
            format!("{:.4}", x.value),
        );
    }
    row(&mut s, "R-Precision", format!("{:.4}", rt.r_precision));
    row(&mut s, "MAP@R", format!("{:.4}", rt.map_at_r));
    if let Some(m) = rt.mrr {
        row(&mut s, "MRR (full ranking)", format!("{m:.4}"));
    }
    if rt.n_r_truncated > 0 {
        let _ = writeln!(
            s,
            "  note: {} queries have more same-label references than k; R-based metrics use k",
            rt.n_r_truncated
        );
    }
    if let Some(c) = &r.clustering {
        let _ = writeln!(
            s,
            "\nClustering  (k-means++, {} clusters, seed {}, {} iterations{})",
            c.n_clusters,
            c.seed,
            c.iterations,
            if c.converged { "" } else { ", not converged" }
        );
        row(&mut s, "NMI", format!("{:.4}", c.nmi));
        row(&mut s, "AMI", format!("{:.4}", c.ami));
    }
    if let Some(v) = &r.verification {
        let m = &v.metrics;
        let how = if v.exhaustive {
            format!("all {} pairs", v.total_pairs)
        } else {
            format!(
                "seeded sample (seed {}) of {} of {} pairs",
                v.seed,
                m.n_genuine + m.n_impostor,
                v.total_pairs
            )
        };
        let _ = writeln!(
            s,
            "\nVerification  ({how}: {} genuine, {} impostor; {})",
            m.n_genuine, m.n_impostor, v.rule
        );
        row(&mut s, "ROC AUC", format!("{:.4}", m.auc));
        row(
            &mut s,
            "EER",
            format!("{:.4}  (threshold {:.6})", m.eer, m.eer_threshold),
        );
        for t in &m.tar_at_far {
            match t {
                TarAtFar::Estimated {
                    far_target,
                    tar,
                    threshold,
                    ..
                } => row(
                    &mut s,
                    &format!("TAR @ FAR={far_target:e}"),
                    format!(
                        "{tar:.4}  (threshold {})",
                        threshold.map_or("none".into(), |t| format!("{t:.6}"))
                    ),
                ),
                TarAtFar::NotEstimable {
                    far_target,
                    impostors,
                    required,
                } => row(
                    &mut s,
                    &format!("TAR @ FAR={far_target:e}"),
                    format!("not estimable ({impostors} impostor pairs, needs {required})"),
                ),
            }
        }
        row(
            &mut s,
            "best accuracy",
            format!(
                "{:.4}  (threshold {})",
                m.best_accuracy,
                m.best_threshold
                    .map_or("none: reject all".into(), |t| format!("{t:.6}"))
            ),
        );
    }
    if let Some(f) = &r.few_shot {
        let c = &f.config;
        let _ = writeln!(
            s,
            "\nFew-shot  ({}-way {}-shot, {} queries per class, {} episodes, seed {}; {} eligible classes)",
            c.n_way, c.k_shot, c.n_query, c.episodes, c.seed, f.eligible_classes
        );
        row(
            &mut s,
            "accuracy",
            format!("{:.4} ± {:.4} (95% CI)", f.accuracy, f.ci95),
        );
    }
    for k in &r.skipped {
        let _ = writeln!(s, "\nskipped {}: {}", k.section, k.reason);
    }
    let t = &r.seconds;
    let _ = writeln!(
        s,
        "\ntime: retrieval {:.2} s, clustering {:.2} s, verification {:.2} s, few-shot {:.2} s",
        t.retrieval, t.clustering, t.verification, t.few_shot
    );
    s
}
