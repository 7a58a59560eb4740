import native = require('./native.js');
import { validateConfig } from './config.js';
import type { Config } from './types.js';

export type RiskStatus = 'SAFE' | 'ELEVATED' | 'HIGH' | 'CRITICAL';

/** The blast-radius guard's verdict. */
export interface RiskReport {
  /** 0–100: ⌊(1 − survival) × 100⌋. */
  score: number;
  status: RiskStatus;
  /** 1 − survival, in [0, 1]. */
  totalRisk: number;
  /** Findings, one sentence each. */
  issues: string[];
  /** Each active policy's share: risk = min(scope × severity, 0.95). */
  policies: { name: string; scope: number; severity: number; risk: number }[];
}

/** Scores how much of the service `config` can hurt, with findings. Nothing is applied. */
export function analyze(config: Config): RiskReport {
  const report = native.analyze(JSON.stringify(validateConfig(config)));
  return { ...report, status: report.status as RiskStatus };
}
