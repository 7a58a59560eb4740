// The compiled addon, loaded once per thread by the napi-rs generated loader. Every
// worker thread gets its own JS wrapper, but the Rust statics behind it (policy sets,
// limiters, sabotage) are shared by the whole process.
import * as native from '../index.js';

export = native;
