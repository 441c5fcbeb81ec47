/**
 * The backend-independent contract of SessionStore over a SessionRepository.
 * Each backend's test file calls `conformance(target)` with a few lines of setup.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Layer, Option, Redacted, Schedule, type Scope } from "effect"
import * as ExpirationPolicy from "../../src/ExpirationPolicy.js"
import { SessionRepository } from "../../src/SessionRepository.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SessionSweeper from "../../src/SessionSweeper.js"
import * as SessionToken from "../../src/SessionToken.js"
import {
  advance,
  atT0,
  type ConformanceTarget,
  makeStore,
  Payload,
  type PolicyName,
  payload,
  policies,
  provideRepository,
  T0
} from "./fixtures.js"

const MINUTE = 60_000

const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  return failure?._tag ?? "defect"
}

export const conformance = <X>(target: ConformanceTarget<X>) =>
  describe.skipIf(target.skip !== undefined)(`conformance: ${target.name}`, () => {
    const timeout = target.timeout ?? 30_000
    const test = <A, E>(name: string, body: () => Effect.Effect<A, E, SessionRepository | X | Scope.Scope>) =>
      it.effect(name, () => Effect.suspend(body).pipe(provideRepository(target)), timeout)

    const sweep = (batchSize = 1_000) =>
      Effect.flatMap(SessionRepository, (repository) => SessionSweeper.sweepOnce(repository, batchSize))

    describe("create and restore", () => {
      test("round-trips Date, Set, Map, bigint and ISO-looking strings", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)

          const created = yield* store.create(payload(), { userId: "u1" })
          const restored = yield* store.restore(created.token)

          const session = Option.getOrThrow(restored)
          assert.instanceOf(session.payload.at, Date)
          assert.strictEqual(session.payload.at.getTime(), Date.parse("2030-06-01T12:34:56.789Z"))
          assert.deepStrictEqual([...session.payload.tags].sort(), ["a", "b"])
          assert.strictEqual(session.payload.m.get("x"), 2n ** 70n)
          assert.strictEqual(session.payload.big, -(2n ** 64n))
          assert.strictEqual(session.payload.note, "2030-06-01T12:34:56.789Z")
          assert.strictEqual(Option.getOrThrow(session.userId), "u1")
          assert.strictEqual(session.createdAt, T0)
          assert.strictEqual(session.version, 1)
        }))

      test("restore of a missing, malformed or empty token is None without an error", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          yield* store.create(payload())

          for (const token of ["", "x", "a".repeat(10_000), "../../etc/passwd", "' OR 1=1 --", "é".repeat(30)]) {
            assert.isTrue(Option.isNone(yield* store.restore(token)))
          }
          assert.isTrue(Option.isNone(yield* store.restore(Redacted.value(yield* SessionToken.random.next))))
        }))

      test("the key is the SHA-256 of the token and the handle reveals neither", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)

          const session = yield* store.create(payload())

          const token = Redacted.value(session.token)
          assert.match(token, /^[A-Za-z0-9_-]{43}$/)
          assert.strictEqual(session.key, SessionToken.keyOf(token))
          assert.notInclude(session.handle, token.slice(0, 8))
          assert.notInclude(session.key, session.handle)
          assert.notInclude(String(session.token), token)
        }))

      test("anonymous sessions have no user and no per-user operation reaches them", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)

          const anonymous = yield* store.create(payload())

          assert.isTrue(Option.isNone(anonymous.userId))
          assert.strictEqual(yield* store.deleteByUser("null"), 0)
          assert.isTrue(Option.isSome(yield* store.restore(anonymous.token)))
        }))

      test("a token clash never overwrites: the second create draws a new token", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repeated = Redacted.value(yield* SessionToken.random.next)
          const store = yield* makeStore(policies.sliding).pipe(
            Effect.provide(SessionToken.layerSequence([repeated, repeated]))
          )

          const first = yield* store.create(payload({ n: 1 }), { userId: "u1" })
          const second = yield* store.create(payload({ n: 2 }), { userId: "u2" })

          assert.strictEqual(Redacted.value(first.token), repeated)
          assert.notStrictEqual(Redacted.value(second.token), repeated)
          assert.strictEqual(Option.getOrThrow(yield* store.restore(first.token)).payload.n, 1)
          assert.strictEqual(Option.getOrThrow(yield* store.restore(second.token)).payload.n, 2)
        }))

      test("a generator that only repeats ends in TokenCollision after the bounded attempts", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repeated = Redacted.value(yield* SessionToken.random.next)
          const store = yield* makeStore(policies.sliding, { createAttempts: 3 }).pipe(
            Effect.provide(SessionToken.layerSequence(Array(10).fill(repeated)))
          )
          yield* store.create(payload({ n: 1 }))

          const clash = yield* Effect.flip(store.create(payload({ n: 2 })))

          assert.strictEqual(clash._tag, "TokenCollision")
          assert.strictEqual(clash._tag === "TokenCollision" && clash.attempts, 3)
          assert.strictEqual(Option.getOrThrow(yield* store.restore(repeated)).payload.n, 1)
        }))

      test("blank, padded, control-character and overlong user ids are refused before any write", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)

          for (const userId of [
            "",
            "   ",
            " u1",
            "u1\n",
            "a\u0000b",
            "a\u0085b",
            "eve\ud800",
            "\udc00x",
            "x".repeat(256)
          ]) {
            const error = yield* Effect.flip(store.create(payload(), { userId }))
            assert.strictEqual(error._tag, "InvalidUserId")
            assert.strictEqual((yield* Effect.flip(store.listByUser(userId)))._tag, "InvalidUserId")
          }
          assert.strictEqual((yield* store.listByUser("x".repeat(255))).length, 0)
        }))
    })

    describe.each(Object.keys(policies) as Array<PolicyName>)("policy %s", (name) => {
      const policy = policies[name]

      test("create stores the policy's initial expiry; save and touch keep a concrete one", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(policy)

          const created = yield* store.create(payload(), { userId: "u1" })
          const afterCreate = Option.getOrThrow(yield* repository.get(created.key))
          yield* advance(6 * MINUTE)
          const saved = yield* store.save({ ...created, payload: payload({ n: 2 }) })
          const afterSave = Option.getOrThrow(yield* repository.get(created.key))
          yield* store.touch(saved)
          const afterTouch = Option.getOrThrow(yield* repository.get(created.key))

          assert.strictEqual(afterCreate.expiresAt, ExpirationPolicy.initialExpiry(policy, T0))
          assert.strictEqual(afterSave.expiresAt, afterCreate.expiresAt)
          const expectedTouch =
            name === "absolute" ? T0 + 10 * MINUTE : name === "sliding" ? T0 + 16 * MINUTE : T0 + 15 * MINUTE
          assert.strictEqual(afterTouch.expiresAt, expectedTouch)
        }))

      test("the expiry boundary: at expiresAt - 1 ms present, at expiresAt absent, unlisted, swept", () =>
        Effect.gen(function* () {
          yield* atT0(750)
          const store = yield* makeStore(policy)
          const session = yield* store.create(payload(), { userId: "u1" })
          const expiresAt = Option.getOrThrow(session.expiresAt)
          assert.strictEqual(new Date(expiresAt).toISOString(), "2030-01-01T00:10:00.750Z")

          yield* atT0(750 + 10 * MINUTE - 1)
          assert.isTrue(Option.isSome(yield* store.restore(session.token)))
          assert.strictEqual((yield* store.listByUser("u1")).length, 1)
          assert.strictEqual(yield* store.touch(session), name !== "absolute")

          const other = yield* store.create(payload(), { userId: "u1" })
          const otherExpiry = Option.getOrThrow(other.expiresAt)
          yield* atT0(otherExpiry - T0)
          assert.isTrue(Option.isNone(yield* store.restore(other.token)))
          assert.isFalse(yield* store.touch(other))
          assert.isFalse((yield* store.listByUser("u1")).some((info) => info.handle === other.handle))
          const swept = yield* sweep()
          assert.isAtLeast(swept.swept, 1)
          const repository = yield* SessionRepository
          assert.isTrue(Option.isNone(yield* repository.get(other.key)))
        }))

      test("a stale save after a touch never moves the expiry backwards", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(policy)
          const session = yield* store.create(payload())
          yield* advance(5 * MINUTE)
          const copyA = Option.getOrThrow(yield* store.restore(session.token))
          yield* advance(3 * MINUTE)
          const copyB = Option.getOrThrow(yield* store.restore(session.token))
          yield* store.touch(copyB)
          const afterTouch = Option.getOrThrow(yield* repository.get(session.key)).expiresAt!

          yield* advance(MINUTE)
          const exit = yield* Effect.exit(store.save({ ...copyA, payload: payload({ n: 9 }) }))

          const stored = Option.getOrThrow(yield* repository.get(session.key))
          assert.isAtLeast(stored.expiresAt!, afterTouch)
          if (name !== "absolute") {
            assert.strictEqual(failureTag(exit), "VersionConflict")
          }
        }))

      test("touch of an expired session returns false and writes nothing", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(policy)
          const session = yield* store.create(payload())
          const before = Option.getOrThrow(yield* repository.get(session.key))

          yield* advance(20 * MINUTE)

          assert.isFalse(yield* store.touch(session))
          assert.deepStrictEqual(yield* repository.get(session.key), Option.some(before))
        }))
    })

    describe("touch", () => {
      test("absolute never extends, by touch or by save", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(ExpirationPolicy.absolute("1 hour"))
          const session = yield* store.create(payload())

          yield* advance(30 * MINUTE)
          assert.isFalse(yield* store.touch(session))
          const saved = yield* store.save({ ...session, payload: payload({ n: 5 }) })
          yield* advance(29 * MINUTE)
          assert.isFalse(yield* store.touch(saved))

          assert.deepStrictEqual(saved.expiresAt, Option.some(T0 + 60 * MINUTE))
          yield* advance(2 * MINUTE)
          assert.isTrue(Option.isNone(yield* store.restore(session.token)))
        }))

      test("sliding with a cap never passes creation + maxLifetime", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(ExpirationPolicy.slidingCapped("30 minutes", "1 hour"))
          let session = yield* store.create(payload())
          assert.deepStrictEqual(session.expiresAt, Option.some(T0 + 30 * MINUTE))

          for (const at of [20, 40, 55, 59]) {
            yield* atT0(at * MINUTE)
            session = Option.getOrElse(yield* store.renew(session), () => session)
          }

          assert.strictEqual(Option.getOrThrow(yield* repository.get(session.key)).expiresAt, T0 + 60 * MINUTE)
          yield* atT0(61 * MINUTE)
          assert.isTrue(Option.isNone(yield* store.restore(session.token)))
        }))

      test("a renewal threshold skips touches until less than that fraction remains", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes", { renewalThreshold: 0.5 }))
          const session = yield* store.create(payload())

          yield* advance(4 * MINUTE)
          assert.isFalse(yield* store.touch(session))
          yield* advance(2 * MINUTE)
          const renewed = yield* store.renew(session)

          assert.deepStrictEqual(
            Option.flatMap(renewed, (s) => s.expiresAt),
            Option.some(T0 + 16 * MINUTE)
          )
        }))

      test("touch of a deleted session never brings it back", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload())
          yield* store.delete(session.token)

          yield* advance(MINUTE)

          assert.isFalse(yield* store.touch(session))
          assert.isTrue(Option.isNone(yield* store.restore(session.token)))
        }))
    })

    describe("save", () => {
      test("two saves of one restored copy: one wins, the other gets VersionConflict", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload({ tags: new Set() }))
          const f1 = Option.getOrThrow(yield* store.restore(session.token))
          const f2 = Option.getOrThrow(yield* store.restore(session.token))

          const first = yield* store.save({ ...f1, payload: { ...f1.payload, tags: new Set(["x"]) } })
          const second = yield* Effect.flip(store.save({ ...f2, payload: { ...f2.payload, note: "y" } }))
          assert.strictEqual(second._tag, "VersionConflict")
          assert.strictEqual(first.version, 2)

          const again = Option.getOrThrow(yield* store.restore(session.token))
          yield* store.save({ ...again, payload: { ...again.payload, note: "y" } })
          const final = Option.getOrThrow(yield* store.restore(session.token))
          assert.deepStrictEqual([...final.payload.tags], ["x"])
          assert.strictEqual(final.payload.note, "y")
        }))

      test("concurrent saves from one copy: exactly one succeeds", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload())

          const exits = yield* Effect.all(
            Array.from({ length: 8 }, (_, n) => Effect.exit(store.save({ ...session, payload: payload({ n }) }))),
            { concurrency: "unbounded" }
          )

          assert.strictEqual(exits.filter(Exit.isSuccess).length, 1)
          assert.isTrue(exits.filter(Exit.isFailure).every((exit) => failureTag(exit) === "VersionConflict"))
        }))

      test("update retries on conflict until every change is in", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload({ n: 0 }))
          // Each conflict is another writer's success, so 19 retries always suffice; no TestClock wait on async I/O.
          const noDelay = Schedule.recurs(19)

          const fibers = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            () => Effect.fork(store.update(session.token, (p) => ({ ...p, n: p.n + 1 }), { schedule: noDelay })),
            { concurrency: "unbounded" }
          )
          yield* advance(MINUTE)
          yield* Effect.forEach(fibers, Fiber.join, { discard: true })

          assert.strictEqual(Option.getOrThrow(yield* store.restore(session.token)).payload.n, 20)
        }))

      test("a save after delete is SessionNotFound and nothing comes back", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload(), { userId: "u1" })
          yield* store.delete(session.token)

          const error = yield* Effect.flip(store.save({ ...session, payload: payload({ n: 7 }) }))

          assert.strictEqual(error._tag, "SessionNotFound")
          assert.isTrue(Option.isNone(yield* store.restore(session.token)))
          assert.strictEqual((yield* store.listByUser("u1")).length, 0)
        }))

      test("the store never merges: removed and replaced fields stay as saved", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload({ tags: new Set(["p"]), note: "keep" }))

          let current = session
          for (let i = 0; i < 10; i++) {
            current = yield* store.save({ ...current, payload: { ...current.payload, tags: new Set(["q"]), note: "" } })
          }

          const final = Option.getOrThrow(yield* store.restore(session.token))
          assert.deepStrictEqual([...final.payload.tags], ["q"])
          assert.strictEqual(final.payload.note, "")
        }))
    })

    describe("payload bounds", () => {
      const limit = 300_000
      const sized = (bytes: number) => {
        const empty = Buffer.byteLength(
          JSON.stringify({
            n: 1,
            at: "2030-06-01T12:34:56.789Z",
            tags: [],
            m: [],
            big: "0",
            note: ""
          }),
          "utf8"
        )
        const room = bytes - empty
        const emoji = "😀".repeat(Math.floor(room / 8))
        const accents = "é".repeat(Math.floor((room - Buffer.byteLength(emoji)) / 2))
        const ascii = "a".repeat(room - Buffer.byteLength(emoji) - Buffer.byteLength(accents))
        return payload({ tags: new Set(), m: new Map(), big: 0n, note: emoji + accents + ascii })
      }

      test("exactly maxPayloadBytes of multi-byte text round-trips; one byte over fails typed", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding, { maxPayloadBytes: limit })

          const session = yield* store.create(sized(limit))
          const restored = Option.getOrThrow(yield* store.restore(session.token))
          assert.strictEqual(restored.payload.note, session.payload.note)

          const error = yield* Effect.flip(store.save({ ...restored, payload: sized(limit + 1) }))
          assert.deepStrictEqual(error._tag === "PayloadTooLarge" && [error.size, error.limit], [limit + 1, limit])
          const after = Option.getOrThrow(yield* store.restore(session.token))
          assert.strictEqual(after.version, restored.version)
          assert.strictEqual(after.payload.note, session.payload.note)

          const other = yield* store.create(payload())
          assert.isTrue(Option.isSome(yield* store.restore(other.token)))
        }))

      test("an oversized create writes nothing", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding, { maxPayloadBytes: 1_000 })

          const error = yield* Effect.flip(store.create(sized(1_001), { userId: "u1" }))

          assert.strictEqual(error._tag, "PayloadTooLarge")
          assert.strictEqual((yield* store.listByUser("u1")).length, 0)
        }))

      test("a value the schema rejects, or NaN, is a typed encode error", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)

          const nan = yield* Effect.flip(store.create(payload({ n: Number.NaN })))
          const badDate = yield* Effect.flip(store.create(payload({ at: new Date("nope") })))
          const wrongType = yield* Effect.flip(store.create({ ...payload(), n: "1" as unknown as number }))

          assert.strictEqual(nan._tag, "SessionEncodeError")
          assert.strictEqual(badDate._tag, "SessionEncodeError")
          assert.strictEqual(wrongType._tag, "SessionEncodeError")
        }))
    })

    describe("corrupt records", () => {
      test("undecodable payloads are SessionDecodeError with the handle; per-user work still runs", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(policies.sliding)
          const [a, b, c, d] = yield* Effect.all(
            Array.from({ length: 4 }, () => store.create(payload(), { userId: "u1" }))
          )
          const corrupt = (key: string, text: string) =>
            Effect.gen(function* () {
              const stored = Option.getOrThrow(yield* repository.get(key))
              yield* repository.update({ ...stored, payload: text, version: stored.version + 1 }, stored.version, T0)
            })
          yield* corrupt(a.key, '{"n":1,"at":"2030')
          yield* corrupt(b.key, '{"count":3,"n":"private-note-8817"}')
          yield* corrupt(c.key, "")

          for (const session of [a, b, c]) {
            const error = yield* Effect.flip(store.restore(session.token))
            assert.strictEqual(error._tag, "SessionDecodeError")
            assert.strictEqual(error._tag === "SessionDecodeError" && error.handle, session.handle)
            assert.notInclude(error.message, Redacted.value(session.token))
            assert.notInclude(error.message, "private-note-8817")
          }
          assert.isTrue(Option.isSome(yield* store.restore(d.token)))
          assert.strictEqual((yield* store.listByUser("u1")).length, 4)

          const repaired = yield* store.save({ ...a, version: a.version + 1, payload: payload({ n: 3 }) })
          assert.strictEqual(Option.getOrThrow(yield* store.restore(repaired.token)).payload.n, 3)
          assert.strictEqual(yield* store.deleteByUser("u1"), 4)
        }))
    })

    describe("per-user operations", () => {
      test("listByUser shows live sessions by handle; deleteByUser counts live ones", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const keep = yield* store.create(payload(), { userId: "u1" })
          yield* advance(5 * MINUTE)
          const early = yield* store.create(payload(), { userId: "u1" })
          yield* store.create(payload(), { userId: "u2" })

          yield* advance(6 * MINUTE)
          yield* store.touch(early)
          const listed = yield* store.listByUser("u1")

          assert.deepStrictEqual(
            listed.map((info) => info.handle),
            [early.handle]
          )
          assert.notInclude(JSON.stringify(listed), Redacted.value(early.token))
          assert.strictEqual(yield* store.deleteByUser("u1"), 1)
          assert.strictEqual((yield* store.listByUser("u1")).length, 0)
          assert.strictEqual((yield* store.listByUser("u2")).length, 1)
          assert.isTrue(Option.isNone(yield* store.restore(keep.token)))
        }))

      test("user ids compare exactly: case and accents are different users", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          yield* store.create(payload(), { userId: "Alice" })
          yield* store.create(payload(), { userId: "alice" })
          yield* store.create(payload(), { userId: "alicé" })

          assert.strictEqual((yield* store.listByUser("alice")).length, 1)
          assert.strictEqual(yield* store.deleteByUser("Alice"), 1)
          assert.strictEqual((yield* store.listByUser("alicé")).length, 1)
        }))

      test("revoke removes one session by handle, only among the user's own", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const mine = yield* store.create(payload(), { userId: "u1" })
          const other = yield* store.create(payload(), { userId: "u1" })
          const theirs = yield* store.create(payload(), { userId: "u2" })

          assert.isFalse(yield* store.revoke("u1", theirs.handle))
          assert.isTrue(yield* store.revoke("u1", other.handle))

          assert.isTrue(Option.isSome(yield* store.restore(mine.token)))
          assert.isTrue(Option.isNone(yield* store.restore(other.token)))
          assert.isTrue(Option.isSome(yield* store.restore(theirs.token)))
        }))

      test("the per-user index holds only live sessions after a sweep", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          yield* store.create(payload(), { userId: "u1" })
          yield* store.create(payload(), { userId: "u1" })
          yield* advance(5 * MINUTE)
          const live = yield* store.create(payload(), { userId: "u1" })

          yield* advance(6 * MINUTE)
          assert.deepStrictEqual(
            (yield* store.listByUser("u1")).map((info) => info.handle),
            [live.handle]
          )
          assert.strictEqual((yield* sweep()).swept, 2)
          assert.strictEqual(yield* store.deleteByUser("u1"), 1)
        }))
    })

    describe("regenerate", () => {
      test("new token, same user, payload, creation and expiry; the old token is gone", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload({ n: 4 }), { userId: "u1" })
          yield* advance(MINUTE)

          const fresh = yield* store.regenerate(session)

          assert.notStrictEqual(Redacted.value(fresh.token), Redacted.value(session.token))
          assert.isTrue(Option.isNone(yield* store.restore(session.token)))
          const restored = Option.getOrThrow(yield* store.restore(fresh.token))
          assert.strictEqual(restored.payload.n, 4)
          assert.strictEqual(restored.createdAt, session.createdAt)
          assert.deepStrictEqual(restored.expiresAt, session.expiresAt)
          assert.deepStrictEqual(restored.userId, session.userId)
          assert.strictEqual((yield* store.listByUser("u1")).length, 1)
        }))

      test("regenerate of a stale copy fails and leaves one session only", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload(), { userId: "u1" })
          yield* store.save({ ...session, payload: payload({ n: 2 }) })

          const error = yield* Effect.flip(store.regenerate(session))

          assert.strictEqual(error._tag, "VersionConflict")
          assert.strictEqual((yield* store.listByUser("u1")).length, 1)
          assert.strictEqual(Option.getOrThrow(yield* store.restore(session.token)).payload.n, 2)
        }))
    })

    describe("sweep", () => {
      test("a clock far from the wall clock decides: present, then gone and swept", () =>
        Effect.gen(function* () {
          yield* atT0()
          const store = yield* makeStore(ExpirationPolicy.sliding("1 hour"))
          const session = yield* store.create(payload())

          yield* advance(30 * MINUTE)
          assert.isTrue(Option.isSome(yield* store.restore(session.token)))
          assert.strictEqual((yield* sweep()).swept, 0)

          yield* advance(90 * MINUTE)
          assert.isTrue(Option.isNone(yield* store.restore(session.token)))
          assert.strictEqual((yield* sweep()).swept, 1)
        }))

      test("a record without expiry is never swept and restores", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(policies.sliding)
          const token = yield* SessionToken.random.next
          const key = SessionToken.keyOf(token)
          yield* repository.insert({
            key,
            userId: "u1",
            createdAt: T0,
            expiresAt: null,
            version: 1,
            payload: JSON.stringify({ n: 1, at: "2030-01-01T00:00:00.000Z", tags: [], m: [], big: "1", note: "" })
          })

          yield* advance(1_000 * 24 * 60 * MINUTE)

          assert.strictEqual((yield* sweep()).swept, 0)
          const restored = Option.getOrThrow(yield* store.restore(token))
          assert.isTrue(Option.isNone(restored.expiresAt))
          assert.strictEqual(Option.getOrThrow(yield* repository.get(key)).expiresAt, null)
          assert.isFalse(yield* store.touch(restored))
          assert.strictEqual((yield* store.listByUser("u1")).length, 1)
        }))

      test("a backlog is removed in bounded batches until one comes back short", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(ExpirationPolicy.absolute("1 minute"))
          yield* Effect.forEach(
            Array.from({ length: 1_000 }, (_, i) => i),
            (i) =>
              repository.insert({
                key: SessionToken.keyOf(`backlog-token-${i}-${"x".repeat(20)}`),
                userId: null,
                createdAt: T0,
                expiresAt: T0 + (i % 7),
                version: 1,
                payload: "{}"
              }),
            { concurrency: 10, discard: true }
          )
          const live = yield* store.create(payload())

          yield* advance(10)
          const result = yield* sweep(300)

          assert.deepStrictEqual(result, { swept: 1_000, batches: 4 })
          assert.isTrue(Option.isSome(yield* store.restore(live.token)))
        }))
    })

    describe("truncate", () => {
      test("removes this store's sessions and none of a neighbour's", () =>
        Effect.gen(function* () {
          yield* atT0()
          const neighbour = yield* Layer.build(target.repository())
          const storeA = yield* makeStore(policies.sliding)
          const storeB = yield* makeStore(policies.sliding).pipe(Effect.provide(neighbour))
          const a = yield* Effect.all(Array.from({ length: 3 }, () => storeA.create(payload(), { userId: "u" })))
          const b = yield* Effect.all(Array.from({ length: 3 }, () => storeB.create(payload(), { userId: "u" })))

          yield* storeA.truncate
          yield* sweep()

          for (const session of a) assert.isTrue(Option.isNone(yield* storeA.restore(session.token)))
          for (const session of b) assert.isTrue(Option.isSome(yield* storeB.restore(session.token)))
          assert.strictEqual((yield* storeB.listByUser("u")).length, 3)
        }))
    })

    describe("writes", () => {
      test("a request that only restores writes nothing", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes", { renewalThreshold: 0.5 }))
          const session = yield* store.create(payload())
          const before = yield* repository.get(session.key)

          yield* advance(MINUTE)
          yield* store.restore(session.token)
          yield* store.touch(session)

          assert.deepStrictEqual(yield* repository.get(session.key), before)
        }))

      test("stored records hold no token", () =>
        Effect.gen(function* () {
          yield* atT0()
          const repository = yield* SessionRepository
          const store = yield* makeStore(policies.sliding)
          const session = yield* store.create(payload(), { userId: "u1" })
          yield* store.save(session)

          const stored = Option.getOrThrow(yield* repository.get(session.key))

          assert.notInclude(JSON.stringify(stored), Redacted.value(session.token))
        }))
    })

    it.effect("store layer refuses impossible options with SessionConfigError", () =>
      Effect.gen(function* () {
        const bad = [
          { policy: ExpirationPolicy.sliding(0) },
          { policy: ExpirationPolicy.sliding("1 minute", { renewalThreshold: 0 }) },
          { policy: ExpirationPolicy.slidingCapped("1 hour", "1 minute") },
          { policy: policies.sliding, maxPayloadBytes: -1 },
          { policy: ExpirationPolicy.sliding("nonsense" as never) },
          { policy: policies.sliding, onExcessProperty: "bogus" as never }
        ]
        for (const options of bad) {
          const result = yield* Effect.either(SessionStore.make({ schema: Payload, ...options }))
          assert.isTrue(Either.isLeft(result) && result.left._tag === "SessionConfigError")
        }
      }).pipe(provideRepository(target))
    )
  })
