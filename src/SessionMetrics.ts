/**
 * The metrics effect-session records, with stable names. Tags are limited to
 * backend, operation, outcome and reason, so their number stays bounded.
 *
 * @since 0.1.0
 */
import { Metric, MetricBoundaries } from "effect"

/**
 * Sweep runs started, tagged `backend`.
 *
 * @since 0.1.0
 */
export const sweepRuns = Metric.counter("effect_session_sweep_runs_total", {
  description: "Sweep runs started",
  incremental: true
})

/**
 * Expired sessions removed by sweeps, tagged `backend`.
 *
 * @since 0.1.0
 */
export const sweptSessions = Metric.counter("effect_session_swept_sessions_total", {
  description: "Expired sessions removed by sweeps",
  incremental: true
})

/**
 * Failed sweep runs, tagged `backend` and `reason` (the error's tag).
 *
 * @since 0.1.0
 */
export const sweepFailures = Metric.counter("effect_session_sweep_failures_total", {
  description: "Sweep runs that failed",
  incremental: true
})

/**
 * Duration of sweep runs in milliseconds, tagged `backend`.
 *
 * @since 0.1.0
 */
export const sweepDuration = Metric.histogram(
  "effect_session_sweep_duration_ms",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
  "Duration of sweep runs in milliseconds"
)
