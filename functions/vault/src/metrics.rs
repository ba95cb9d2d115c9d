//! CloudWatch metrics as embedded metric format (EMF) log lines: Lambda's
//! log pipeline turns each line into metrics, no API call, no extra latency.

use std::time::{SystemTime, UNIX_EPOCH};

/// The namespace of every callvault metric.
pub const NAMESPACE: &str = "Callvault";

/// One EMF line: `metrics` (name, unit, value) with `dimensions` as
/// properties. With extra dimensions the line declares two dimension sets:
/// the detailed one (per code, key, principal...) and the function's
/// rollup, which is what template.yaml's alarms watch (an alarm cannot sum
/// across a dimension).
pub fn emf(function: &str, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) -> String {
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut dim_names = vec!["Function"];
    dim_names.extend(dimensions.iter().map(|(k, _)| *k));
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": ts,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": if dimensions.is_empty() { vec![dim_names] } else { vec![dim_names, vec!["Function"]] },
                "Metrics": metrics.iter().map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }]
        },
        "Function": function,
    });
    for (k, v) in dimensions {
        doc[*k] = serde_json::Value::from(*v);
    }
    for (name, _, value) in metrics {
        doc[*name] = serde_json::Value::from(*value);
    }
    doc.to_string()
}

/// Prints an EMF line on stdout, where Lambda's log pipeline reads it.
pub fn put(function: &str, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) {
    println!("{}", emf(function, dimensions, metrics));
}

/// Where a function's EMF lines go: standard output in Lambda, a list in tests.
pub trait MetricsLog: Send + Sync + 'static {
    /// Writes one EMF line.
    fn put(&self, function: &str, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]);
}

/// Standard output, which Lambda sends to CloudWatch Logs.
pub struct StdoutMetrics;

impl MetricsLog for StdoutMetrics {
    fn put(&self, function: &str, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) {
        put(function, dimensions, metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_metrics_and_carries_their_values() {
        let line = emf("encrypt-recording", &[("Code", "key_disabled")], &[("Failures", "Count", 1.0)]);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], "Callvault");
        assert_eq!(decl["Dimensions"], serde_json::json!([["Function", "Code"], ["Function"]]));
        assert_eq!(decl["Metrics"][0], serde_json::json!({"Name": "Failures", "Unit": "Count"}));
        assert_eq!(v["Function"], "encrypt-recording");
        assert_eq!(v["Code"], "key_disabled");
        assert_eq!(v["Failures"], 1.0);
        assert!(v["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
        let plain: serde_json::Value =
            serde_json::from_str(&emf("playback", &[], &[("Requests", "Count", 1.0)])).unwrap();
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Function"]]));
    }
}
