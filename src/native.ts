// The compiled addon, loaded once per thread by the napi-rs generated loader. Every
// worker thread gets its own JS wrapper, but the Rust statics behind it (policy sets,
// limiters, sabotage) are shared by the whole process.
import * as addon from '../index.js';

/**
 * The addon's exports, plus `decide` and `breakerRecord`: plain N-API callbacks (see
 * `decide_callback` in `crates/havoc-node/src/engine.rs`, `breaker_record_callback` in
 * `breaker.rs`), which the generated declarations do not list.
 */
type Native = typeof addon & {
  /** `-1` for no fault, else a packed decision (see `Engine.#unpack`); `key` is `slot · 8 + protocol index`. */
  decide(key: number, target: string, headers: object): number;
  /** Ends a breaker call (plain N-API callback, see `breaker_record_callback`): `outcome` 0 success, 1 failure, 2 ignore; `startNs` < 0 when untimed. Returns the generation after it. */
  breakerRecord(slot: number, generation: number, startNs: number, outcome: number): number;
};

const native = addon as Native;

export = native;
