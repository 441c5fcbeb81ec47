import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Redacted, Schema } from "effect"
import * as SessionStore from "../../src/SessionStore.js"
import * as SessionToken from "../../src/SessionToken.js"
import { atT0, makeStore, payload, policies } from "../conformance/fixtures.js"
import {
  type Backend,
  backends,
  type Expected,
  installProcessSpies,
  provideBackend,
  type Raw,
  RawAccess
} from "../helpers/backends.js"

type Outcome = Expected | "ok" | "defect" | string

interface Case {
  readonly name: string
  readonly expected: Outcome
  readonly run: (context: Context) => Effect.Effect<Outcome, { readonly _tag: string }>
}

type Store = Effect.Effect.Success<ReturnType<typeof makeStore>>

interface Context {
  readonly store: Store
  readonly deep: SessionStore.SessionStore<Tree>
  readonly token: Redacted.Redacted<string>
  readonly raw: Raw
}

interface Tree {
  readonly child?: Tree | undefined
}
const Tree: Schema.Schema<Tree> = Schema.Struct({ child: Schema.optional(Schema.suspend(() => Tree)) })

const nest = (depth: number): Tree => {
  let tree: Tree = {}
  for (let i = 0; i < depth; i++) tree = { child: tree }
  return tree
}

const LIMIT = 4_096

const option = <A, E>(effect: Effect.Effect<Option.Option<A>, E>) =>
  Effect.map(effect, (found): Outcome => (Option.isSome(found) ? "ok" : "None"))

const restoring =
  (token: string): Case["run"] =>
  ({ store }) =>
    option(store.restore(token))

const deleting =
  (token: string): Case["run"] =>
  ({ store }) =>
    Effect.map(store.delete(token), (removed): Outcome => (removed ? "ok" : "None"))

const creating =
  (value: unknown, userId?: string): Case["run"] =>
  ({ store }) =>
    Effect.as(store.create(value as ReturnType<typeof payload>, { userId }), "ok" as const)

const roundTrip =
  (value: ReturnType<typeof payload>): Case["run"] =>
  ({ store }) =>
    Effect.gen(function* () {
      const created = yield* store.create(value)
      const restored = Option.getOrThrow(yield* store.restore(created.token))
      return restored.payload.note === value.note && restored.payload.n === value.n ? "ok" : "changed"
    })

const tokenCases: ReadonlyArray<Case> = [
  { name: "token empty", expected: "None", run: restoring("") },
  { name: "token of 10 KB", expected: "None", run: restoring("a".repeat(10_240)) },
  { name: "token in the standard base64 alphabet", expected: "None", run: restoring("ab+/cd+/ef==".repeat(4)) },
  { name: "token of accented letters", expected: "None", run: restoring("é".repeat(43)) },
  { name: "token of emoji", expected: "None", run: restoring("😀".repeat(22)) },
  { name: "token with a lone surrogate", expected: "None", run: restoring(`${"a".repeat(30)}\ud800`) },
  { name: "token path traversal", expected: "None", run: restoring("../../../../etc/passwd") },
  { name: "token url-encoded traversal", expected: "None", run: restoring("%2e%2e%2f%2e%2e%2fetc%2fpasswd") },
  { name: "token SQL tautology", expected: "None", run: restoring("' OR '1'='1' --") },
  { name: "token SQL drop", expected: "None", run: restoring("x'; DROP TABLE sessions; --") },
  { name: "token NoSQL operator", expected: "None", run: restoring('{"$ne":null}') },
  { name: "token Redis glob", expected: "None", run: restoring("*") },
  { name: "token Redis protocol injection", expected: "None", run: restoring("x\r\nFLUSHALL\r\n") },
  { name: "token with a NUL byte", expected: "None", run: restoring(`${"a".repeat(30)}\u0000`) },
  { name: "delete with a SQL wildcard token", expected: "None", run: deleting("%".repeat(43)) },
  { name: "delete with a glob token", expected: "None", run: deleting("*".repeat(43)) },
  {
    name: "well-formed token that was never issued",
    expected: "None",
    run: ({ store }) =>
      Effect.flatMap(SessionToken.random.next, (token) => option(store.restore(Redacted.value(token))))
  },
  {
    name: "the stored key presented as a token",
    expected: "None",
    run: ({ store, token }) => option(store.restore(SessionToken.keyOf(token)))
  },
  {
    name: "the public handle presented as a token",
    expected: "None",
    run: ({ store, token }) => option(store.restore(SessionToken.handleOf(SessionToken.keyOf(token))))
  },
  {
    name: "a real token with its last character changed",
    expected: "None",
    run: ({ store, token }) => {
      const value = Redacted.value(token)
      return option(store.restore(value.slice(0, -1) + (value.endsWith("A") ? "B" : "A")))
    }
  },
  {
    name: "a real token with surrounding white space",
    expected: "None",
    run: ({ store, token }) => option(store.restore(` ${Redacted.value(token)} `))
  }
]

const userCases: ReadonlyArray<Case> = [
  { name: "user id empty", expected: "InvalidUserId", run: creating(payload(), "") },
  { name: "user id blank", expected: "InvalidUserId", run: creating(payload(), "   ") },
  { name: "user id with leading white space", expected: "InvalidUserId", run: creating(payload(), " alice") },
  { name: "user id of 256 characters", expected: "InvalidUserId", run: creating(payload(), "u".repeat(256)) },
  { name: "user id of 100 KB", expected: "InvalidUserId", run: creating(payload(), "u".repeat(102_400)) },
  { name: "user id with a NUL", expected: "InvalidUserId", run: creating(payload(), "al\u0000ice") },
  { name: "user id with a newline", expected: "InvalidUserId", run: creating(payload(), "al\nice") },
  { name: "user id with DEL", expected: "InvalidUserId", run: creating(payload(), "alice\u007f") },
  { name: "user id of 255 characters", expected: "ok", run: creating(payload(), "u".repeat(255)) },
  {
    name: "user id that looks like SQL lists only its own session",
    expected: "ok",
    run: ({ store }) =>
      Effect.gen(function* () {
        yield* store.create(payload(), { userId: "x' OR '1'='1" })
        const listed = yield* store.listByUser("x' OR '1'='1")
        return listed.length === 1 ? "ok" : `listed ${listed.length}`
      })
  },
  {
    name: "user id that is a glob lists only its own session",
    expected: "ok",
    run: ({ store }) =>
      Effect.gen(function* () {
        yield* store.create(payload(), { userId: "*" })
        const listed = yield* store.listByUser("*")
        return listed.length === 1 ? "ok" : `listed ${listed.length}`
      })
  },
  {
    name: "deleteByUser with a blank id",
    expected: "InvalidUserId",
    run: ({ store }) => Effect.as(store.deleteByUser(" "), "ok")
  },
  {
    name: "listByUser with a control character",
    expected: "InvalidUserId",
    run: ({ store }) => Effect.as(store.listByUser("bob\u0007"), "ok")
  }
]

const payloadCases: ReadonlyArray<Case> = [
  {
    name: "payload over the byte bound",
    expected: "PayloadTooLarge",
    run: creating(payload({ note: "x".repeat(LIMIT) }))
  },
  {
    name: "payload under the bound in characters, over it in bytes",
    expected: "PayloadTooLarge",
    run: creating(payload({ note: "😀".repeat(Math.ceil(LIMIT / 3)) }))
  },
  { name: "payload field of the wrong type", expected: "SessionEncodeError", run: creating({ ...payload(), n: "1" }) },
  { name: "payload missing a field", expected: "SessionEncodeError", run: creating({ ...payload(), note: undefined }) },
  { name: "payload Set given as an array", expected: "SessionEncodeError", run: creating({ ...payload(), tags: [] }) },
  { name: "payload bigint given as a number", expected: "SessionEncodeError", run: creating({ ...payload(), big: 1 }) },
  { name: "payload NaN", expected: "SessionEncodeError", run: creating(payload({ n: Number.NaN })) },
  { name: "payload Infinity", expected: "SessionEncodeError", run: creating(payload({ n: Number.POSITIVE_INFINITY })) },
  {
    name: "payload -Infinity",
    expected: "SessionEncodeError",
    run: creating(payload({ n: Number.NEGATIVE_INFINITY }))
  },
  { name: "payload invalid date", expected: "SessionEncodeError", run: creating(payload({ at: new Date("nope") })) },
  { name: "payload lone surrogates round-trip", expected: "ok", run: roundTrip(payload({ note: "a\ud800b\udfffc" })) },
  { name: "payload NUL and BOM round-trip", expected: "ok", run: roundTrip(payload({ note: "\u0000\ufeff\u2028" })) },
  { name: "payload -0 is read back as a zero", expected: "ok", run: roundTrip(payload({ n: -0 })) },
  {
    name: "payload with an excess property is written without it",
    expected: "ok",
    run: creating({ ...payload(), extra: "dropped" })
  },
  {
    name: "payload nested 100 deep round-trips",
    expected: "ok",
    run: ({ deep }) =>
      Effect.gen(function* () {
        const created = yield* deep.create(nest(100))
        return Option.isSome(yield* deep.restore(created.token)) ? "ok" : "None"
      })
  },
  {
    name: "payload nested 100,000 deep",
    expected: "SessionEncodeError",
    run: ({ deep }) => Effect.as(deep.create(nest(100_000)), "ok")
  },
  {
    name: "stored payload nested 30,000 deep",
    expected: "SessionDecodeError",
    run: ({ deep, raw }) =>
      Effect.gen(function* () {
        const created = yield* deep.create(nest(1))
        yield* Effect.orDie(raw.setPayload(created.key, `${'{"child":'.repeat(30_000)}{}${"}".repeat(30_000)}`))
        const restored = yield* Effect.exit(deep.restore(created.token))
        yield* deep.delete(created.token)
        return yield* option(restored)
      })
  },
  {
    name: "save over the bound leaves the stored payload alone",
    expected: "PayloadTooLarge",
    run: ({ store }) =>
      Effect.gen(function* () {
        const created = yield* store.create(payload({ note: "before" }))
        const exit = yield* Effect.exit(store.save({ ...created, payload: payload({ note: "y".repeat(LIMIT) }) }))
        const after = Option.getOrThrow(yield* store.restore(created.token))
        assert.strictEqual(after.payload.note, "before")
        return yield* exit
      }).pipe(Effect.as("ok"))
  }
]

const outcomeOf = <A extends Outcome, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): Outcome =>
  Exit.match(exit, {
    onSuccess: (value) => value,
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onNone: () => `defect ${Cause.pretty(cause).split("\n")[0]}`,
        onSome: (error) => (error._tag === "StoreUnavailable" ? `StoreUnavailable (${causeText(error)})` : error._tag)
      })
  })

const causeText = (error: unknown): string => String((error as { cause?: unknown }).cause).slice(0, 200)

const corpus = <X>(target: Backend<X>) =>
  Effect.gen(function* () {
    yield* atT0()
    const raw = yield* RawAccess
    const store = yield* makeStore(policies.sliding, { maxPayloadBytes: LIMIT })
    const deep = yield* SessionStore.make({ schema: Tree, policy: policies.sliding, maxPayloadBytes: 1_000_000 })
    const bystanders = yield* Effect.forEach(["alice", "bob", "carol"], (userId) =>
      store.create(payload({ note: `of ${userId}` }), { userId })
    )
    const keys = bystanders.map((session) => session.key)
    const snapshot = Effect.map(raw.records, (records) => keys.map((key) => records.get(key)))
    const before = yield* snapshot
    assert.isTrue(before.every((record) => record !== undefined))

    const tampered: ReadonlyArray<Case> = raw.tamperings.map((tampering) => ({
      name: `stored record: ${tampering.name}`,
      expected: tampering.expected,
      run: () =>
        Effect.gen(function* () {
          const victim = yield* store.create(payload(), { userId: "mallory" })
          yield* Effect.orDie(tampering.apply(victim.key))
          const restored = outcomeOf(yield* Effect.exit(option(store.restore(victim.token))))
          const listed = outcomeOf(yield* Effect.exit(Effect.as(store.listByUser("mallory"), "ok" as const)))
          const deleted = outcomeOf(yield* Effect.exit(Effect.as(store.delete(victim.token), "ok" as const)))
          const gone = outcomeOf(yield* Effect.exit(option(store.restore(victim.token))))
          const rest = `listByUser ${listed}, delete ${deleted}, restore after delete ${gone}`
          return rest === "listByUser ok, delete ok, restore after delete None" ? restored : `${restored}; ${rest}`
        })
    }))

    const cases = [...tokenCases, ...userCases, ...payloadCases, ...tampered]
    const token = bystanders[0].token
    const results: Array<string> = []
    for (const testCase of cases) {
      const outcome = outcomeOf(yield* Effect.exit(testCase.run({ store, deep, token, raw })))
      if (outcome !== testCase.expected) results.push(`${testCase.name}: expected ${testCase.expected}, got ${outcome}`)
      assert.deepStrictEqual(yield* snapshot, before, `${testCase.name} changed another session`)
    }

    for (const session of bystanders) {
      const restored = Option.getOrThrow(yield* store.restore(session.token))
      assert.strictEqual(restored.version, 1)
    }
    assert.deepStrictEqual(results, [])
    assert.isAtLeast(cases.length, 40)
    yield* Effect.sync(() => counts.set(target.name, cases.length))
  })

const counts = new Map<string, number>()

installProcessSpies("bad input")

describe("bad input corpus", () => {
  for (const target of backends) {
    it.effect.skipIf(target.skip !== undefined)(
      `${target.name}: every hostile token, user id, payload and tampered record gets its typed answer`,
      () => corpus(target).pipe(provideBackend(target)),
      target.timeout
    )
  }

  it("reports how many bad inputs each backend was given", () => {
    if (process.env.EFFECT_SESSION_REPORT) process.stdout.write(`bad inputs: ${JSON.stringify([...counts])}\n`)
    for (const [, count] of counts) assert.isAtLeast(count, 40)
  })
})
