import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Layer, Option, Queue, Scope, TestClock } from "effect"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import * as MemoryRepository from "../src/MemoryRepository.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import * as SessionToken from "../src/SessionToken.js"
import * as SqlRepository from "../src/SqlRepository.js"
import { atT0, makeStore, payload, T0 } from "./conformance/fixtures.js"
import { runExitFixture } from "./helpers/child.js"
import * as Faulty from "./helpers/faulty.js"
import * as Logs from "./helpers/logs.js"

const MINUTE = 60_000

/** Lets forked fibers reach their first sleep before the clock moves. */
const settle = Effect.repeat(Effect.zipRight(Effect.yieldNow(), TestClock.sleeps()), {
  until: (sleeps) => Chunk.size(sleeps) > 0
})

/** Sets the clock to T0 first: a sweeper built at time 0 would replay every tick up to 2030. */
const fromT0 =
  <ROut, E2>(layer: Layer.Layer<ROut, E2>) =>
  <A, E, R>(body: Effect.Effect<A, E, R>) =>
    Effect.zipRight(atT0(), Effect.scoped(Effect.provide(body, layer)))

const sweeperLayer = (options: SessionSweeper.Options = {}) =>
  SessionSweeper.layer({ interval: "1 minute", jitter: 0, ...options })

const expiredRecord = (i: number, expiresAt: number) => ({
  key: SessionToken.keyOf(`expired-token-number-${i}-padding`),
  userId: null,
  createdAt: T0,
  expiresAt,
  version: 1,
  payload: "{}"
})

describe("SessionSweeper", () => {
  it.effect("runs on schedule and removes what expired", () =>
    Effect.gen(function* () {
      const store = yield* makeStore(ExpirationPolicy.absolute("5 minutes"))
      const sweeper = yield* SessionSweeper.SessionSweeper
      const reports = yield* sweeper.reports
      const session = yield* store.create(payload())
      yield* settle

      yield* TestClock.adjust(6 * MINUTE)
      const runs = yield* Queue.takeBetween(reports, 6, 6)

      assert.deepStrictEqual(
        [...runs].map((report) => report._tag === "Swept" && report.swept),
        [0, 0, 0, 0, 1, 0]
      )
      assert.isTrue(Option.isNone(yield* (yield* SessionRepository).get(session.key)))
      assert.deepStrictEqual(yield* sweeper.stats, { runs: 6, swept: 1, failures: 0, lastSuccessAt: T0 + 6 * MINUTE })
    }).pipe(fromT0(sweeperLayer().pipe(Layer.provideMerge(MemoryRepository.layer))))
  )

  it.effect("never runs again after its scope closes", () =>
    Effect.gen(function* () {
      yield* atT0()
      const repository = yield* SessionRepository
      const scope = yield* Scope.make()
      const sweeper = yield* Layer.buildWithScope(sweeperLayer(), scope).pipe(
        Effect.map(
          (context) => context.unsafeMap.get(SessionSweeper.SessionSweeper.key) as SessionSweeper.SessionSweeperShape
        )
      )
      yield* repository.insert(expiredRecord(1, T0 + 5 * MINUTE))
      yield* settle
      yield* TestClock.adjust(6 * MINUTE)
      assert.strictEqual((yield* sweeper.stats).swept, 1)

      yield* Scope.close(scope, Exit.void)
      yield* repository.insert(expiredRecord(2, T0 + 7 * MINUTE))
      yield* TestClock.adjust(60 * MINUTE)

      assert.strictEqual((yield* sweeper.stats).runs, 6)
      assert.isTrue(Option.isSome(yield* repository.get(expiredRecord(2, 0).key)))
      assert.strictEqual((yield* TestClock.sleeps()).length, 0)
    }).pipe(Effect.provide(MemoryRepository.layer), Effect.scoped)
  )

  it.effect("three failed runs are logged and counted; the fourth succeeds on schedule", () =>
    Effect.gen(function* () {
      const sweeper = yield* SessionSweeper.SessionSweeper
      const reports = yield* sweeper.reports
      yield* (yield* SessionRepository).insert(expiredRecord(1, T0))
      yield* Faulty.FaultControl.failNext("removeExpired", 3)
      yield* settle

      yield* TestClock.adjust(4 * MINUTE)
      const runs = [...(yield* Queue.takeBetween(reports, 4, 4))]

      assert.deepStrictEqual(
        runs.map((report) => report._tag),
        ["Failed", "Failed", "Failed", "Swept"]
      )
      assert.deepStrictEqual(yield* sweeper.stats, { runs: 4, swept: 1, failures: 3, lastSuccessAt: T0 + 4 * MINUTE })
      const warnings = (yield* Logs.CapturedLogs.entries).filter((entry) => entry.level === "WARN")
      assert.strictEqual(warnings.length, 3)
      assert.include(warnings[0].text, "injected fault in removeExpired")
      assert.include(warnings[0].text, "SweepError")
    }).pipe(
      fromT0(
        sweeperLayer().pipe(Layer.provideMerge(Faulty.layer(MemoryRepository.layer)), Layer.provideMerge(Logs.layer))
      )
    )
  )

  it.effect("a backlog of 10,000 expired records goes in ceil(10,000 / batchSize) bounded batches", () =>
    Effect.gen(function* () {
      const repository = yield* SessionRepository
      const sweeper = yield* SessionSweeper.SessionSweeper
      const reports = yield* sweeper.reports
      for (let i = 0; i < 10_000; i++) {
        yield* repository.insert(expiredRecord(i, T0 + (i % 50)))
      }
      yield* repository.insert({ ...expiredRecord(-1, T0 + 60 * MINUTE), key: "live" })
      yield* settle

      yield* TestClock.adjust(MINUTE)
      const report = yield* Queue.take(reports)

      assert.deepStrictEqual(report._tag === "Swept" && [report.swept, report.batches], [10_000, 34])
      assert.strictEqual((yield* Faulty.FaultControl.calls).removeExpired, 34)
      assert.isTrue(Option.isSome(yield* repository.get("live")))
    }).pipe(fromT0(sweeperLayer({ batchSize: 300 }).pipe(Layer.provideMerge(Faulty.layer(MemoryRepository.layer)))))
  )

  it.effect("logs one debug line per run and nothing at info per tick", () =>
    Effect.gen(function* () {
      const reports = yield* (yield* SessionSweeper.SessionSweeper).reports
      yield* settle

      yield* TestClock.adjust(10 * MINUTE)
      yield* Queue.takeBetween(reports, 10, 10)

      const entries = yield* Logs.CapturedLogs.entries
      assert.strictEqual(entries.filter((entry) => entry.level === "INFO").length, 0)
      assert.strictEqual(entries.filter((entry) => entry.text.startsWith("sweep finished")).length, 10)
    }).pipe(fromT0(sweeperLayer().pipe(Layer.provideMerge(MemoryRepository.layer), Layer.provideMerge(Logs.layer))))
  )

  it.effect("one sweeper layer used at two places of an app starts one fiber", () =>
    Effect.gen(function* () {
      yield* settle

      yield* TestClock.adjust(MINUTE)

      assert.strictEqual((yield* Faulty.FaultControl.calls).removeExpired, 1)
    }).pipe(
      fromT0(
        Layer.unwrapEffect(
          Effect.sync(() => {
            const shared = sweeperLayer()
            return Layer.mergeAll(shared, Layer.provide(Layer.effectDiscard(SessionSweeper.SessionSweeper), shared))
          })
        ).pipe(Layer.provideMerge(Faulty.layer(MemoryRepository.layer)))
      )
    )
  )

  it.effect("runs whatever the migrate option: a table migrated beforehand is swept too", () =>
    Effect.gen(function* () {
      yield* atT0()
      yield* SqlRepository.migrate("premigrated")
      const context = yield* Layer.build(
        sweeperLayer().pipe(Layer.provideMerge(SqlRepository.layer({ table: "premigrated", migrate: false })))
      )
      const repository = context.unsafeMap.get(SessionRepository.key) as typeof SessionRepository.Service
      yield* repository.insert(expiredRecord(1, T0 + MINUTE))
      yield* settle

      yield* TestClock.adjust(2 * MINUTE)

      assert.isTrue(Option.isNone(yield* repository.get(expiredRecord(1, 0).key)))
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })), Effect.scoped)
  )

  it.effect("a sweep asked for is counted and reported like a scheduled run", () =>
    Effect.gen(function* () {
      const repository = yield* SessionRepository
      const sweeper = yield* SessionSweeper.SessionSweeper
      const reports = yield* sweeper.reports
      yield* repository.insert(expiredRecord(1, T0))
      yield* Faulty.FaultControl.failNext("removeExpired", 1)

      const failed = yield* Effect.flip(sweeper.sweep)
      const swept = yield* sweeper.sweep

      assert.strictEqual(failed._tag, "SweepError")
      assert.strictEqual(swept, 1)
      assert.deepStrictEqual(
        [...(yield* Queue.takeAll(reports))].map((report) => report._tag),
        ["Failed", "Swept"]
      )
      assert.deepStrictEqual(yield* sweeper.stats, { runs: 2, swept: 1, failures: 1, lastSuccessAt: T0 })
    }).pipe(fromT0(sweeperLayer().pipe(Layer.provideMerge(Faulty.layer(MemoryRepository.layer)))))
  )

  it.effect("refuses impossible options with SessionConfigError", () =>
    Effect.gen(function* () {
      for (const options of [
        { batchSize: 0 },
        { batchSize: 1.5 },
        { interval: 0 },
        { interval: "nonsense" as never },
        { jitter: 1 }
      ]) {
        const error = yield* Effect.flip(Layer.build(SessionSweeper.layer(options)))
        assert.strictEqual(error._tag, "SessionConfigError")
      }
    }).pipe(Effect.provide(MemoryRepository.layer), Effect.scoped)
  )

  it("a process that builds the layers, saves, closes the scope and returns exits by itself", async () => {
    const { closedAt, code, exitedAfter, output } = await runExitFixture("exit.ts")

    assert.strictEqual(code, 0, output)
    assert.isAbove(closedAt, 0, output)
    assert.isBelow(exitedAfter, 2_000)
    assert.include(output, "handles after close: []")
  })
})
