import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Layer, Option, Queue, type Scope, TestClock } from "effect"
import type { SessionRepository } from "../../src/SessionRepository.js"
import * as SessionSweeper from "../../src/SessionSweeper.js"
import { atT0, makeStore, payload, policies } from "../conformance/fixtures.js"
import { type Backend, backends, installProcessSpies, repositoryLayer } from "../helpers/backends.js"
import * as Faulty from "../helpers/faulty.js"
import * as Logs from "../helpers/logs.js"

const MINUTE = 60_000

const totals = { injected: 0, sweepFailures: 0, warnings: 0 }

const settle = Effect.repeat(Effect.zipRight(Effect.yieldNow(), TestClock.sleeps()), {
  until: (sleeps) => Chunk.size(sleeps) > 0
})

/** The backend, its repository behind the fault decorator, and a capturing logger; the clock is at T0 first. */
const withFaults =
  <X>(target: Backend<X>) =>
  <A, E, R>(body: Effect.Effect<A, E, R>) =>
    Effect.zipRight(
      atT0(),
      Effect.scoped(body).pipe(
        Effect.provide(
          Layer.orDie(
            Layer.mergeAll(Faulty.layer(repositoryLayer(target)), Logs.layer).pipe(Layer.provide(target.backend))
          )
        )
      )
    ) as Effect.Effect<A, E, Exclude<R, SessionRepository | Faulty.FaultControl | Logs.CapturedLogs | X | Scope.Scope>>

const tagOf = <A, E>(exit: Exit.Exit<A, E>): string =>
  Exit.match(exit, {
    onSuccess: () => "success",
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onNone: () => "defect",
        onSome: (error) => (error as { _tag: string })._tag
      })
  })

installProcessSpies("faults")

describe("faults", () => {
  for (const target of backends) {
    describe.skipIf(target.skip !== undefined)(target.name, () => {
      it.effect(
        "every store operation fails with StoreUnavailable while the backend fails, and works once it is back",
        () =>
          Effect.gen(function* () {
            const faults = yield* Faulty.FaultControl
            const store = yield* makeStore(policies.sliding)
            const session = yield* store.create(payload(), { userId: "u1" })
            yield* TestClock.adjust(MINUTE)
            const operations = {
              create: store.create(payload(), { userId: "u1" }),
              restore: store.restore(session.token),
              save: store.save(session),
              touch: store.touch(session),
              update: store.update(session.token, (p) => ({ ...p, n: p.n + 1 })),
              regenerate: store.regenerate(session),
              listByUser: store.listByUser("u1"),
              revoke: store.revoke("u1", session.handle),
              deleteByUser: store.deleteByUser("u1"),
              delete: store.delete(session.token),
              truncate: store.truncate
            }

            yield* faults.breakAll()
            const broken: Record<string, string> = {}
            for (const [name, operation] of Object.entries(operations)) {
              broken[name] = tagOf(yield* Effect.exit(operation as Effect.Effect<unknown, unknown>))
            }
            yield* faults.heal
            const healed = yield* store.restore(session.token)
            const touched = yield* store.touch(Option.getOrThrow(healed))
            const created = yield* store.create(payload(), { userId: "u1" })
            const listed = yield* store.listByUser("u1")

            for (const [name, tag] of Object.entries(broken)) {
              assert.strictEqual(tag, "StoreUnavailable", name)
            }
            assert.isTrue(Option.isSome(healed))
            assert.isTrue(touched)
            assert.strictEqual(listed.length, 2)
            assert.isTrue(yield* store.delete(created.token))
            totals.injected += yield* faults.injected
          }).pipe(withFaults(target)),
        target.timeout
      )

      it.effect(
        "a failing sweep is counted and logged on every run, keeps its schedule and recovers when the fault goes",
        () =>
          Effect.gen(function* () {
            const faults = yield* Faulty.FaultControl
            const store = yield* makeStore(policies.absolute)
            const sweeper = yield* SessionSweeper.make({ interval: "1 minute", jitter: 0 })
            const reports = yield* sweeper.reports
            const doomed = yield* store.create(payload())
            yield* faults.breakAll("removeExpired")
            yield* settle

            const tick = Effect.zipLeft(Effect.zipRight(TestClock.adjust(MINUTE), Queue.take(reports)), settle)
            const failed = yield* Effect.replicateEffect(tick, 3)
            const statsWhileBroken = yield* sweeper.stats
            yield* faults.heal
            const later = yield* Effect.replicateEffect(tick, 8)
            const logs = yield* Logs.CapturedLogs.entries

            assert.deepStrictEqual(
              [...failed].map((report) => report._tag),
              ["Failed", "Failed", "Failed"]
            )
            assert.strictEqual(statsWhileBroken.failures, 3)
            assert.strictEqual(statsWhileBroken.runs, 3)
            assert.deepStrictEqual(
              [...later].map((report) => (report._tag === "Swept" ? report.swept : -1)),
              [0, 0, 0, 0, 0, 0, 1, 0]
            )
            assert.deepStrictEqual(
              { ...(yield* sweeper.stats), lastSuccessAt: null },
              { runs: 11, swept: 1, failures: 3, lastSuccessAt: null }
            )
            const warnings = logs.filter((entry) => entry.level === "WARN" && entry.text.includes("sweep failed"))
            assert.strictEqual(warnings.length, 3)
            assert.isTrue(warnings.every((entry) => entry.text.includes("injected fault in removeExpired")))
            assert.isTrue(Option.isNone(yield* store.restore(doomed.token)))
            totals.injected += yield* faults.injected
            totals.sweepFailures += statsWhileBroken.failures
            totals.warnings += warnings.length
          }).pipe(withFaults(target)),
        target.timeout
      )

      it.effect(
        "one failed call in the middle of a request sequence leaves nothing half written",
        () =>
          Effect.gen(function* () {
            const faults = yield* Faulty.FaultControl
            const store = yield* makeStore(policies.sliding)
            const session = yield* store.create(payload({ n: 1 }), { userId: "u2" })

            yield* faults.failNext("update", 1)
            const failedSave = yield* Effect.exit(store.save({ ...session, payload: payload({ n: 2 }) }))
            yield* faults.failNext("remove", 1)
            const failedRegenerate = yield* Effect.exit(store.regenerate(session))
            const after = Option.getOrThrow(yield* store.restore(session.token))
            const listed = yield* store.listByUser("u2")

            assert.strictEqual(tagOf(failedSave), "StoreUnavailable")
            assert.strictEqual(tagOf(failedRegenerate), "StoreUnavailable")
            assert.strictEqual(after.payload.n, 1)
            assert.strictEqual(after.version, 1)
            assert.strictEqual(listed.length, 1)
            totals.injected += yield* faults.injected
          }).pipe(withFaults(target)),
        target.timeout
      )
    })
  }

  it("reports the faults injected", () => {
    if (process.env.EFFECT_SESSION_REPORT) process.stdout.write(`faults: ${JSON.stringify(totals)}\n`)
  })
})
