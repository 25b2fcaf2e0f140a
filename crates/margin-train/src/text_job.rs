//! A whole text run (`margin train --config configs/clinc150.toml`): the configuration
//! ([`TextRunConfig`]: the base encoder folder, the data, the protocol, `[train]`), the
//! frozen baseline, fine-tuning ([`TextTrainer`]), the fine-tuned model saved as a
//! sentence-transformers folder with its card, and the evaluation of both in
//! `metrics.json` — the protocol's figures before and after, side by side.
//!
//! The run folder is the model: `modules.json`, the tokenizer and pooling files and the
//! fine-tuned `model.safetensors` (Hugging Face key names) beside `text_model.json`
//! (margin-data's [`TextModelCard`]), `config.toml`, `train_log.jsonl`, `checkpoints/`
//! and `metrics.json`. So `margin embed --model RUN` (and sentence-transformers itself)
//! loads it as it loads the base folder.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use margin_data::text::{BaseModel, TEXT_CARD_FILE, TEXT_CARD_VERSION, TextModelCard};
use margin_models::text::{SentenceEncoder, file_sha256, identity_files, save_sentence_folder};

use crate::text_eval::{StsMetrics, TextData, TextMetrics, TextProtocol, evaluate_sts, evaluate_text, training_set};
use crate::text_train::{TextStepRecord, TextTrainConfig, TextTrainer};
use crate::{FolderSink, TrainError};

/// The text run format this release writes.
pub const TEXT_RUN_VERSION: u32 = 1;

fn text_run_version() -> u32 {
    TEXT_RUN_VERSION
}

/// A text run's configuration (`config.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextRunConfig {
    /// Format version.
    #[serde(default = "text_run_version")]
    pub version: u32,
    /// The base sentence-transformers folder (`--encoder` overrides it).
    pub encoder: PathBuf,
    /// The labelled utterances.
    pub data: TextData,
    /// The evaluation protocol.
    pub eval: TextProtocol,
    /// Also evaluate the frozen base model (the "before" column).
    #[serde(default = "yes")]
    pub baseline: bool,
    /// An STS-B file to report general similarity on (before and after).
    #[serde(default)]
    pub sts: Option<PathBuf>,
    /// Fine-tuning.
    pub train: TextTrainConfig,
}

fn yes() -> bool {
    true
}

/// Whether a TOML configuration is a text run's (it names an `encoder`).
pub fn is_text_config(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("encoder"))
}

/// Parses and checks a text run's configuration (`source` names it in errors).
pub fn parse_text_config(text: &str, source: &str) -> Result<TextRunConfig, TrainError> {
    let cfg: TextRunConfig = toml::from_str(text).map_err(|e| TrainError::Config { file: source.to_string(), reason: e.to_string() })?;
    if cfg.version > TEXT_RUN_VERSION {
        return Err(TrainError::Config { file: source.to_string(), reason: format!("version {} is newer than this margin reads ({TEXT_RUN_VERSION}); upgrade margin", cfg.version) });
    }
    cfg.train.validate()?;
    Ok(cfg)
}

/// `metrics.json` of a text run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextRunMetrics {
    /// The frozen base model (when `baseline`).
    pub frozen: Option<TextMetrics>,
    /// The fine-tuned model.
    pub fine_tuned: TextMetrics,
    /// STS-B before / after (when `sts`).
    pub sts_frozen: Option<StsMetrics>,
    /// STS-B of the fine-tuned model.
    pub sts_fine_tuned: Option<StsMetrics>,
    /// Optimizer steps, and sentences per second over them.
    pub steps: usize,
    /// Training throughput (sentences per second of step time).
    pub train_sentences_per_s: f64,
}

/// The card of `trainer`'s current model.
pub fn text_card(trainer: &TextTrainer) -> Result<TextModelCard, TrainError> {
    let base = trainer.base();
    let text = |e: margin_models::text::TextError| TrainError::from(margin_models::ModelError::from(e));
    let [w, c, t] = identity_files(base).map_err(text)?;
    let s = trainer.state();
    Ok(TextModelCard {
        version: TEXT_CARD_VERSION,
        base: BaseModel {
            folder: s.encoder.display().to_string(),
            weights_sha256: file_sha256(&w).map_err(text)?,
            config_sha256: file_sha256(&c).map_err(text)?,
            tokenizer_sha256: file_sha256(&t).map_err(text)?,
        },
        tokenizer: "tokenizer.json".into(),
        lowercase: base.tokenizer.lowercase(),
        max_seq_length: base.tokenizer.max_length(),
        pooling: base.pooling.modes.iter().map(|m| m.name().to_string()).collect(),
        normalize: base.normalize,
        dim: base.dim(),
        frozen_embeddings: s.config.freeze.embeddings,
        frozen_layers: s.config.freeze.layers,
        steps: s.step,
    })
}

/// Saves `trainer`'s model as a sentence-transformers folder in `dir` (files atomically,
/// the weights before the card).
pub fn save_text_model(trainer: &TextTrainer, dir: &Path) -> Result<TextModelCard, TrainError> {
    let mut write = |p: &Path, b: &[u8]| margin_data::write_atomic(p, b).map_err(std::io::Error::other);
    save_sentence_folder(trainer.base(), trainer.model(), dir, &mut write).map_err(margin_models::ModelError::from)?;
    let card = text_card(trainer)?;
    margin_data::write_atomic(&dir.join(TEXT_CARD_FILE), &card.to_bytes())?;
    Ok(card)
}

fn evaluate(cfg: &TextRunConfig, enc: &SentenceEncoder) -> Result<(TextMetrics, Option<StsMetrics>), TrainError> {
    let batch = cfg.train.eval_batch;
    let mut embed = |t: &[String]| enc.encode(t, batch);
    let m = evaluate_text(&cfg.data, &cfg.eval, enc.dim(), &mut embed).map_err(|e| TrainError::Config { file: "evaluation".into(), reason: e.to_string() })?;
    let sts = match &cfg.sts {
        Some(p) => Some(evaluate_sts(p, enc.dim(), &mut embed).map_err(|e| TrainError::Config { file: p.display().to_string(), reason: e.to_string() })?),
        None => None,
    };
    Ok((m, sts))
}

/// Runs (or with `resume`, continues) the text run `cfg` in `out`; `evaluate` adds the
/// protocol's figures before and after; `on_step` sees every step.
pub fn run_text_job(cfg: &TextRunConfig, out: &Path, resume: bool, evaluate_run: bool, on_step: &mut dyn FnMut(&TextStepRecord)) -> Result<Option<TextRunMetrics>, TrainError> {
    let device = Device::flex().autodiff();
    let sink = Box::new(FolderSink::new(out)?);
    let mut trainer = if resume {
        TextTrainer::resume(sink, Some(cfg.train.epochs), &device)?
    } else {
        margin_data::write_atomic(&out.join("config.toml"), toml::to_string_pretty(cfg).expect("a configuration serialises").as_bytes())?;
        TextTrainer::new(cfg.train.clone(), &cfg.encoder, sink, &device)?
    };
    let train = training_set(&cfg.data, &cfg.eval).map_err(|e| TrainError::Config { file: "data".into(), reason: e.to_string() })?;
    let before = if evaluate_run && cfg.baseline { Some(evaluate(cfg, &trainer.inference_encoder())?) } else { None };
    trainer.fit(&train, on_step)?;
    save_text_model(&trainer, out)?;
    if !evaluate_run {
        return Ok(None);
    }
    let (after, sts_after) = evaluate(cfg, &trainer.inference_encoder())?;
    let s = trainer.state();
    let (frozen, sts_frozen) = before.map_or((None, None), |(m, s)| (Some(m), s));
    let metrics = TextRunMetrics {
        frozen,
        fine_tuned: after,
        sts_frozen,
        sts_fine_tuned: sts_after,
        steps: s.step,
        train_sentences_per_s: s.sentences_seen as f64 / s.train_seconds.max(1e-9),
    };
    let mut bytes = serde_json::to_vec_pretty(&metrics).expect("metrics serialise");
    bytes.push(b'\n');
    margin_data::write_atomic(&out.join("metrics.json"), &bytes)?;
    Ok(Some(metrics))
}
