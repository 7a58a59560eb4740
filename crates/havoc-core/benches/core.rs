//! `cargo bench -p havoc-core`: decide, hash and normalize.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use havoc_core::{hash, sql, Config, NoHeaders, Policy, PolicySet, Protocol};

fn http_config(count: usize) -> Config {
  let policies = (0..count)
    .map(|i| Policy {
      name: format!("p{i}"),
      protocol: Some(Protocol::Http),
      target: if i % 4 == 0 { format!("/api/v1/service-{i}/*") } else { format!("/api/v1/resource-{i}") },
      error_chance: if i == 1 { 1.0 } else { 0.0 },
      ..Policy::default()
    })
    .collect();
  Config { policies, ..Config::default() }
}

fn decide(c: &mut Criterion) {
  let set = PolicySet::named("bench");
  set.apply(http_config(100)).unwrap();
  let mut handle = set.handle(Some(1));
  let mut group = c.benchmark_group("decide/100 http policies");
  for (label, target) in [
    ("no match", "/api/v2/orders/42?expand=items"),
    ("exact match, chances 0", "/api/v1/resource-2"),
    ("wildcard match, chances 0", "/api/v1/service-8/deep/path"),
    ("match, error fires", "/api/v1/resource-1"),
  ] {
    group.bench_function(label, |b| b.iter(|| handle.decide(Protocol::Http, black_box(target), &mut NoHeaders)));
  }
  group.finish();
}

fn hashing(c: &mut Criterion) {
  let policy = &http_config(2).policies[1];
  c.bench_function("hash/policy identity", |b| b.iter(|| black_box(policy).identity()));
  let data = vec![b'x'; 1024];
  let mut group = c.benchmark_group("hash/fnv1a64");
  group.throughput(Throughput::Bytes(data.len() as u64));
  group.bench_function("1 KiB", |b| b.iter(|| hash::fnv1a64(black_box(&data))));
  group.finish();
}

fn normalize(c: &mut Criterion) {
  let query = "/* svc=orders */ SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id \
               WHERE o.status IN ('new', 'paid', 'shipped') AND o.created_at > '2024-01-01' -- recent\n ORDER BY o.id LIMIT 50;";
  let mut out = String::new();
  let mut group = c.benchmark_group("sql");
  group.throughput(Throughput::Bytes(query.len() as u64));
  group.bench_function("normalize", |b| b.iter(|| sql::normalize_into(black_box(query), &mut out)));
  group.bench_function("fingerprint", |b| b.iter(|| sql::fingerprint_into(black_box(query), &mut out)));
  group.finish();
}

criterion_group!(benches, decide, hashing, normalize);
criterion_main!(benches);
