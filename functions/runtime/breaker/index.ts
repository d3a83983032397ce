export {
  type BreakerAttempt,
  type BreakerGate,
  Breakers,
  breakerOutcome,
  MAX_BREAKERS,
  ROUTE_BREAKER,
} from './Breakers.ts';
export {
  BREAKER_STATE_VALUE,
  type BreakerAdmission,
  type BreakerClock,
  type BreakerOutcome,
  type BreakerPermit,
  type BreakerRefusal,
  BreakerState,
  CircuitBreaker,
  PROBE_RECHECK_MS,
} from './CircuitBreaker.ts';
