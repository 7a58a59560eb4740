//! Retry budgets and latency reservoirs (for hedging): conversions only. Hot calls are free
//! functions keyed by a per-thread slot, as in `limit.rs`.

use std::sync::Arc;

use havoc_core::limit::{shared_budget, shared_budgets, shared_latency, BudgetOptions, Clock, FakeClock, LatencyReservoir, RetryBudget};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::limit::{get, insert, invalid, ms_to_ns, remove, set_manual_clock, with, Slots};

thread_local! {
  static BUDGETS: Slots<RetryBudget> = const { std::cell::RefCell::new(Vec::new()) };
  static RESERVOIRS: Slots<LatencyReservoir> = const { std::cell::RefCell::new(Vec::new()) };
}

fn budget_options(ratio: f64, min_per_sec: f64, window_ms: f64) -> Result<BudgetOptions> {
  let options = BudgetOptions { ratio, min_per_sec, window_ns: ms_to_ns(window_ms, "windowMs")? };
  options.validate().map_err(invalid)?;
  Ok(options)
}

/// A retry budget's window and lifetime figures.
#[napi(object)]
pub struct NativeBudgetStatus {
  pub name: String,
  pub ratio: f64,
  pub min_per_sec: f64,
  pub window_ms: f64,
  /// First attempts in the window.
  pub requests: f64,
  /// Retries taken in the window.
  pub retries: f64,
  /// Retries refused since creation.
  pub exhausted: f64,
}

fn status(name: String, budget: &RetryBudget) -> NativeBudgetStatus {
  let options = budget.options();
  let counts = budget.counts();
  NativeBudgetStatus {
    name,
    ratio: options.ratio,
    min_per_sec: options.min_per_sec,
    window_ms: options.window_ns as f64 / 1e6,
    requests: counts.requests as f64,
    retries: counts.retries as f64,
    exhausted: budget.exhausted() as f64,
  }
}

/// A retry budget. Hot calls: [`retry_budget_request`], [`retry_budget_spend`].
#[napi]
pub struct NativeRetryBudget {
  slot: u32,
  manual_clock: Option<Arc<FakeClock>>,
}

#[napi]
impl NativeRetryBudget {
  #[napi(constructor)]
  pub fn new(ratio: f64, min_per_sec: f64, window_ms: f64) -> Result<Self> {
    let budget = RetryBudget::new(budget_options(ratio, min_per_sec, window_ms)?).map_err(invalid)?;
    Ok(NativeRetryBudget { slot: insert(&BUDGETS, Arc::new(budget)), manual_clock: None })
  }

  /// The process-wide budget `name`: created by the first caller, the same one afterwards.
  #[napi(factory)]
  pub fn shared(name: String, ratio: f64, min_per_sec: f64, window_ms: f64) -> Result<Self> {
    let budget = shared_budget(&name, budget_options(ratio, min_per_sec, window_ms)?).map_err(invalid)?;
    Ok(NativeRetryBudget { slot: insert(&BUDGETS, budget), manual_clock: None })
  }

  /// A budget whose clock stands at 0 until [`set_clock_ms`](Self::set_clock_ms) moves it.
  #[napi(factory)]
  pub fn with_manual_clock(ratio: f64, min_per_sec: f64, window_ms: f64) -> Result<Self> {
    let clock = Arc::new(FakeClock::new(0));
    let budget = RetryBudget::with_clock(budget_options(ratio, min_per_sec, window_ms)?, clock.clone() as Arc<dyn Clock>).map_err(invalid)?;
    Ok(NativeRetryBudget { slot: insert(&BUDGETS, Arc::new(budget)), manual_clock: Some(clock) })
  }

  /// Moves a manual clock forward to `ms` (never back).
  #[napi]
  pub fn set_clock_ms(&self, ms: f64) -> Result<()> {
    set_manual_clock(self.manual_clock.as_deref(), ms)
  }

  #[napi(getter)]
  pub fn slot(&self) -> u32 {
    self.slot
  }

  /// The window's figures (`name` left empty: the caller knows it).
  #[napi]
  pub fn status(&self) -> NativeBudgetStatus {
    status(String::new(), &get(&BUDGETS, self.slot))
  }
}

impl Drop for NativeRetryBudget {
  fn drop(&mut self) {
    remove(&BUDGETS, self.slot);
  }
}

/// Records a first attempt in the budget in `slot`.
#[napi]
pub fn retry_budget_request(slot: u32) {
  with(&BUDGETS, slot, |b| b.record_request());
}

/// Takes one retry from the budget in `slot`; `false` when it is spent.
#[napi]
pub fn retry_budget_spend(slot: u32) -> bool {
  with(&BUDGETS, slot, |b| b.try_spend()).unwrap_or(false)
}

/// Every shared retry budget of the process, sorted by name.
#[napi]
pub fn shared_retry_budget_list() -> Vec<NativeBudgetStatus> {
  shared_budgets().into_iter().map(|(name, budget)| status(name, &budget)).collect()
}

/// A ring of the last latencies of a call. Hot call: [`latency_record`].
#[napi]
pub struct NativeLatencyReservoir {
  slot: u32,
}

#[napi]
impl NativeLatencyReservoir {
  #[napi(constructor)]
  pub fn new(capacity: u32) -> Result<Self> {
    let reservoir = LatencyReservoir::new(capacity as usize).map_err(invalid)?;
    Ok(NativeLatencyReservoir { slot: insert(&RESERVOIRS, Arc::new(reservoir)) })
  }

  /// The process-wide reservoir `name`.
  #[napi(factory)]
  pub fn shared(name: String, capacity: u32) -> Result<Self> {
    let reservoir = shared_latency(&name, capacity as usize).map_err(invalid)?;
    Ok(NativeLatencyReservoir { slot: insert(&RESERVOIRS, reservoir) })
  }

  #[napi(getter)]
  pub fn slot(&self) -> u32 {
    self.slot
  }

  /// Samples held.
  #[napi(getter)]
  pub fn count(&self) -> u32 {
    get(&RESERVOIRS, self.slot).len() as u32
  }

  /// The `p` quantile of the samples held, in milliseconds; -1 when there are none.
  #[napi]
  pub fn percentile(&self, p: f64) -> f64 {
    get(&RESERVOIRS, self.slot).percentile(p).unwrap_or(-1.0)
  }
}

impl Drop for NativeLatencyReservoir {
  fn drop(&mut self) {
    remove(&RESERVOIRS, self.slot);
  }
}

/// Records one latency in the reservoir in `slot`.
#[napi]
pub fn latency_record(slot: u32, ms: f64) {
  with(&RESERVOIRS, slot, |r| r.record(ms));
}
