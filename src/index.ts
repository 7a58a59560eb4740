// Gives the control plane and the watcher their `isolate: true` option: isolate depends on
// them, not the reverse (see ./isolate.ts), so the entry point loads it.
import './isolate.js';

export { Engine, defaultWarmupMs } from './engine.js';
export type { Decision, EngineOptions, HeaderBag } from './engine.js';
export { analyze } from './guard.js';
export type { RiskReport, RiskStatus } from './guard.js';
export { fnv1a64, policyHash } from './hash.js';
export { normalizeSql, fingerprintSql } from './sql.js';
export { parseConfig, loadConfig, validateConfig } from './config.js';
export { HavocError, ConfigError, FleetError, FleetRejectionError } from './errors.js';
export type { FleetRejectionReason } from './errors.js';
export type { ConfigIssue } from './errors.js';
export { parseDuration, formatDuration } from './duration.js';
export { PROTOCOLS } from './types.js';
export type { Config, Policy, Protocol, StreamRollMode } from './types.js';
export { sabotageStatus, stopSabotage } from './sabotage.js';
export type { SabotageStatus, SabotageLoad } from './sabotage.js';
export {
  RateLimitExceededError,
  LoadShedError,
  BulkheadFullError,
  RateLimitStoreError,
  DeadlineExceededError,
  CircuitOpenError,
  RetryExhaustedError,
  TimeoutError,
} from './errors.js';
export type { RetryGiveUpReason } from './errors.js';
export { CircuitBreaker } from './breaker/circuit-breaker.js';
export type { StateChange, Rejection, BreakerCallContext } from './breaker/circuit-breaker.js';
export { Permit } from './breaker/permit.js';
export { defaultIsFailure, isPermanentClientError, isRetryable, fatal, isFatal } from './breaker/classify.js';
export type { FailureVerdict } from './breaker/classify.js';
export type { Disposable } from './breaker/events.js';
export type {
  CircuitBreakerOptions,
  CommonBreakerOptions,
  ConsecutiveRule,
  CountRule,
  TimeRule,
  BreakerSnapshot,
  BreakerState,
} from './breaker/options.js';
export { Retry } from './retry/retry.js';
export type { RetryEvent, GiveUpEvent } from './retry/retry.js';
export type { RetryOptions } from './retry/options.js';
export type { Jitter, JitterFunction, JitterInput } from './retry/backoff.js';
export { parseRetryAfter, requestedDelayMs } from './retry/retry-after.js';
export { RetryBudget, sharedRetryBudgets } from './retry/budget.js';
export type { RetryBudgetOptions, BudgetStatus } from './retry/budget.js';
export { Timeout } from './resilience/timeout.js';
export type { TimeoutOptions } from './resilience/timeout.js';
export { Fallback } from './resilience/fallback.js';
export type { FallbackOptions, FallbackEvent } from './resilience/fallback.js';
export { Hedge, HedgeLostError } from './resilience/hedge.js';
export type { HedgeOptions, HedgeEvent } from './resilience/hedge.js';
export { wrap, Wrapped } from './resilience/wrap.js';
export type { CallContext, CallOptions, Executor, LayerArgument } from './resilience/contract.js';
export { ManualClock } from './resilience/clock.js';
export type { Clock } from './resilience/clock.js';
export { RateLimiter } from './limit/rate-limiter.js';
export type { RateLimiterOptions, RateLimitStore, RateLimitSpec, AcquireOptions, ExecuteOptions } from './limit/rate-limiter.js';
export { AdaptiveLimiter, Token, isTimeout } from './limit/adaptive-limiter.js';
export type { AdaptiveLimiterOptions } from './limit/adaptive-limiter.js';
export { Bulkhead, PriorityBulkhead } from './limit/bulkhead.js';
export type { BulkheadOptions, PriorityBulkheadOptions, BulkheadExecuteOptions, Priority } from './limit/bulkhead.js';
export { redisStore } from './limit/redis-store.js';
export type { RedisStoreOptions } from './limit/redis-store.js';
export {
  formatGrpcTimeout,
  parseGrpcTimeout,
  deadlineFromHeaders,
  deadlineSignal,
  injectDeadline,
  remainingMs,
  TIMEOUT_MS_HEADER,
  DEFAULT_EARLY_ABORT_MS,
} from './deadline.js';
export type { DeadlineOptions } from './deadline.js';
export { withChaos } from './chaos.js';
export type { ChaosOptions } from './chaos.js';
export { instrumentPg } from './interceptors/pg.js';
export { instrumentMysql } from './interceptors/mysql.js';
export type { MysqlError } from './interceptors/mysql.js';
export { instrumentIoredis, DEFAULT_REDIS_ERROR } from './interceptors/ioredis.js';
export { grpcServerInterceptor, grpcClientInterceptor } from './interceptors/grpc.js';
export { instrumentAmqp, DEFAULT_AMQP_ERROR } from './interceptors/amqp.js';
export type { AmqpChannel } from './interceptors/amqp.js';
export { AmqpPublishError } from './errors.js';
export { instrumentMongo, DEFAULT_MONGO_ERROR_CODE, SUPPORTED_MONGODB_RANGE } from './interceptors/mongo.js';
export { instrumentKafka, DEFAULT_KAFKA_ERROR_CODE } from './interceptors/kafka.js';
export { KafkaInjectedError } from './errors.js';
export { FILE_LAYER, API_LAYER, FLEET_LAYER } from './engine.js';
export type { ApplyLayerOptions, HistoryEntry, LayerState, LeaseState, SetState } from './engine.js';
export { wrapHandler, httpMiddleware } from './interceptors/http.js';
export { fastifyPlugin } from './interceptors/fastify.js';
export type { FastifyPluginOptions } from './interceptors/fastify.js';
export { chaosFetch, chaosDispatcher } from './interceptors/outbound.js';
export { InjectedNetworkError } from './errors.js';
export { watchConfig } from './watch.js';
export type { ConfigWatcher, WatchOptions } from './watch.js';
export { startControlPlane, MAX_BODY_BYTES } from './control-plane.js';
export type { ControlPlane, ControlPlaneOptions } from './control-plane.js';
export { joinFleet, publishFleet, renewFleet, fleetSet, fleetMembers, DEFAULT_CHANNEL as DEFAULT_FLEET_CHANNEL } from './fleet/index.js';
export type {
  FleetAck,
  FleetMember,
  FleetMemberStatus,
  FleetRecord,
  FleetRedis,
  JoinFleetOptions,
  PublishFleetOptions,
  RenewFleetOptions,
} from './fleet/index.js';
