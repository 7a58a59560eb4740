//! The native half of `npm run bench:soak`, without V8: 4 threads decide while the main thread
//! makes 10,000 changes (slot-moving updates, 1 ms leases, halts, resumes, rollbacks). Prints the
//! process's resident memory along the way, so native growth can be told from JS heap growth.
//!
//! Run: `cargo run --release -p havoc-core --example soak [changes]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use havoc_core::{Config, NoHeaders, Policy, PolicySet, Protocol};

const TARGETS: u32 = 20;

fn generation(g: u64) -> Config {
  let mut policies: Vec<Policy> = (0..TARGETS)
    .map(|i| Policy {
      name: format!("g{g}-p{i}"),
      protocol: Some(Protocol::Http),
      target: format!("/a/{i}"),
      error_chance: 1.0,
      error_code: 500 + i,
      ..Policy::default()
    })
    .collect();
  if g % 2 == 1 {
    policies.reverse();
  }
  Config { policies, ..Config::default() }
}

fn resident_mb() -> f64 {
  let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
  let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
  pages * 4096.0 / 1_048_576.0
}

fn main() {
  let changes: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
  let set = PolicySet::named("soak");
  set.apply(generation(0)).expect("valid");
  let published = Arc::new(AtomicU64::new(0));
  let stop = Arc::new(AtomicBool::new(false));
  let deciders: Vec<_> = (0..4)
    .map(|seed| {
      let (set, stop, published) = (Arc::clone(&set), Arc::clone(&stop), Arc::clone(&published));
      std::thread::spawn(move || {
        let mut handle = set.handle(Some(seed));
        let targets: Vec<String> = (0..TARGETS).map(|i| format!("/a/{i}")).collect();
        let (mut faults, mut wrong) = (0u64, 0u64);
        while !stop.load(Ordering::Relaxed) {
          for (i, target) in targets.iter().enumerate() {
            let Some(d) = handle.decide(Protocol::Http, target, &mut NoHeaders) else { continue };
            faults += 1;
            let policy = &handle.decided_on().expect("set by a fault").policies[d.policy].policy;
            let generation: u64 = policy.name[1..policy.name.find('-').unwrap_or(1)].parse().unwrap_or(u64::MAX);
            if policy.error_code != 500 + i as u32 || generation > published.load(Ordering::SeqCst) {
              wrong += 1;
            }
          }
        }
        (faults, wrong)
      })
    })
    .collect();
  std::thread::sleep(Duration::from_millis(100));
  let baseline = resident_mb();
  println!("baseline RSS {baseline:.1} MB");
  let started = Instant::now();
  for change in 1..=changes {
    match change % 8 {
      0..=2 => {
        let g = published.fetch_add(1, Ordering::SeqCst) + 1;
        set.apply(generation(g)).expect("valid");
      }
      3 => {
        set.apply_layer("api", Config::default(), Some(Duration::from_millis(1))).expect("valid");
      }
      4 => {
        set.halt();
      }
      5 => {
        set.resume();
      }
      _ => {
        let _ = set.rollback();
      }
    }
    if change % 1000 == 0 {
      println!("changes {change}: RSS {:.1} MB (+{:.1})", resident_mb(), resident_mb() - baseline);
    }
  }
  stop.store(true, Ordering::Relaxed);
  let (faults, wrong) = deciders.into_iter().map(|t| t.join().expect("decider")).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
  println!(
    "{changes} changes in {:.1} s; {faults} faults decided, {wrong} wrong; RSS growth {:.1} MB",
    started.elapsed().as_secs_f64(),
    resident_mb() - baseline
  );
}
