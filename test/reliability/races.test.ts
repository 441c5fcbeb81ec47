import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Schedule } from "effect"
import { SessionRepository } from "../../src/SessionRepository.js"
import { advance, atT0, makeStore, payload, policies } from "../conformance/fixtures.js"
import { type Backend, backends, installProcessSpies, provideBackend } from "../helpers/backends.js"

const MINUTE = 60_000
const ROUNDS = 20

let races = 0

/** dynalite answers one request at a time at about 3 ms each: 100 contenders need 15,000 requests, so it gets 4. */
const inFlight = <X>(target: Backend<X>): number | "unbounded" => (target.name.startsWith("dynamodb") ? 4 : "unbounded")

/** Two stores over two repository instances on one namespace of the backend. */
const twoStores = <X>(target: Backend<X>) =>
  Effect.gen(function* () {
    const namespace = yield* target.namespace
    const first = yield* target.open(namespace)
    const second = yield* target.open(namespace)
    const a = yield* makeStore(policies.sliding).pipe(Effect.provideService(SessionRepository, first))
    const b = yield* makeStore(policies.sliding).pipe(Effect.provideService(SessionRepository, second))
    return { a, b, repository: first }
  })

installProcessSpies("races")

describe("races", () => {
  for (const target of backends) {
    describe.skipIf(target.skip !== undefined)(target.name, () => {
      const test = (name: string, body: () => Effect.Effect<void, unknown, any>) =>
        it.effect(name, () => Effect.suspend(body).pipe(provideBackend(target)), target.timeout)

      test("100 concurrent read-change-save updates over two stores all land", () =>
        Effect.gen(function* () {
          yield* atT0()
          const { a, b } = yield* twoStores(target)
          const session = yield* a.create(payload({ n: 0, tags: new Set() }))
          const schedule = Schedule.recurs(500)

          yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) =>
              (i % 2 === 0 ? a : b).update(
                session.token,
                (p) => ({ ...p, n: p.n + 1, tags: new Set([...p.tags, `t${i}`]) }),
                { schedule }
              ),
            { concurrency: inFlight(target), discard: true }
          )
          const final = Option.getOrThrow(yield* b.restore(session.token))

          assert.strictEqual(final.payload.n, 100)
          assert.strictEqual(final.payload.tags.size, 100)
          assert.strictEqual(final.version, 101)
          races += 100
        }))

      test("touch racing logout never brings the session back", () =>
        Effect.gen(function* () {
          yield* atT0()
          const { a, b, repository } = yield* twoStores(target)
          for (let round = 0; round < ROUNDS; round++) {
            const session = yield* a.create(payload())
            yield* advance(MINUTE)

            const touch = yield* Effect.fork(b.touch(session))
            const logout = yield* Effect.fork(a.delete(session.token))
            yield* Fiber.join(touch)
            yield* Fiber.join(logout)
            const lateTouch = yield* b.touch(session)
            const lateSave = yield* Effect.exit(b.save(session))
            const lateRegenerate = yield* Effect.exit(b.regenerate(session))

            assert.isFalse(lateTouch)
            assert.isTrue(Exit.isFailure(lateSave))
            assert.isTrue(Exit.isFailure(lateRegenerate))
            assert.isTrue(Option.isNone(yield* a.restore(session.token)))
            assert.isTrue(Option.isNone(yield* repository.get(session.key)))
            races++
          }
        }))

      test("touch racing save never moves the expiry back and never loses the payload change", () =>
        Effect.gen(function* () {
          yield* atT0()
          const { a, b, repository } = yield* twoStores(target)
          for (let round = 0; round < ROUNDS; round++) {
            const session = yield* a.create(payload({ note: "before" }))
            yield* advance(MINUTE)
            const stale = Option.getOrThrow(yield* a.restore(session.token))
            yield* advance(MINUTE)

            const touch = yield* Effect.fork(b.renew(stale))
            const save = yield* Effect.fork(
              Effect.catchTag(
                a.save({ ...stale, payload: { ...stale.payload, note: `round ${round}` } }),
                "VersionConflict",
                () =>
                  a.update(session.token, (p) => ({ ...p, note: `round ${round}` }), { schedule: Schedule.recurs(5) })
              )
            )
            const renewed = yield* Fiber.join(touch)
            yield* Fiber.join(save)
            const stored = Option.getOrThrow(yield* repository.get(session.key))
            const restored = Option.getOrThrow(yield* b.restore(session.token))

            assert.strictEqual(restored.payload.note, `round ${round}`)
            assert.isAtLeast(stored.expiresAt!, Option.getOrThrow(stale.expiresAt))
            if (Option.isSome(renewed)) assert.isAtLeast(stored.expiresAt!, Option.getOrThrow(renewed.value.expiresAt))
            races++
          }
        }))

      test("regenerate racing a request on the old token never resurrects it and never drops the change", () =>
        Effect.gen(function* () {
          yield* atT0()
          const { a, b } = yield* twoStores(target)
          for (let round = 0; round < ROUNDS; round++) {
            const session = yield* a.create(payload({ tags: new Set() }))

            const regenerate = yield* Effect.fork(Effect.exit(a.regenerate(session)))
            const request = yield* Effect.fork(
              Effect.exit(
                b.update(session.token, (p) => ({ ...p, tags: new Set(["seen"]) }), { schedule: Schedule.recurs(5) })
              )
            )
            const regenerated = yield* Fiber.join(regenerate)
            const requested = yield* Fiber.join(request)
            const old = yield* a.restore(session.token)

            if (Exit.isSuccess(regenerated)) {
              assert.isTrue(Option.isNone(old), "the old token works after regenerate")
              const fresh = Option.getOrThrow(yield* b.restore(regenerated.value.token))
              if (Exit.isSuccess(requested)) assert.isTrue(fresh.payload.tags.has("seen"), "the change was dropped")
            } else {
              assert.isTrue(Exit.isSuccess(requested), "both failed")
              assert.isTrue(Option.getOrThrow(old).payload.tags.has("seen"))
            }
            races++
          }
        }))
    })
  }

  it("reports the races run", () => {
    if (process.env.EFFECT_SESSION_REPORT) process.stdout.write(`races: ${races}\n`)
  })
})
