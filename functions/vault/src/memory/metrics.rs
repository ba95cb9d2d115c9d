//! A [`MetricsLog`] that keeps its EMF lines, for tests that read metrics.

use std::sync::Mutex;

use crate::metrics::{emf, MetricsLog};

/// EMF lines in memory.
#[derive(Default)]
pub struct MemoryMetrics(Mutex<Vec<serde_json::Value>>);

impl MemoryMetrics {
    /// Every line so far, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The sum of metric `name` over the lines whose dimensions include
    /// every pair of `dimensions`.
    pub fn sum(&self, name: &str, dimensions: &[(&str, &str)]) -> f64 {
        self.lines()
            .iter()
            .filter(|l| dimensions.iter().all(|(k, v)| l[*k] == *v))
            .filter_map(|l| l[name].as_f64())
            .sum()
    }
}

impl MetricsLog for MemoryMetrics {
    fn put(&self, function: &str, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) {
        let line = serde_json::from_str(&emf(function, dimensions, metrics)).unwrap_or_default();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
}
