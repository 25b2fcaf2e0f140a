//! The text evaluation protocols, from data files to the `metrics.json` document — named
//! in the configuration and in the output (`"protocol": "closed-set"` / `"open-set"`).
//!
//! - **closed-set** (CLINC150's and BANKING77's standard): train and test share the
//!   intents and are split by utterance. Allowed only when the configuration says so
//!   (`allow_shared_intents = true`); the leakage check then refuses any utterance on both
//!   sides (CLINC150's standard split has two: `drop_shared_utterances = true` removes
//!   them from test, and the count is reported). Reports in-scope accuracy (nearest
//!   neighbour and class centroid against the training set), test MAP@R / P@1 (test
//!   against itself, leave-one-out), and — for CLINC150 — out-of-scope rejection (AUROC,
//!   FPR@95%TPR with the nearest training distance as score, and accuracy at the
//!   threshold chosen on `val` + `oos_val`, applied to `test` + `oos_test`).
//! - **open-set** (the metric-learning default): a seeded class-disjoint split of the
//!   intents; MAP@R / P@1 on the test utterances of the held-out intents, with the
//!   leakage check on intents.
//!
//! The embedder is a closure (texts → row-major `f32` rows), so the protocols run on a
//! fake embedder in tests and on any encoder (frozen or fine-tuned) in a run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use margin_data::text::{self, TableFormat, TextColumns, TextSet};
use margin_data::{ClassSplit, DataError, check_names_disjoint};
use margin_eval::intent::{self, Classification, Rejection, ThresholdAccuracy};
use margin_eval::{Distance, Embeddings, Labelled, RetrievalConfig, RetrievalReport, retrieval};
use serde::{Deserialize, Serialize};

/// Where the labelled utterances come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TextData {
    /// CLINC150's `data_full.json` (with its out-of-scope sets).
    Clinc150 {
        /// The file.
        path: PathBuf,
    },
    /// Two labelled tables (BANKING77's `train.csv` / `test.csv`).
    Labelled {
        /// Training file.
        train: PathBuf,
        /// Test file.
        test: PathBuf,
        /// Text column.
        text_column: String,
        /// Label column.
        label_column: String,
    },
}

/// The evaluation protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TextProtocol {
    /// Train and test share intents, split by utterance.
    ClosedSet {
        /// Must be true: the configuration's statement that sharing intents is intended.
        allow_shared_intents: bool,
        /// Remove from test the utterances also in train (else they are refused).
        #[serde(default)]
        drop_shared_utterances: bool,
    },
    /// Held-out intents never seen in training.
    OpenSet {
        /// Fraction of the intents held out.
        test_fraction: f64,
        /// Seed of the intent split.
        seed: u64,
    },
}

/// The loaded sets of a protocol.
struct Sets {
    train: TextSet,
    test: TextSet,
    /// CLINC150: (val, oos_val, oos_test).
    oos: Option<(TextSet, TextSet, TextSet)>,
}

fn load(data: &TextData) -> Result<Sets, DataError> {
    Ok(match data {
        TextData::Clinc150 { path } => {
            let c = text::load_clinc150(path)?;
            Sets { train: c.train, test: c.test, oos: Some((c.val, c.oos_val, c.oos_test)) }
        }
        TextData::Labelled { train, test, text_column, label_column } => {
            let cols = TextColumns { text: text_column.clone(), label: label_column.clone() };
            let mut tr = text::load_labelled(train, &TableFormat::for_path(train), &cols)?;
            let mut te = text::load_labelled(test, &TableFormat::for_path(test), &cols)?;
            text::share_classes(&mut [&mut tr, &mut te]);
            Sets { train: tr, test: te, oos: None }
        }
    })
}

/// Out-of-scope detection on CLINC150.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfScope {
    /// `test` vs `oos_test`, the nearest training distance as score.
    pub test: Rejection,
    /// The threshold chosen on `val` + `oos_val` and its accuracy there.
    pub val: ThresholdAccuracy,
    /// That threshold applied to `test` + `oos_test`.
    pub test_at_val_threshold: ThresholdAccuracy,
}

/// The `metrics.json` of a text evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextMetrics {
    /// `"closed-set"` or `"open-set"`, with its settings.
    pub protocol: TextProtocol,
    /// The data.
    pub data: TextData,
    /// The distance used (`cosine`).
    pub distance: Distance,
    /// Intents in training / in test.
    pub n_train_intents: usize,
    /// Intents evaluated.
    pub n_test_intents: usize,
    /// Test utterances removed because they are also in train (closed-set, on request).
    pub removed_shared_utterances: usize,
    /// In-scope accuracy against the training set (closed-set only).
    pub classification: Option<Classification>,
    /// Test against itself (leave-one-out): P@1, MAP@R, …
    pub retrieval: RetrievalReport,
    /// CLINC150 only.
    pub out_of_scope: Option<OutOfScope>,
}

/// Why a text evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum TextEvalError {
    /// Reading or splitting the data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A metric refused its input.
    #[error(transparent)]
    Eval(#[from] margin_eval::EvalError),
    /// The embedder failed.
    #[error("embedding {what}: {reason}")]
    Embed {
        /// The set.
        what: String,
        /// The embedder's message.
        reason: String,
    },
}

/// Runs `protocol` on `data` with `embed` (texts → rows of `dim` values).
pub fn evaluate_text<E: std::fmt::Display>(
    data: &TextData,
    protocol: &TextProtocol,
    dim: usize,
    embed: &mut dyn FnMut(&[String]) -> Result<Vec<f32>, E>,
) -> Result<TextMetrics, TextEvalError> {
    let sets = load(data)?;
    let distance = Distance::Cosine;
    let mut run = |s: &TextSet| embed(s.texts()).map_err(|e| TextEvalError::Embed { what: margin_data::Samples::name(s).to_string(), reason: e.to_string() });
    match protocol {
        TextProtocol::ClosedSet { allow_shared_intents, drop_shared_utterances } => {
            if !allow_shared_intents {
                return Err(DataError::Config {
                    field: "eval.allow_shared_intents",
                    value: "false".into(),
                    reason: "the closed-set protocol shares intents between train and test; set it to true to say that is intended, or use the open-set protocol",
                }
                .into());
            }
            let (test, removed) = if *drop_shared_utterances { text::without_shared_text(&sets.train, &sets.test) } else { (sets.test.clone(), 0) };
            text::check_no_shared_text(&sets.train, &test)?;
            let (etr, ete) = (run(&sets.train)?, run(&test)?);
            let tr = Labelled::new(Embeddings::new("train", &etr, dim)?, "train labels", sets.train.labels())?;
            let te = Labelled::new(Embeddings::new("test", &ete, dim)?, "test labels", test.labels())?;
            let classification = intent::classification(&te, &tr, distance)?;
            let retrieval = retrieval(&te, None, distance, &RetrievalConfig::default())?;
            let out_of_scope = match &sets.oos {
                None => None,
                Some((val, oos_val, oos_test)) => {
                    let score = |e: &[f32], s: &TextSet| -> Result<(Vec<bool>, Vec<f64>), TextEvalError> {
                        let (l, d) = intent::nearest(&Embeddings::new(margin_data::Samples::name(s), e, dim)?, &tr, distance)?;
                        Ok((l.iter().zip(s.labels()).map(|(a, b)| a == b).collect(), d))
                    };
                    let (ev, eov, eot) = (run(val)?, run(oos_val)?, run(oos_test)?);
                    let ((cv, dv), (_, dov)) = (score(&ev, val)?, score(&eov, oos_val)?);
                    let ((ct, dt), (_, dot)) = (score(&ete, &test)?, score(&eot, oos_test)?);
                    let t = intent::choose_threshold(&cv, &dv, &dov)?;
                    Some(OutOfScope {
                        test: intent::rejection(&dt, &dot)?,
                        val: intent::accuracy_at(t, &cv, &dv, &dov),
                        test_at_val_threshold: intent::accuracy_at(t, &ct, &dt, &dot),
                    })
                }
            };
            Ok(TextMetrics {
                protocol: protocol.clone(),
                data: data.clone(),
                distance,
                n_train_intents: sets.train.labels().iter().collect::<BTreeSet<_>>().len(),
                n_test_intents: test.labels().iter().collect::<BTreeSet<_>>().len(),
                removed_shared_utterances: removed,
                classification: Some(classification),
                retrieval,
                out_of_scope,
            })
        }
        TextProtocol::OpenSet { test_fraction, seed } => {
            let classes: Vec<i64> = sets.train.labels().iter().chain(sets.test.labels()).copied().collect::<BTreeSet<_>>().into_iter().collect();
            let split = ClassSplit::random(&classes, 0.0, *test_fraction, *seed)?;
            split.check()?;
            let names = |ids: &[i64]| ids.iter().map(|&c| sets.train.classes()[c as usize].clone()).collect::<BTreeSet<String>>();
            let train = sets.train.with_class_names(&names(&split.train), "train (training intents)");
            let test = sets.test.with_class_names(&names(&split.test), "test (held-out intents)");
            let present = |t: &TextSet| t.labels().iter().map(|&l| t.classes()[l as usize].clone()).collect::<BTreeSet<String>>();
            let (tr, te) = (present(&train), present(&test));
            check_names_disjoint("train", &tr.iter().map(String::as_str).collect(), "test", &te.iter().map(String::as_str).collect())?;
            let ete = run(&test)?;
            let te = Labelled::new(Embeddings::new("test", &ete, dim)?, "test labels", test.labels())?;
            Ok(TextMetrics {
                protocol: protocol.clone(),
                data: data.clone(),
                distance,
                n_train_intents: split.train.len(),
                n_test_intents: split.test.len(),
                removed_shared_utterances: 0,
                classification: None,
                retrieval: retrieval(&te, None, distance, &RetrievalConfig::default())?,
                out_of_scope: None,
            })
        }
    }
}

/// The utterances a run under `protocol` trains on: the whole training file (closed-set),
/// or its utterances of the training intents of the protocol's seeded intent split
/// (open-set: the same split [`evaluate_text`] holds out).
pub fn training_set(data: &TextData, protocol: &TextProtocol) -> Result<TextSet, TextEvalError> {
    let sets = load(data)?;
    match protocol {
        TextProtocol::ClosedSet { .. } => Ok(sets.train),
        TextProtocol::OpenSet { test_fraction, seed } => {
            let classes: Vec<i64> = sets.train.labels().iter().chain(sets.test.labels()).copied().collect::<BTreeSet<_>>().into_iter().collect();
            let split = ClassSplit::random(&classes, 0.0, *test_fraction, *seed)?;
            let names: BTreeSet<String> = split.train.iter().map(|&c| sets.train.classes()[c as usize].clone()).collect();
            Ok(sets.train.with_class_names(&names, "train (training intents)"))
        }
    }
}

/// STS-B: Spearman correlation of the cosine similarity of each pair with its gold score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StsMetrics {
    /// The file.
    pub file: PathBuf,
    /// Pairs.
    pub n_pairs: usize,
    /// Spearman's ρ (× 1, not × 100).
    pub spearman_cosine: f64,
}

/// [`StsMetrics`] of `embed` on an STS-B file.
pub fn evaluate_sts<E: std::fmt::Display>(path: &Path, dim: usize, embed: &mut dyn FnMut(&[String]) -> Result<Vec<f32>, E>) -> Result<StsMetrics, TextEvalError> {
    let p = text::load_sts(path)?;
    let what = path.display().to_string();
    let mut run = |t: &[String]| embed(t).map_err(|e| TextEvalError::Embed { what: what.clone(), reason: e.to_string() });
    let (a, b) = (run(&p.a)?, run(&p.b)?);
    let cos: Vec<f64> = a.chunks(dim).zip(b.chunks(dim)).map(|(x, y)| Distance::Cosine.between(x, y)).map(|d| 1.0 - d).collect();
    Ok(StsMetrics { file: path.to_path_buf(), n_pairs: p.scores.len(), spearman_cosine: margin_eval::correlation::spearman(&cos, &p.scores)? })
}
