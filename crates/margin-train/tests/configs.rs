//! The configuration files: every file in `configs/` parses and validates, the typed
//! `[train.miner]` table (every miner, every parameter, the distance form, refused fields),
//! and the earlier spelling (`name` / `margin` / `type_of_triplets`) still read, from TOML
//! (`config.toml`) and JSON (`state.json`) alike.

mod common;

use std::path::{Path, PathBuf};

use margin::miner::{
    BatchEasyHardMiner, BatchHardMiner, DistanceWeightedMiner, FaceNetSemiHardMiner, MiningStrategy, MultiSimilarityMiner,
    PairMarginMiner, SemiHardFallback, TripletMarginMiner, TripletType, ValueRange,
};
use margin::{CosineSimilarity, Distance, DotProductSimilarity, LpDistance, MinerConfig, Power};
use margin::burn::tensor::Device;
use margin_data::{Dataset, ModelConfig};
use margin_train::{DEFAULT_CONFIG, LossSpec, MinerSpec, SamplerConfig, Silent, TrainConfig, Trainer, config_toml, parse_config};

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// A minimal run configuration with `miner` as the `[train.miner]` table (`None`: absent).
fn run_config(miner: Option<&str>) -> String {
    let mut s = String::from(
        r#"
[data]
kind = "csv"
path = "x.csv"
label_column = -1

[split]
train_classes = [0, 1]

[train]
epochs = 1
lr = 0.001

[train.model]
kind = "mlp"
hidden = [8]
embedding_dim = 4
"#,
    );
    if let Some(m) = miner {
        s.push_str("\n[train.miner]\n");
        s.push_str(m);
        s.push('\n');
    }
    s
}

fn parse_miner(table: &str) -> Result<MinerSpec, String> {
    parse_config(&run_config(Some(table)), "test.toml").map(|c| c.train.miner).map_err(|e| e.to_string())
}

fn miner(table: &str) -> MinerSpec {
    parse_miner(table).unwrap_or_else(|e| panic!("{table}: {e}"))
}

fn refused(table: &str) -> String {
    match parse_miner(table) {
        Ok(m) => panic!("{table} should be refused, parsed {m:?}"),
        Err(e) => e,
    }
}

const EUCLIDEAN_NORMALIZED: Distance = Distance::Lp(LpDistance { power: Power::Euclidean, normalize: true });

#[test]
fn every_bundled_config_parses_and_validates() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if margin_train::text_job::is_text_config(&text) {
            // A text run's configuration (it names an `encoder`): its own schema, round-tripped too.
            let cfg = margin_train::text_job::parse_text_config(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let again = margin_train::text_job::parse_text_config(&toml::to_string_pretty(&cfg).unwrap(), "written").unwrap();
            assert_eq!(again, cfg, "{}", path.display());
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
            continue;
        }
        let cfg = parse_config(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        cfg.train.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Written and read back, it is the same configuration (what a run folder stores).
        let again = parse_config(&config_toml(&cfg), "written").unwrap_or_else(|e| panic!("{} written back: {e}", path.display()));
        assert_eq!(again.train, cfg.train, "{}", path.display());
        let json = serde_json::to_string(&cfg.train).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), cfg.train, "{}: {json}", path.display());
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    seen.sort();
    assert!(["omniglot.toml", "digits.toml", "clinc150.toml"].iter().all(|f| seen.contains(&f.to_string())), "{seen:?}");
}

#[test]
fn the_bundled_default_mines_multi_similarity_on_the_loss_distance() {
    let cfg = parse_config(DEFAULT_CONFIG, "configs/omniglot.toml").unwrap();
    let spec = cfg.train.miner;
    assert_eq!(spec.miner, Some(MinerConfig::MultiSimilarity(MultiSimilarityMiner { epsilon: 0.1, ..Default::default() })));
    assert_eq!(spec.distance, None, "the default mines on the loss's distance");
    let loss = cfg.train.loss.distance();
    assert_eq!(loss, EUCLIDEAN_NORMALIZED);
    let built = spec.build(loss).unwrap().unwrap();
    assert_eq!(built, MinerConfig::MultiSimilarity(MultiSimilarityMiner { epsilon: 0.1, distance: loss }));
}

#[test]
fn every_miner_and_every_parameter_is_settable() {
    let cases: Vec<(&str, MinerConfig)> = vec![
        ("kind = \"batch-hard\"", MinerConfig::BatchHard(BatchHardMiner::default())),
        (
            "kind = \"batch-easy-hard\"\npos_strategy = \"hard\"\nneg_strategy = \"all\"\nallowed_pos_range = { low = 0.1, high = 0.9 }\nallowed_neg_range = { low = -1, high = 1.5 }",
            MinerConfig::BatchEasyHard(BatchEasyHardMiner {
                pos_strategy: MiningStrategy::Hard,
                neg_strategy: MiningStrategy::All,
                allowed_pos_range: Some(ValueRange { low: 0.1, high: 0.9 }),
                allowed_neg_range: Some(ValueRange { low: -1.0, high: 1.5 }),
                ..Default::default()
            }),
        ),
        ("kind = \"batch-easy-hard\"", MinerConfig::BatchEasyHard(BatchEasyHardMiner::default())),
        (
            "kind = \"triplet-margin\"\nmargin = 0.3\ntype_of_triplets = \"hard\"",
            MinerConfig::TripletMargin(TripletMarginMiner::new(0.3, TripletType::Hard)),
        ),
        ("kind = \"triplet-margin\"", MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::All))),
        (
            "kind = \"semihard-facenet\"\nfallback = \"hardest\"",
            MinerConfig::SemihardFacenet(FaceNetSemiHardMiner { fallback: SemiHardFallback::Hardest, ..Default::default() }),
        ),
        (
            "kind = \"pair-margin\"\npos_margin = 0.1\nneg_margin = 0.7",
            MinerConfig::PairMargin(PairMarginMiner { pos_margin: 0.1, neg_margin: 0.7, ..Default::default() }),
        ),
        ("kind = \"pair-margin\"", MinerConfig::PairMargin(PairMarginMiner::default())),
        ("kind = \"multi-similarity\"\nepsilon = 0.25", MinerConfig::MultiSimilarity(MultiSimilarityMiner { epsilon: 0.25, ..Default::default() })),
        (
            "kind = \"distance-weighted\"\ncutoff = 0.4\nnonzero_loss_cutoff = 1.3",
            MinerConfig::DistanceWeighted(DistanceWeightedMiner { cutoff: 0.4, nonzero_loss_cutoff: 1.3 }),
        ),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for (table, want) in cases {
        let spec = miner(table);
        assert_eq!(spec, MinerSpec::new(want), "{table}");
        // Without its own distance the miner mines on the loss's.
        let loss = Distance::Dot(DotProductSimilarity { normalize: false });
        let built = spec.build(loss).unwrap().unwrap();
        if built.has_own_distance() {
            assert_eq!(built.distance(), loss, "{table}");
        }
        // TOML and JSON round trips.
        let cfg = parse_config(&run_config(Some(table)), "t").unwrap();
        assert_eq!(parse_config(&config_toml(&cfg), "t").unwrap().train.miner, spec, "{table}");
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<MinerSpec>(&json).unwrap(), spec, "{json}");
        kinds.insert(spec.kind());
    }
    assert_eq!(kinds, MinerConfig::NAMES.iter().copied().collect(), "a case for every miner");
}

#[test]
fn kind_none_and_an_absent_table() {
    assert_eq!(miner("kind = \"none\""), MinerSpec::none());
    assert_eq!(MinerSpec::none().build(EUCLIDEAN_NORMALIZED).unwrap(), None);
    // Absent: today's default, the semi-hard triplet-margin miner (margin 0.2) on the loss's distance.
    let cfg = parse_config(&run_config(None), "t").unwrap();
    assert_eq!(cfg.train.miner, MinerSpec::new(MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::Semihard))));
    assert_eq!(cfg.train.miner, MinerSpec::default());
    let e = refused("kind = \"none\"\nepsilon = 0.1");
    assert!(e.contains("`epsilon`") && e.contains("none"), "{e}");
    let e = refused("kind = \"none\"\ndistance = \"cosine\"");
    assert!(e.contains("distance"), "{e}");
}

#[test]
fn the_miner_distance_forms() {
    let ms = |d: &str| miner(&format!("kind = \"multi-similarity\"\n{d}")).distance;
    let lp = |power, normalize| Some(Distance::Lp(LpDistance { power, normalize }));
    assert_eq!(ms(""), None);
    assert_eq!(ms("distance = \"euclidean\""), lp(Power::Euclidean, true));
    assert_eq!(ms("distance = \"squared-euclidean\""), lp(Power::SquaredEuclidean, true));
    assert_eq!(ms("distance = \"cosine\""), Some(Distance::Cosine(CosineSimilarity)));
    assert_eq!(ms("distance = \"dot\""), Some(Distance::Dot(DotProductSimilarity { normalize: true })));
    assert_eq!(ms("distance = { kind = \"euclidean\", normalize = false }"), lp(Power::Euclidean, false));
    assert_eq!(ms("distance = { kind = \"squared-euclidean\" }"), lp(Power::SquaredEuclidean, true));
    assert_eq!(ms("distance = { kind = \"dot\", normalize = false }"), Some(Distance::Dot(DotProductSimilarity { normalize: false })));
    assert_eq!(ms("distance = { kind = \"cosine\" }"), Some(Distance::Cosine(CosineSimilarity)));
    // The form margin::Distance serialises to (earlier configs may hold it).
    assert_eq!(ms("distance = { kind = \"lp\", power = \"SquaredEuclidean\", normalize = false }"), lp(Power::SquaredEuclidean, false));
    for d in [lp(Power::Euclidean, true), lp(Power::SquaredEuclidean, false), Some(Distance::Cosine(CosineSimilarity)), Some(Distance::Dot(DotProductSimilarity { normalize: false }))] {
        let old = toml::to_string(&d.unwrap()).unwrap().trim().replace('\n', ", ");
        assert_eq!(ms(&format!("distance = {{ {old} }}")), d, "{old}");
    }
    // Its own distance wins over the loss's.
    let spec = miner("kind = \"multi-similarity\"\ndistance = \"cosine\"");
    assert_eq!(spec.build(EUCLIDEAN_NORMALIZED).unwrap().unwrap().distance(), Distance::Cosine(CosineSimilarity));
    // Refused, saying what to write.
    let e = refused("kind = \"multi-similarity\"\ndistance = \"manhattan\"");
    assert!(e.contains("manhattan") && e.contains("squared-euclidean"), "{e}");
    let e = refused("kind = \"multi-similarity\"\ndistance = { kind = \"cosine\", normalize = false }");
    assert!(e.contains("always normalises") && e.contains("dot"), "{e}");
    let e = refused("kind = \"multi-similarity\"\ndistance = { kind = \"euclidean\", normalise = false }");
    assert!(e.contains("`normalise`"), "{e}");
    // The distance-weighted miner mines on L2-normalised Euclidean distances only.
    let dw = miner("kind = \"distance-weighted\"\ndistance = \"cosine\"");
    let e = dw.build(EUCLIDEAN_NORMALIZED).unwrap_err().to_string();
    assert!(e.contains("miner.distance") && e.contains("Euclidean"), "{e}");
    assert!(miner("kind = \"distance-weighted\"\ndistance = \"euclidean\"").build(Distance::Cosine(CosineSimilarity)).is_ok());
    // The loss takes the same vocabulary (and still reads the earlier form).
    let loss = |d: &str| {
        let text = run_config(None).replace("[train.model]", &format!("[train.loss]\nkind = \"contrastive\"\n{d}\n\n[train.model]"));
        parse_config(&text, "t").unwrap().train.loss.distance()
    };
    assert_eq!(Some(loss("distance = \"squared-euclidean\"")), lp(Power::SquaredEuclidean, true));
    assert_eq!(Some(loss("distance = { kind = \"lp\", power = \"Euclidean\", normalize = false }")), lp(Power::Euclidean, false));
    assert_eq!(loss(""), EUCLIDEAN_NORMALIZED);
}

#[test]
fn unknown_fields_are_refused_naming_the_field() {
    let e = refused("kind = \"multi-similarity\"\nepsilon = 0.1\nfoo = 2");
    assert!(e.contains("unknown field `foo`") && e.contains("`epsilon`"), "{e}");
    assert!(e.contains("test.toml") && e.contains("[train.miner]"), "the file and the table: {e}");
    // A parameter of another miner (`margin` is the triplet-margin miner's).
    let e = refused("kind = \"multi-similarity\"\nmargin = 0.1");
    assert!(e.contains("unknown field `margin`") && e.contains("`epsilon`"), "{e}");
    let e = refused("kind = \"batch-easy-hard\"\nallowed_pos_range = { low = 0.1, hi = 0.9 }");
    assert!(e.contains("`hi`"), "{e}");
    let e = refused("kind = \"batch-hard\"\nepsilon = 0.1");
    assert!(e.contains("unknown field `epsilon`"), "{e}");
    let e = refused("kind = \"distance-weighted\"\ncut_off = 0.4");
    assert!(e.contains("unknown field `cut_off`") && e.contains("`nonzero_loss_cutoff`"), "{e}");
    let e = refused("kind = \"multi-similarity\"\nepsilon = \"big\"");
    assert!(e.contains("multi-similarity") && e.contains("big"), "{e}");
    let e = refused("kind = \"multi-sim\"");
    assert!(e.contains("multi-sim") && e.contains("`multi-similarity`") && e.contains("`none`"), "{e}");
    let e = refused("epsilon = 0.1");
    assert!(e.contains("missing field `kind`"), "{e}");
    let e = refused("kind = \"triplet-margin\"\ntype_of_triplets = \"medium\"");
    assert!(e.contains("medium") && e.contains("semihard"), "{e}");
    // Parsed values are validated with the rest of the configuration.
    let cfg = parse_config(&run_config(Some("kind = \"multi-similarity\"\nepsilon = -1")), "t").unwrap();
    let e = cfg.train.validate().unwrap_err().to_string();
    assert!(e.contains("epsilon"), "{e}");
    let cfg = parse_config(&run_config(Some("kind = \"batch-easy-hard\"\npos_strategy = \"semihard\"\nneg_strategy = \"semihard\"")), "t").unwrap();
    assert!(cfg.train.validate().is_err());
}

#[test]
fn the_earlier_spelling_reads_as_the_current_one() {
    let same = |old: &str, new: &str| {
        let (o, n) = (miner(old), miner(new));
        assert_eq!(o, n, "{old} vs {new}");
        let loss = EUCLIDEAN_NORMALIZED;
        assert_eq!(o.build(loss).unwrap(), n.build(loss).unwrap());
    };
    same("name = \"multi-similarity\"\nmargin = 0.1", "kind = \"multi-similarity\"\nepsilon = 0.1");
    same("name = \"multi-similarity\"", "kind = \"multi-similarity\"");
    same("name = \"triplet-margin\"\nmargin = 0.3\ntype_of_triplets = \"easy\"", "kind = \"triplet-margin\"\nmargin = 0.3\ntype_of_triplets = \"easy\"");
    same("name = \"triplet-margin\"", "kind = \"triplet-margin\"");
    same("name = \"batch-hard\"", "kind = \"batch-hard\"");
    same("name = \"pair-margin\"", "kind = \"pair-margin\"");
    same("name = \"distance-weighted\"", "kind = \"distance-weighted\"");
    same("name = \"none\"", "kind = \"none\"");
    same("name = \"none\"\nmargin = 0.2", "kind = \"none\"");
    // The earlier default (`MinerSpec::default()` then), as config.toml wrote it.
    same("name = \"triplet-margin\"\nmargin = 0.2\ntype_of_triplets = \"semihard\"", "kind = \"triplet-margin\"\nmargin = 0.2\ntype_of_triplets = \"semihard\"");
    // The earlier bundled omniglot.toml.
    let new_lines = "kind = \"multi-similarity\"\nepsilon = 0.1\n";
    assert!(DEFAULT_CONFIG.contains(new_lines));
    let old = DEFAULT_CONFIG.replace(new_lines, "name = \"multi-similarity\"\nmargin = 0.1   # the multi-similarity miner's epsilon\n");
    let (o, n) = (parse_config(&old, "old omniglot.toml").unwrap(), parse_config(DEFAULT_CONFIG, "omniglot.toml").unwrap());
    assert_eq!(o.train, n.train);
    // What the earlier spelling cannot say is refused with what to write instead.
    let e = refused("name = \"pair-margin\"\nmargin = 0.1");
    assert!(e.contains("kind = \"pair-margin\"") && e.contains("pos_margin") && e.contains("neg_margin"), "{e}");
    let e = refused("name = \"batch-hard\"\nmargin = 0.1");
    assert!(e.contains("kind = \"batch-hard\"") && e.contains("no margin"), "{e}");
    let e = refused("name = \"multi-similarity\"\ntype_of_triplets = \"hard\"");
    assert!(e.contains("only the triplet-margin miner"), "{e}");
    let e = refused("name = \"multi-similarity\"\nkind = \"multi-similarity\"");
    assert!(e.contains("`kind` and `name`"), "{e}");
}

/// `state.json` of the earlier release stored the configuration with the earlier miner
/// spelling, absent options as `null`; it still reads, as the same configuration.
#[test]
fn an_earlier_state_json_configuration_reads_the_same() {
    let cfg = parse_config(DEFAULT_CONFIG, "omniglot.toml").unwrap().train;
    let mut json = serde_json::to_value(&cfg).unwrap();
    json["miner"] = serde_json::json!({ "name": "multi-similarity", "margin": 0.1, "type_of_triplets": null });
    // The earlier form of the loss's distance too.
    json["loss"]["distance"] = serde_json::json!({ "kind": "lp", "power": "Euclidean", "normalize": true });
    let back: TrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, cfg);
    let mut json = serde_json::to_value(&cfg).unwrap();
    json["miner"] = serde_json::json!({ "name": "triplet-margin", "margin": 0.2, "type_of_triplets": "semihard" });
    let back: TrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back.miner, MinerSpec::default());
    assert!(matches!(back.loss, LossSpec::Contrastive { .. }));
}

fn dataset() -> Dataset {
    common::blobs(6, 6, 8, 0x2545_f491_4f6c_dd1d)
}

fn step_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "step")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

/// A run folder whose checkpoint the earlier release wrote (its `state.json` holds the
/// configuration in the earlier miner and distance spelling) resumes, and the resumed run
/// equals an uninterrupted one.
#[test]
fn a_run_checkpointed_in_the_earlier_spelling_resumes() {
    let train = dataset();
    let device = Device::flex().autodiff();
    let mut cfg = parse_config(DEFAULT_CONFIG, "the bundled default").unwrap().train;
    cfg.model = ModelConfig::Mlp { hidden: vec![16], embedding_dim: 8, normalize: false };
    cfg.sampler = SamplerConfig { classes_per_batch: 4, samples_per_class: 4, batches_per_epoch: Some(2) };
    cfg.augment = None;
    cfg.validate_every = 0;
    let root = std::env::temp_dir().join(format!("margin-train-configs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (full, part) = (root.join("full"), root.join("part"));
    cfg.epochs = 2;
    Trainer::new(cfg.clone(), &train.sample_shape, &full, &device).unwrap().fit(&train, None, &mut Silent).unwrap();
    cfg.epochs = 1;
    Trainer::new(cfg.clone(), &train.sample_shape, &part, &device).unwrap().fit(&train, None, &mut Silent).unwrap();

    // Rewrite the checkpoint's stored configuration as the earlier release wrote it.
    let pointer: serde_json::Value = serde_json::from_slice(&std::fs::read(part.join("checkpoint.json")).unwrap()).unwrap();
    let state_path = part.join(pointer["dir"].as_str().unwrap()).join("state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(state["config"]["miner"], serde_json::json!({ "kind": "multi-similarity", "epsilon": 0.1 }), "written in the current spelling");
    state["config"]["miner"] = serde_json::json!({ "name": "multi-similarity", "margin": 0.1, "type_of_triplets": null });
    state["config"]["loss"]["distance"] = serde_json::json!({ "kind": "lp", "power": "Euclidean", "normalize": true });
    std::fs::write(&state_path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();

    let resumed = Trainer::resume(&part, &train.sample_shape, Some(2), &device).unwrap();
    assert_eq!(resumed.config().miner, cfg.miner);
    assert_eq!(resumed.config().loss, cfg.loss);
    resumed.fit(&train, None, &mut Silent).unwrap();
    let (a, b) = (step_losses(&full), step_losses(&part));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "the resumed run equals the uninterrupted one");
    let _ = std::fs::remove_dir_all(&root);
}
