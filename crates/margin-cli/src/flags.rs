//! Value parsers for numeric flags: each wraps one of margin's validators
//! (`margin_linalg::check`, which `margin::check` wraps for the configuration), so a
//! flag and the configuration field of the same concept get the same verdict, and a bad
//! value is refused by clap before anything runs, with clap's "invalid value 'V' for
//! '--flag': RULE" message. Flags that take negative values are
//! declared with `allow_negative_numbers`, so `--scale -16` is refused by the rule instead
//! of being read as a flag `-1`.

use margin_linalg::check::{self as rule, Invalid};

fn reason(e: Invalid) -> String {
    if e.value.contains('(') { format!("{} {}", e.value, e.reason) } else { e.reason.to_string() }
}

fn number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("{s:?} is not a number"))
}

fn integer(s: &str) -> Result<usize, String> {
    s.trim().parse::<usize>().map_err(|_| format!("{s:?} is not a non-negative integer"))
}

/// A finite number > 0 (`--scale`, `--lr`).
pub fn positive(s: &str) -> Result<f64, String> {
    rule::positive(number(s)?).map_err(reason)
}

/// A finite number, any sign (`--margin`, thresholds).
pub fn finite(s: &str) -> Result<f64, String> {
    rule::finite(number(s)?).map_err(reason)
}

/// A fraction in [0, 1) (`--val-fraction`).
pub fn fraction(s: &str) -> Result<f64, String> {
    rule::fraction(number(s)?).map_err(reason)
}

/// A count >= 1 (`--epochs`, `--episode-queries`, `--pairs`, `--threads`).
pub fn count(s: &str) -> Result<usize, String> {
    rule::count(integer(s)?, 1).map_err(reason)
}

/// A number of verification pairs >= 2 (one genuine and one impostor at least).
pub fn pairs(s: &str) -> Result<usize, String> {
    rule::count(integer(s)?, 2).map_err(reason)
}

/// A batch size in [1, MAX_BATCH] (`--batch`).
pub fn batch(s: &str) -> Result<usize, String> {
    rule::size(integer(s)?, rule::MAX_BATCH).map_err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_share_the_library_rules() {
        assert_eq!(positive("16").unwrap(), 16.0);
        assert!(positive("-16").unwrap_err().contains("> 0"));
        assert!(positive("nan").is_err() && positive("0").is_err() && positive("x").unwrap_err().contains("not a number"));
        assert!(count("0").unwrap_err().contains(">= 1"));
        assert!(batch("100000000000").unwrap_err().contains("largest accepted"));
        assert!(fraction("1").is_err());
        assert_eq!(finite("-0.5").unwrap(), -0.5);
    }
}
