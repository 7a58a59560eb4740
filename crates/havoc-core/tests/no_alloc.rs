//! The per-request decision allocates nothing: counted by a global allocator wrapper.
//! (An integration test, so that the counting allocator is this binary's alone.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use havoc_core::{Config, NoHeaders, Policy, PolicySet, Protocol};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
  unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    System.alloc(layout)
  }
  unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
    System.dealloc(ptr, layout)
  }
  unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    System.realloc(ptr, layout, new_size)
  }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn policy(name: &str, protocol: Protocol, target: &str) -> Policy {
  Policy {
    name: name.into(),
    protocol: Some(protocol),
    target: target.into(),
    latency_chance: 0.5,
    latency_duration: 10.0,
    error_chance: 0.5,
    ..Policy::default()
  }
}

#[test]
fn deciding_allocates_nothing() {
  let mut policies: Vec<Policy> = (0..100).map(|i| policy(&format!("h{i}"), Protocol::Http, &format!("/api/v1/r{i}"))).collect();
  policies.push(policy("wild", Protocol::Http, "/api/v2/*"));
  policies.push(policy("headers", Protocol::Http, "/canary"));
  policies.last_mut().unwrap().match_headers.insert("x-canary".into(), "on".into());
  policies.push(policy("orders", Protocol::Sql, "orders"));
  policies.push(policy("get", Protocol::Redis, "GET"));
  let set = PolicySet::named("no-alloc");
  set.apply(Config { policies, ..Config::default() }).unwrap();
  let mut handle = set.handle(Some(3));
  let requests = [
    (Protocol::Http, "/api/v1/r42?x=1"),
    (Protocol::Http, "/api/v2/orders/7"),
    (Protocol::Http, "/nothing/here"),
    (Protocol::Http, "/canary"),
    (Protocol::Sql, "select * from orders where id = 1 -- trace"),
    (Protocol::Sql, "SELECT 1"),
    (Protocol::Redis, "get"),
    (Protocol::Redis, "PING"),
  ];
  let mut headers = vec![("x-canary", "on")];
  // Warm-up: thread-local buffers and the snapshot cache settle.
  for (protocol, target) in requests {
    handle.decide(protocol, target, &mut headers);
  }
  let before = ALLOCATIONS.load(Ordering::Relaxed);
  let mut fired = 0;
  for _ in 0..10_000 {
    for (protocol, target) in requests {
      fired += usize::from(handle.decide(protocol, target, &mut NoHeaders).is_some());
      fired += usize::from(handle.decide(protocol, target, &mut headers).is_some());
    }
  }
  let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
  assert!(fired > 0, "the policies fired");
  assert_eq!(allocations, 0, "{allocations} allocations in 160,000 decisions");
}
