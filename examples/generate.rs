//! Generates a realistic synthetic log as JSON Lines on stdout, for measuring
//! `chronicle` at scale: registered people, trips with itineraries, agendas, meetings
//! and arrivals, arms sales, statements about them, and notes, each with a source and
//! a quote (about 300 to 600 bytes of JSON per event). The events come from
//! `examples/common/payload.rs`, which the benchmark (`examples/bench/`) shares.
//!
//! `cargo run --release --example generate -- 1000000 > big.jsonl`

#[path = "common/payload.rs"]
mod payload;

use std::io::{BufWriter, Write};

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for event in payload::log(total) {
        serde_json::to_writer(&mut out, &event).expect("stdout");
        out.write_all(b"\n").expect("stdout");
    }
    out.flush().expect("stdout");
}
