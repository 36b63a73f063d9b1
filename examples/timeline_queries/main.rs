//! The benchmark's W5 timeline queries (a 50-entry entity timeline, now and as of a
//! random position, picked as `bench` picks them) on an existing store of generated
//! events, twice: p50 and p99 of each pass, and the slowest as-of queries of the second.
//! With `--current-only`, six passes of the current page alone (for a profiler).
//!
//! ```sh
//! cargo run --release --example generate -- 1000000 > in.jsonl
//! chronicle --db s import in.jsonl
//! cargo run --release --example timeline_queries -- s 1000000 1000
//! valgrind --tool=callgrind --toggle-collect='*Query*timeline*' \
//!     target/release/examples/timeline_queries s 1000000 200 --current-only
//! ```
#[path = "../common/payload.rs"]
mod payload;
use chronicle::model::{EntityId, Position};
use chronicle::query::{Query, TimelineFilter};
use chronicle::store::SledStore;
use std::time::Instant;

/// The allocator of `chronicle` and the benchmark, so that the figures are theirs.
#[global_allocator]
static ALLOCATOR: chronicle::alloc::Allocator = chronicle::alloc::Allocator;

fn main() -> anyhow::Result<()> {
    use anyhow::Context;
    const USAGE: &str = "usage: timeline_queries STORE EVENTS [QUERIES] [--current-only]";
    let mut args: Vec<String> = std::env::args().collect();
    let current_only = args.last().is_some_and(|a| a == "--current-only");
    if current_only {
        args.pop();
    }
    let dir = std::path::Path::new(args.get(1).context(USAGE)?);
    let n: u64 = args.get(2).context(USAGE)?.parse().context(USAGE)?;
    let queries: usize = args.get(3).map_or(Ok(1000), |s| s.parse()).context(USAGE)?;
    let people = payload::people_for(n);
    let store = SledStore::open(dir)?;
    let t = Instant::now();
    store.live_views()?;
    eprintln!("caught up in {:?}", t.elapsed());
    let mut rng = payload::Rng(0x5eed);
    let after_people = n.saturating_sub(people).max(1);
    let picks: Vec<(String, u64)> = (0..queries)
        .map(|_| {
            (
                payload::person(rng.below(people)),
                people + rng.below(after_people),
            )
        })
        .collect();
    for pass in 0..if current_only { 6 } else { 2 } {
        let (mut now, mut past) = (vec![], vec![]);
        let mut found = 0;
        let mut slow: Vec<(f64, u64, String)> = vec![];
        for (person, at) in &picks {
            let filter = TimelineFilter {
                entity: Some(EntityId::parse(person).map_err(anyhow::Error::msg)?),
                limit: Some(50),
                ..TimelineFilter::default()
            };
            let t = Instant::now();
            found += Query::new(&store.live_views()?).timeline(&filter)?.len();
            now.push(t.elapsed().as_secs_f64() * 1e3);
            if current_only {
                continue;
            }
            let t = Instant::now();
            found += Query::new(&store.views_at(Position(*at))?)
                .timeline(&filter)?
                .len();
            past.push(t.elapsed().as_secs_f64() * 1e3);
            if pass == 1 {
                slow.push((t.elapsed().as_secs_f64() * 1e3, *at, person.clone()));
            }
        }
        slow.sort_by(|a, b| b.0.total_cmp(&a.0));
        for s in slow.iter().take(12) {
            println!("  slow {:.3} ms at {} {}", s.0, s.1, s.2);
        }
        now.sort_by(f64::total_cmp);
        past.sort_by(f64::total_cmp);
        let p = |v: &Vec<f64>, q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        let as_of = match past.is_empty() {
            true => String::new(),
            false => format!(
                " | as-of p50 {:.3} p99 {:.3}",
                p(&past, 0.5),
                p(&past, 0.99)
            ),
        };
        println!(
            "pass {pass}: now p50 {:.3} p99 {:.3}{as_of} ms | entries {found}",
            p(&now, 0.5),
            p(&now, 0.99),
        );
    }
    Ok(())
}
