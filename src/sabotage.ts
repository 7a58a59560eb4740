/**
 * OS resource sabotage, as seen from JavaScript. The CPU and RAM loads themselves run on
 * native threads of the Rust core, never on the event loop; this module only reads them.
 */
import native = require('./native.js');

/** One `resource` policy acted out. */
export interface SabotageLoad {
  policy: string;
  /** The policy's identity (`policyHash`) as 16 hex digits. */
  identity: string;
  /** Increases with every start in the process: a restarted load gets a new one. */
  serial: number;
  /** Threads burning now (0 once a burn with a `duration` ended). */
  cpuThreads: number;
  /** Duty cycle of each burning thread. */
  cpuPercent: number;
  /** Kernel ids of the burning threads (`/proc/self/task/<id>`). */
  threadIds: number[];
  ramBytesResident: number;
  /** What the load grows to: its cap within the process ceiling; 0 once it stopped. */
  ramBytesTarget: number;
}

/** What `Engine.sabotage()` returns: the sabotage of the engine's policy set. */
export interface SabotageStatus {
  cpu: {
    /** Native threads burning CPU. */
    threads: number;
    /** Sum of their duty cycles, as `top` counts: 100 per fully busy core. */
    percent: number;
  };
  ram: {
    /** Bytes written and held now (outside the JS heap). */
    bytesResident: number;
    /** Bytes the RAM policies grow to. */
    bytesTarget: number;
    /** The process-wide ceiling no configuration can pass. */
    bytesCeiling: number;
    /** Why the ceiling is what it is: the default, or 80% of the cgroup limit or of physical memory. */
    ceilingReason: string;
  };
  loads: SabotageLoad[];
}

/** The sabotage of the policy set called `name`. */
export function sabotageStatus(name: string): SabotageStatus {
  const s = native.sabotageStatus(name);
  return {
    cpu: { threads: s.cpuThreads, percent: s.cpuPercent },
    ram: {
      bytesResident: s.ramBytesResident,
      bytesTarget: s.ramBytesTarget,
      bytesCeiling: s.ramBytesCeiling,
      ceilingReason: s.ramCeilingReason,
    },
    loads: s.loads,
  };
}

/** Stops every load of the set called `name` at once; its threads leave within 10 ms. */
export function stopSabotage(name: string): void {
  native.stopSabotage(name);
}

/** Process-wide figures, for the Prometheus metrics. */
export interface SabotageTotals {
  cpuThreads: number;
  cpuPercent: number;
  ramBytes: number;
  cpuStarts: number;
  cpuStops: number;
  ramStarts: number;
  ramStops: number;
}

export function sabotageTotals(): SabotageTotals {
  return native.sabotageTotals();
}
