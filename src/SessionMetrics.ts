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

/**
 * What a store operation ended with; the values of the `outcome` tag.
 *
 * @since 0.1.0
 */
export type Outcome =
  | "ok"
  | "found"
  | "missing"
  | "expired"
  | "malformed"
  | "skipped"
  | "conflict"
  | "rejected"
  | "error"
  | "interrupted"

/**
 * Store operations that ended, tagged `backend`, `operation` and `outcome`.
 *
 * @since 0.1.0
 */
export const storeOperations = Metric.counter("effect_session_operations_total", {
  description: "Store operations by name and outcome",
  incremental: true
})

/**
 * UTF-8 bytes of each payload written by create, save, update and regenerate, tagged `backend`.
 *
 * @since 0.1.0
 */
export const payloadBytes = Metric.histogram(
  "effect_session_payload_bytes",
  MetricBoundaries.exponential({ start: 64, factor: 2, count: 12 }),
  "UTF-8 bytes of session payloads written"
)

/**
 * The outcome of a failed operation, from the tag of its error.
 *
 * @since 0.1.0
 */
export const outcomeOfError = (error: unknown): Outcome => {
  switch ((error as { _tag?: unknown } | null)?._tag) {
    case "VersionConflict":
      return "conflict"
    case "SessionNotFound":
      return "missing"
    case "PayloadTooLarge":
    case "SessionEncodeError":
    case "InvalidUserId":
      return "rejected"
    default:
      return "error"
  }
}
