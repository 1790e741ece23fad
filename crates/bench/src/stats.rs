//! Latency histograms (microsecond resolution, shipped between processes as
//! base64 of HdrHistogram's V2 encoding) and the fixed-rate [`Pacer`] that
//! every open-loop sender uses.
//!
//! It knows nothing of what was measured; the scenarios name the numbers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in microseconds, from 1 µs to 10 minutes.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records a latency given in nanoseconds.
pub fn record_ns(hist: &mut Histogram<u64>, ns: u64) {
    hist.saturating_record((ns / 1_000).max(1));
}

/// Encodes a histogram for the worker protocol.
pub fn encode(hist: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(hist, &mut bytes)
        .expect("serializing into a Vec cannot fail");
    STANDARD.encode(bytes)
}

/// Decodes a histogram from the worker protocol.
pub fn decode(text: &str) -> Result<Histogram<u64>> {
    let bytes = STANDARD.decode(text).context("histogram is not base64")?;
    let hist: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("bad histogram: {e:?}"))?;
    Ok(hist)
}

/// Adds encoded histograms together.
pub fn merge<'a>(encoded: impl IntoIterator<Item = &'a str>) -> Result<Histogram<u64>> {
    let mut total = new_histogram();
    for text in encoded {
        total
            .add(decode(text)?)
            .map_err(|e| anyhow::anyhow!("cannot merge histograms: {e:?}"))?;
    }
    Ok(total)
}

/// The usual latency summary, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises a microsecond histogram.
    pub fn of(hist: &Histogram<u64>) -> Latency {
        if hist.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Latency {
            count: hist.len(),
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            max_ms: ms(hist.max()),
        }
    }
}

/// Open-loop pacing at a fixed rate: [`Pacer::due`] says how many sends are
/// owed now, however late the caller woke, so a slow loop catches up rather
/// than silently lowering the rate.
pub struct Pacer {
    start: Instant,
    per_second: f64,
    issued: u64,
}

impl Pacer {
    /// A pacer starting now.
    pub fn new(per_second: f64) -> Pacer {
        Pacer {
            start: Instant::now(),
            per_second,
            issued: 0,
        }
    }

    /// Sends owed since the start, minus those already taken; marks them
    /// taken.
    pub fn due(&mut self) -> u64 {
        let owed = (self.start.elapsed().as_secs_f64() * self.per_second) as u64 + 1;
        let due = owed.saturating_sub(self.issued);
        self.issued += due;
        due
    }

    /// When the next send is owed.
    pub fn next_at(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.issued as f64 / self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_and_merge() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        record_ns(&mut a, 1_000_000);
        record_ns(&mut b, 3_000_000);
        record_ns(&mut b, 10);
        let merged = merge([encode(&a).as_str(), encode(&b).as_str()]).unwrap();
        assert_eq!(merged.len(), 3);
        let lat = Latency::of(&merged);
        assert!((lat.max_ms - 3.0).abs() < 0.01, "{lat:?}");
        assert_eq!(merged.min(), 1);
    }

    #[test]
    fn pacer_owes_one_at_start_and_catches_up() {
        let mut pacer = Pacer::new(1000.0);
        assert_eq!(pacer.due(), 1);
        assert_eq!(pacer.due(), 0);
        std::thread::sleep(Duration::from_millis(20));
        let due = pacer.due();
        assert!((19..=30).contains(&due), "{due}");
    }
}
