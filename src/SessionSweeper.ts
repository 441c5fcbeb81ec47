/**
 * The sweep: a fiber forked in its layer's scope that removes expired records
 * in bounded batches. Closing the scope interrupts it; a failed run is logged,
 * counted, and the next run happens on schedule.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Metric,
  Option,
  PubSub,
  type Queue,
  Random,
  Ref,
  type Scope
} from "effect"
import { SessionConfigError, SweepError } from "./SessionError.js"
import * as SessionMetrics from "./SessionMetrics.js"
import { SessionRepository, type SessionRepositoryShape } from "./SessionRepository.js"

/**
 * @since 0.1.0
 */
export interface Options {
  /** Time between the end of one run and the start of the next. Default 5 minutes. */
  readonly interval?: Duration.DurationInput | undefined
  /** Most records one statement removes. Default 1,000. */
  readonly batchSize?: number | undefined
  /** Each wait is the interval times a random factor in [1 - jitter, 1 + jitter]. Default 0.1. */
  readonly jitter?: number | undefined
}

/**
 * What one run did.
 *
 * @since 0.1.0
 */
export type SweepReport =
  | { readonly _tag: "Swept"; readonly swept: number; readonly batches: number; readonly durationMs: number }
  | { readonly _tag: "Failed"; readonly error: SweepError }

/**
 * Totals since the sweeper started.
 *
 * @since 0.1.0
 */
export interface SweepStats {
  readonly runs: number
  readonly swept: number
  readonly failures: number
  readonly lastSuccessAt: number | null
}

/**
 * @since 0.1.0
 */
export interface SessionSweeperShape {
  /** Runs one sweep now, in the caller's fiber, and returns how many records went; counted like a scheduled run. */
  readonly sweep: Effect.Effect<number, SweepError>
  /** Totals of every run, scheduled or asked for. */
  readonly stats: Effect.Effect<SweepStats>
  /** A queue that receives the report of every run that ends after subscribing. */
  readonly reports: Effect.Effect<Queue.Dequeue<SweepReport>, never, Scope.Scope>
}

/**
 * The sweeper service, present while its layer's scope is open.
 *
 * @since 0.1.0
 */
export class SessionSweeper extends Context.Tag("effect-session/SessionSweeper")<
  SessionSweeper,
  SessionSweeperShape
>() {}

const resolve = (options: Options) =>
  Effect.gen(function* () {
    const interval = Option.match(Duration.decodeUnknown(options.interval ?? "5 minutes"), {
      onNone: () => Number.NaN,
      onSome: Duration.toMillis
    })
    const batchSize = options.batchSize ?? 1_000
    const jitter = options.jitter ?? 0.1
    if (!(interval >= 1 && Number.isFinite(interval))) {
      return yield* new SessionConfigError({ option: "interval", reason: "must be a finite duration of at least 1 ms" })
    }
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
      return yield* new SessionConfigError({ option: "batchSize", reason: "must be an integer from 1 to 100,000" })
    }
    if (!(jitter >= 0 && jitter < 1)) {
      return yield* new SessionConfigError({ option: "jitter", reason: "must be in [0, 1)" })
    }
    return { interval, batchSize, jitter }
  })

/**
 * One full sweep of a repository: batches of at most `batchSize`, until a
 * batch comes back short, with a yield between batches. The cutoff is read
 * from `Clock` once, at the start.
 *
 * @since 0.1.0
 */
export const sweepOnce = (
  repository: SessionRepositoryShape,
  batchSize: number
): Effect.Effect<{ readonly swept: number; readonly batches: number }, SweepError> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    let swept = 0
    let batches = 0
    for (;;) {
      const removed = yield* repository
        .removeExpired(now, batchSize)
        .pipe(Effect.mapError((cause) => new SweepError({ backend: repository.backend, swept, cause })))
      swept += removed
      batches++
      if (removed < batchSize) {
        return { swept, batches }
      }
      yield* Effect.sleep(0)
    }
  })

/**
 * Builds the sweeper and forks its loop in the current scope.
 *
 * @since 0.1.0
 */
export const make = (
  options: Options = {}
): Effect.Effect<SessionSweeperShape, SessionConfigError, SessionRepository | Scope.Scope> =>
  Effect.gen(function* () {
    const { batchSize, interval, jitter } = yield* resolve(options)
    const repository = yield* SessionRepository
    const tags = { backend: repository.backend }
    const reports = yield* PubSub.unbounded<SweepReport>()
    const stats = yield* Ref.make<SweepStats>({ runs: 0, swept: 0, failures: 0, lastSuccessAt: null })
    const tagged = <T, In, Out>(metric: Metric.Metric<T, In, Out>) => Metric.tagged(metric, "backend", tags.backend)

    const sweep = sweepOnce(repository, batchSize)

    const run = Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      yield* Metric.increment(tagged(SessionMetrics.sweepRuns))
      const result = yield* Effect.either(sweep)
      const ended = yield* Clock.currentTimeMillis
      const durationMs = ended - started
      yield* Metric.update(tagged(SessionMetrics.sweepDuration), durationMs)
      if (result._tag === "Right") {
        const { batches, swept } = result.right
        yield* Ref.update(stats, (s) => ({ ...s, runs: s.runs + 1, swept: s.swept + swept, lastSuccessAt: ended }))
        yield* Metric.incrementBy(tagged(SessionMetrics.sweptSessions), swept)
        yield* Effect.logDebug("sweep finished").pipe(Effect.annotateLogs({ swept, batches, durationMs }))
        yield* PubSub.publish(reports, { _tag: "Swept", swept, batches, durationMs })
        return result
      }
      const error = result.left
      yield* Ref.update(stats, (s) => ({
        ...s,
        runs: s.runs + 1,
        swept: s.swept + error.swept,
        failures: s.failures + 1
      }))
      yield* Metric.incrementBy(tagged(SessionMetrics.sweptSessions), error.swept)
      yield* Metric.increment(Metric.tagged(tagged(SessionMetrics.sweepFailures), "reason", reasonOf(error)))
      yield* Effect.logWarning("sweep failed", Cause.fail(error))
      yield* PubSub.publish(reports, { _tag: "Failed", error })
      return result
    })

    const wait = Effect.gen(function* () {
      const factor = jitter === 0 ? 1 : 1 - jitter + 2 * jitter * (yield* Random.next)
      yield* Effect.sleep(Math.max(1, Math.round(interval * factor)))
    })

    const loop = Effect.forever(
      Effect.zipRight(
        wait,
        Effect.catchAllCause(run, (cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.logError("sweep run died", cause)
        )
      )
    )

    yield* Effect.forkScoped(
      Effect.interruptible(loop).pipe(
        Effect.annotateLogs({ package: "effect-session", module: "SessionSweeper", backend: tags.backend })
      )
    )
    yield* Effect.logDebug("sweeper started").pipe(
      Effect.annotateLogs({ package: "effect-session", intervalMs: interval, batchSize })
    )

    return SessionSweeper.of({
      sweep: Effect.flatMap(run, (result) =>
        Either.match(result, { onLeft: Effect.fail, onRight: ({ swept }) => Effect.succeed(swept) })
      ),
      stats: Ref.get(stats),
      reports: PubSub.subscribe(reports)
    })
  })

const reasonOf = (error: SweepError): string => {
  const cause = error.cause as { _tag?: unknown } | undefined
  return typeof cause?._tag === "string" ? cause._tag : "Unknown"
}

/**
 * The sweeper as a layer: its fiber lives exactly as long as the layer's scope.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<SessionSweeper, SessionConfigError, SessionRepository> =>
  Layer.scoped(SessionSweeper, make(options))

/**
 * The options as `Config`: INTERVAL (a duration such as "5 minutes"),
 * BATCH_SIZE and JITTER, each optional.
 *
 * @since 0.1.0
 */
export const config: Config.Config<Options> = Config.all({
  interval: Config.option(Config.duration("INTERVAL")),
  batchSize: Config.option(Config.integer("BATCH_SIZE")),
  jitter: Config.option(Config.number("JITTER"))
}).pipe(
  Config.map(
    (values): Options => ({
      interval: Option.getOrUndefined(values.interval),
      batchSize: Option.getOrUndefined(values.batchSize),
      jitter: Option.getOrUndefined(values.jitter)
    })
  )
)

/**
 * The sweeper with its options from `Config`; by default from the environment
 * variables SESSION_SWEEP_INTERVAL, SESSION_SWEEP_BATCH_SIZE and SESSION_SWEEP_JITTER.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: Config.Config<Options> = Config.nested(config, "SESSION_SWEEP")
): Layer.Layer<SessionSweeper, SessionConfigError | ConfigError.ConfigError, SessionRepository> =>
  Layer.scoped(SessionSweeper, Effect.flatMap(options, make))
