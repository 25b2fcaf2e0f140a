//! The memory budget of a run, checked before anything large is allocated.
//!
//! A size that passes every sanity bound can still need more memory than the machine
//! has (a batch of 500,000 images, a data set of 30,000 photos at full resolution): the
//! process would grow until the allocator aborts with "memory allocation of N bytes
//! failed", naming nothing, or until the system kills it. Instead the parts of a run
//! that can be sized up front (the data set in memory, the model and its optimizer state,
//! a batch's activations) are added up and compared with the memory this process may use:
//! `MemAvailable` of `/proc/meminfo`, lowered to the cgroup's `memory.max` when one is set.
//! Where neither can be read (not Linux), the check passes.
//!
//! `MARGIN_MEMORY_LIMIT` (bytes, or with a `K`/`M`/`G`/`T` suffix) replaces the reading,
//! for a shared machine where the run should stay below a share, and for tests.

use thiserror::Error;

/// The run does not fit.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{what} needs about {} ({}) but {} of memory is available{}; {advice}", human(*.needed), .parts.iter().map(|(n, b)| format!("{n} {}", human(*b))).collect::<Vec<_>>().join(", "), human(*.available), .source_note)]
pub struct MemoryError {
    /// What was sized ("the run").
    pub what: String,
    /// The total.
    pub needed: u64,
    /// The parts, named.
    pub parts: Vec<(String, u64)>,
    /// What may be used.
    pub available: u64,
    /// Where `available` comes from (" (MARGIN_MEMORY_LIMIT)" or empty).
    pub source_note: String,
    /// What to lower.
    pub advice: String,
}

/// Bytes as `1.2 GiB`.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", units[u]) }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        't' | 'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).map(|v| (v * mult as f64) as u64)
}

/// The memory this process may use, and where the figure comes from.
pub fn available() -> Option<(u64, &'static str)> {
    if let Ok(s) = std::env::var("MARGIN_MEMORY_LIMIT") {
        return parse_size(&s).map(|b| (b, " (MARGIN_MEMORY_LIMIT)"));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let avail = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())? * 1024;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok());
    let used = std::fs::read_to_string("/sys/fs/cgroup/memory.current").ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
    Some((cgroup.map_or(avail, |m| avail.min(m.saturating_sub(used))), ""))
}

/// A budget being added up: named parts in bytes (saturating: an absurd size stays absurd
/// instead of wrapping to a small one).
#[derive(Debug, Clone, Default)]
pub struct Budget {
    parts: Vec<(String, u64)>,
}

impl Budget {
    /// An empty budget.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `count × bytes_each` bytes for `name`.
    pub fn add(&mut self, name: impl Into<String>, count: u64, bytes_each: u64) -> &mut Self {
        self.parts.push((name.into(), count.saturating_mul(bytes_each)));
        self
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.parts.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b))
    }

    /// Checks the total against [`available`] memory; `advice` says what to lower.
    pub fn check(&self, what: &str, advice: &str) -> Result<(), MemoryError> {
        let Some((available, note)) = available() else { return Ok(()) };
        self.check_against(what, advice, available, note)
    }

    /// Checks the total against `available` bytes.
    pub fn check_against(&self, what: &str, advice: &str, available: u64, note: &str) -> Result<(), MemoryError> {
        let needed = self.total();
        if needed <= available {
            return Ok(());
        }
        Err(MemoryError {
            what: what.to_string(),
            needed,
            parts: self.parts.clone(),
            available,
            source_note: note.to_string(),
            advice: advice.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_beyond_the_memory_names_its_parts_and_figures() {
        let mut b = Budget::new();
        b.add("the data set", 1000, 28 * 28 * 4).add("a batch", u64::MAX, 2);
        assert_eq!(b.total(), u64::MAX, "saturates instead of wrapping");
        let e = b.check_against("the run", "lower train.sampler.samples_per_class", 8 << 30, "").unwrap_err().to_string();
        assert!(e.contains("the data set 3.0 MiB") && e.contains("8.0 GiB of memory is available") && e.contains("samples_per_class"), "{e}");
        assert!(Budget::new().add("x", 10, 10).check_against("the run", "", 100, "").is_ok());
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(human(1536), "1.5 KiB");
    }
}
