//! The configuration parser under hostile edits: every bundled configuration, with each
//! numeric value replaced by the values that broke other tools (0, -1, NaN, infinities,
//! 1e300, u64::MAX, 1e11), each line deleted, and seeded byte-level damage, goes through
//! `parse_config` and `validate_run`. Each must be accepted or refused with a message
//! naming the file or the field — never a panic. (The coverage-guided fuzzing of the
//! Burn-free parsers is in fuzz/; this is its stable, deterministic counterpart for the
//! TOML of a run, which needs the trainer's types.)

use margin_train::{DEFAULT_CONFIG, parse_config, validate_run};

const HOSTILE: [&str; 10] = ["0", "-1", "nan", "inf", "-inf", "1e300", "18446744073709551615", "100000000000", "0.0", "\"x\""];

fn configs() -> Vec<(&'static str, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
    vec![("omniglot.toml", DEFAULT_CONFIG.to_string()), ("digits.toml", std::fs::read_to_string(format!("{root}/digits.toml")).unwrap())]
}

/// Parses and validates `text`; the outcome as a string (a refusal must name something).
fn outcome(name: &str, text: &str) -> Result<(), String> {
    let r = std::panic::catch_unwind(|| match parse_config(text, name) {
        Ok(cfg) => validate_run(&cfg).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    });
    match r {
        Ok(Err(msg)) if msg.trim().is_empty() => Err("an empty error message".into()),
        Ok(Err(msg)) if !(msg.contains(name) || msg.contains('=') || msg.contains('.')) => Err(format!("a message naming nothing: {msg}")),
        Ok(_) => Ok(()),
        Err(_) => Err("panicked".into()),
    }
}

/// Every `key = number` line's value replaced by each hostile value, and each line deleted.
#[test]
fn every_value_replaced_by_a_hostile_one_is_accepted_or_named() {
    let mut tried = 0;
    let mut faults = Vec::new();
    for (name, text) in configs() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some((key, value)) = line.split_once('=') else { continue };
            let v = value.trim();
            let numeric = v.parse::<f64>().is_ok();
            let mut variants: Vec<String> = Vec::new();
            if numeric {
                variants.extend(HOSTILE.iter().map(|h| format!("{key}= {h}")));
            }
            variants.push(String::new()); // the line deleted
            for replacement in variants {
                let mut edited = lines.clone();
                edited[i] = &replacement;
                let t = edited.join("\n");
                tried += 1;
                if let Err(f) = outcome(name, &t) {
                    faults.push(format!("{name} line {} ({line:?} → {replacement:?}): {f}", i + 1));
                }
            }
        }
    }
    assert!(faults.is_empty(), "{} of {tried} edits went wrong:\n{}", faults.len(), faults.join("\n"));
    assert!(tried > 100, "only {tried} edits");
}

/// Seeded byte-level damage (flips, truncations, insertions): never a panic.
#[test]
fn seeded_byte_damage_never_panics() {
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut tried = 0;
    for (name, text) in configs() {
        let bytes = text.as_bytes();
        for _ in 0..600 {
            let mut b = bytes.to_vec();
            match next() % 3 {
                0 => {
                    let i = (next() as usize) % b.len();
                    b[i] ^= 1 << (next() % 8);
                }
                1 => b.truncate((next() as usize) % b.len()),
                _ => {
                    let i = (next() as usize) % b.len();
                    let junk = HOSTILE[(next() as usize) % HOSTILE.len()];
                    b.splice(i..i, junk.bytes());
                }
            }
            let t = String::from_utf8_lossy(&b);
            tried += 1;
            let r = std::panic::catch_unwind(|| parse_config(&t, name).map(|c| validate_run(&c).is_ok()));
            assert!(r.is_ok(), "{name}: panicked on {t:?}");
        }
    }
    assert_eq!(tried, 1200);
}
