//! Value parsers for numeric flags: each wraps one of margin's validators
//! ([`margin::check`]), so a flag and the configuration field of the same concept get the
//! same verdict, and a bad value is refused by clap before anything runs, with clap's
//! "invalid value 'V' for '--flag': RULE" message. Flags that take negative values are
//! declared with `allow_negative_numbers`, so `--scale -16` is refused by the rule instead
//! of being read as a flag `-1`.

use margin::MarginError;

fn reason(e: MarginError) -> String {
    match e {
        MarginError::InvalidConfig { value, reason, .. } if value.contains('(') => format!("{value} {reason}"),
        MarginError::InvalidConfig { reason, .. } => reason.to_string(),
        other => other.to_string(),
    }
}

fn number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("{s:?} is not a number"))
}

fn integer(s: &str) -> Result<usize, String> {
    s.trim().parse::<usize>().map_err(|_| format!("{s:?} is not a non-negative integer"))
}

/// A finite number > 0 (`--scale`, `--lr`).
pub fn positive(s: &str) -> Result<f64, String> {
    margin::check::positive("value", number(s)?).map_err(reason)
}

/// A finite number, any sign (`--margin`, thresholds).
pub fn finite(s: &str) -> Result<f64, String> {
    margin::check::finite("value", number(s)?).map_err(reason)
}

/// A fraction in [0, 1) (`--val-fraction`).
pub fn fraction(s: &str) -> Result<f64, String> {
    margin::check::fraction("value", number(s)?).map_err(reason)
}

/// A count >= 1 (`--epochs`, `--episode-queries`, `--pairs`, `--threads`).
pub fn count(s: &str) -> Result<usize, String> {
    margin::check::count("value", integer(s)?, 1).map_err(reason)
}

/// A batch size in [1, MAX_BATCH] (`--batch`).
pub fn batch(s: &str) -> Result<usize, String> {
    margin::check::size("value", integer(s)?, margin::check::MAX_BATCH).map_err(reason)
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
