import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, Queue, Schema, TestClock } from "effect"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import * as MemoryRepository from "../src/MemoryRepository.js"
import * as SessionMetrics from "../src/SessionMetrics.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import * as Faulty from "./helpers/faulty.js"

const Note = Schema.Struct({ text: Schema.String })

const Backend = Faulty.layer(MemoryRepository.layer)

const makeStore = SessionStore.make({
  schema: Note,
  policy: ExpirationPolicy.sliding("30 minutes"),
  maxPayloadBytes: 256
})

const operations = (operation: string, outcome: SessionMetrics.Outcome) =>
  Metric.value(
    SessionMetrics.storeOperations.pipe(
      Metric.tagged("backend", "memory"),
      Metric.tagged("operation", operation),
      Metric.tagged("outcome", outcome)
    )
  ).pipe(Effect.map((state) => state.count))

/** How much each of `pairs` ("operation/outcome") grew while `effect` ran. */
const deltas = <A, E, R>(pairs: ReadonlyArray<string>, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const read = Effect.forEach(pairs, (pair) => {
      const [operation, outcome] = pair.split("/")
      return operations(operation, outcome as SessionMetrics.Outcome)
    })
    const before = yield* read
    yield* effect
    const after = yield* read
    return Object.fromEntries(pairs.map((pair, i) => [pair, after[i] - before[i]]))
  })

describe("SessionMetrics", () => {
  it.effect("counts restores by outcome: found, missing, expired and malformed", () =>
    Effect.gen(function* () {
      const store = yield* makeStore
      const live = yield* store.create({ text: "live" })
      const stale = yield* store.create({ text: "stale" })
      const gone = yield* store.create({ text: "gone" })
      yield* store.delete(gone.token)

      const counted = yield* deltas(
        ["restore/found", "restore/missing", "restore/expired", "restore/malformed"],
        Effect.gen(function* () {
          yield* store.restore(live.token)
          yield* store.restore(gone.token)
          yield* store.restore("not a token")
          yield* TestClock.adjust("31 minutes")
          yield* store.restore(stale.token)
        })
      )

      assert.deepStrictEqual(counted, {
        "restore/found": 1,
        "restore/missing": 1,
        "restore/expired": 1,
        "restore/malformed": 1
      })
    }).pipe(Effect.provide(Backend))
  )

  it.effect("counts writes as ok, conflict, missing, rejected or error", () =>
    Effect.gen(function* () {
      const store = yield* makeStore
      const session = yield* store.create({ text: "a" })
      const deleted = yield* store.create({ text: "b" })
      yield* store.delete(deleted.token)

      const counted = yield* deltas(
        ["save/ok", "save/conflict", "save/missing", "save/rejected", "save/error"],
        Effect.gen(function* () {
          yield* store.save({ ...session, payload: { text: "a2" } })
          yield* Effect.either(store.save({ ...session, payload: { text: "a3" } }))
          yield* Effect.either(store.save({ ...deleted, payload: { text: "b2" } }))
          yield* Effect.either(store.save({ ...session, payload: { text: "x".repeat(300) } }))
          yield* Faulty.FaultControl.failNext("update", 1)
          yield* Effect.either(store.save({ ...session, version: 2, payload: { text: "a4" } }))
        })
      )

      assert.deepStrictEqual(counted, {
        "save/ok": 1,
        "save/conflict": 1,
        "save/missing": 1,
        "save/rejected": 1,
        "save/error": 1
      })
    }).pipe(Effect.provide(Backend))
  )

  it.effect("counts a touch that wrote nothing as skipped, and deletes of nothing as missing", () =>
    Effect.gen(function* () {
      const store = yield* makeStore
      const session = yield* store.create({ text: "a" })

      const counted = yield* deltas(
        ["touch/skipped", "touch/ok", "delete/ok", "delete/missing"],
        Effect.gen(function* () {
          yield* store.touch(session)
          yield* TestClock.adjust("1 minute")
          yield* store.touch(session)
          yield* store.delete(session.token)
          yield* store.delete(session.token)
        })
      )

      assert.deepStrictEqual(counted, { "touch/skipped": 1, "touch/ok": 1, "delete/ok": 1, "delete/missing": 1 })
    }).pipe(Effect.provide(Backend))
  )

  it.effect("records the UTF-8 size of every payload written, and nothing for a refused one", () =>
    Effect.gen(function* () {
      const store = yield* makeStore
      const histogram = Metric.tagged(SessionMetrics.payloadBytes, "backend", "memory")
      const before = yield* Metric.value(histogram)

      const session = yield* store.create({ text: "héllo" })
      yield* store.save({ ...session, payload: { text: "€" } })
      yield* Effect.either(store.save({ ...session, version: 2, payload: { text: "x".repeat(300) } }))

      const after = yield* Metric.value(histogram)
      const sizes = [Buffer.byteLength(`{"text":"héllo"}`), Buffer.byteLength(`{"text":"€"}`)]
      assert.strictEqual(after.count - before.count, 2)
      assert.strictEqual(after.sum - before.sum, sizes[0] + sizes[1])
      assert.strictEqual(sizes[0], 17)
    }).pipe(Effect.provide(Backend))
  )

  it.scoped("tags a failed sweep run with the reason of its error, under the documented names", () =>
    Effect.gen(function* () {
      const store = yield* makeStore
      yield* store.create({ text: "a" })
      const failures = SessionMetrics.sweepFailures.pipe(
        Metric.tagged("backend", "memory"),
        Metric.tagged("reason", "StoreUnavailable")
      )
      const runs = Metric.tagged(SessionMetrics.sweepRuns, "backend", "memory")
      const sweeper = yield* SessionSweeper.make({ interval: "1 minute", jitter: 0 })
      const reports = yield* sweeper.reports
      const [failuresBefore, runsBefore] = [(yield* Metric.value(failures)).count, (yield* Metric.value(runs)).count]

      yield* Faulty.FaultControl.failNext("removeExpired", 1)
      yield* TestClock.adjust("1 minute")
      const report = yield* Queue.take(reports)

      assert.strictEqual(report._tag, "Failed")
      assert.strictEqual((yield* Metric.value(failures)).count - failuresBefore, 1)
      assert.strictEqual((yield* Metric.value(runs)).count - runsBefore, 1)
      const names = new Set((yield* Metric.snapshot).map((pair) => pair.metricKey.name))
      for (const name of [
        "effect_session_sweep_runs_total",
        "effect_session_swept_sessions_total",
        "effect_session_sweep_failures_total",
        "effect_session_sweep_duration_ms",
        "effect_session_operations_total",
        "effect_session_payload_bytes"
      ]) {
        assert.isTrue(names.has(name), name)
      }
    }).pipe(Effect.provide(Backend))
  )
})
