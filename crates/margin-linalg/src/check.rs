//! The rules of numeric options, in the one Burn-free crate every other crate depends on,
//! so a learning rate, a scale or a count gets the same verdict in every crate and
//! command: `margin::check` wraps these with the field's name for the library's error,
//! margin-data's loaders and margin-eval call them directly. Each returns the value, or
//! [`Invalid`]: the value as printed and the rule it breaks.
//!
//! The size bounds are sanity bounds, not memory budgets: a value past them is a typo
//! (`1e11`) whatever the machine.

/// The largest embedding dimension, layer width or feature dimension accepted: far beyond
/// any published embedding (4,096 for the largest text encoders), small enough that
/// `rows × dim` of a batch never overflows.
pub const MAX_DIM: usize = 1 << 16;

/// The largest number of channels of a convolutional layer (ResNet-152's widest is 2,048).
pub const MAX_CHANNELS: usize = 1 << 12;

/// The largest batch (samples per step, or per forward pass when embedding).
pub const MAX_BATCH: usize = 1 << 20;

/// A refused value: the value as printed and the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The value, printed (with context such as the bound).
    pub value: String,
    /// The rule it breaks.
    pub reason: &'static str,
}

fn invalid(value: impl ToString, reason: &'static str) -> Invalid {
    Invalid { value: value.to_string(), reason }
}

/// A finite number (any sign).
pub fn finite(v: f64) -> Result<f64, Invalid> {
    if v.is_finite() { Ok(v) } else { Err(invalid(v, "must be a finite number")) }
}

/// A finite number `> 0` (learning rate, scale, temperature).
pub fn positive(v: f64) -> Result<f64, Invalid> {
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err(invalid(v, "must be a finite number > 0")) }
}

/// A finite number `>= 0` (weight decay, shifts).
pub fn non_negative(v: f64) -> Result<f64, Invalid> {
    if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(invalid(v, "must be a finite number >= 0")) }
}

/// A fraction in `[0, 1)` (a held-out share, momentum).
pub fn fraction(v: f64) -> Result<f64, Invalid> {
    if (0.0..1.0).contains(&v) { Ok(v) } else { Err(invalid(v, "must be in [0, 1)")) }
}

/// A count `>= min` (epochs, batches, queries).
pub fn count(n: usize, min: usize) -> Result<usize, Invalid> {
    if n >= min {
        Ok(n)
    } else if min <= 1 {
        Err(invalid(n, "must be >= 1"))
    } else {
        Err(invalid(format!("{n} (the smallest accepted is {min})"), "is too small"))
    }
}

/// A size in `[1, max]` (a dimension, a batch): past `max` it is refused before anything
/// is allocated.
pub fn size(n: usize, max: usize) -> Result<usize, Invalid> {
    if n == 0 {
        Err(invalid(n, "must be >= 1"))
    } else if n > max {
        Err(invalid(format!("{n} (the largest accepted is {max})"), "is too large"))
    } else {
        Ok(n)
    }
}

/// An interval `low < high` of optional finite bounds: an empty one keeps nothing.
pub fn interval(low: Option<f64>, high: Option<f64>) -> Result<(), Invalid> {
    if [low, high].into_iter().flatten().any(|b| !b.is_finite()) {
        return Err(invalid(format!("({low:?}, {high:?})"), "bounds must be finite numbers"));
    }
    match (low, high) {
        (Some(l), Some(h)) if l >= h => Err(invalid(
            format!("low {l}, high {h}"),
            "low must be < high: an empty interval keeps no element, so the loss is 0 and nothing trains",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(positive(-16.0).is_err() && positive(f64::NAN).is_err() && positive(0.0).is_err());
        assert_eq!(positive(16.0), Ok(16.0));
        assert!(size(100_000_000_000, MAX_DIM).unwrap_err().value.contains("the largest accepted is 65536"));
        assert!(size(0, MAX_DIM).is_err() && count(0, 1).is_err() && count(2, 3).is_err());
        assert!(fraction(1.0).is_err() && fraction(0.5).is_ok());
        assert!(interval(Some(0.5), Some(0.1)).unwrap_err().reason.contains("low must be < high"));
        assert!(interval(None, Some(0.5)).is_ok() && interval(Some(f64::NAN), None).is_err());
    }
}
