import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import fc from "fast-check"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import { makeCodec } from "../src/internal/payload.js"
import * as MemoryRepository from "../src/MemoryRepository.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionStore from "../src/SessionStore.js"
import { T0 } from "./conformance/fixtures.js"

const HOUR = 3_600_000

const policy = fc.oneof(
  fc.integer({ min: 1, max: HOUR }).map((ttl) => ExpirationPolicy.absolute(ttl)),
  fc
    .tuple(fc.integer({ min: 1, max: HOUR }), fc.double({ min: 0.01, max: 1, noNaN: true }))
    .map(([ttl, renewalThreshold]) => ExpirationPolicy.sliding(ttl, { renewalThreshold })),
  fc
    .tuple(fc.integer({ min: 1, max: HOUR }), fc.integer({ min: 0, max: 10 * HOUR }), fc.double({ min: 0.01, max: 1 }))
    .map(([ttl, extra, renewalThreshold]) =>
      ExpirationPolicy.slidingCapped(ttl, ttl + extra, {
        renewalThreshold: Number.isNaN(renewalThreshold) ? 1 : renewalThreshold
      })
    )
)

const gaps = fc.array(fc.integer({ min: 0, max: 2 * HOUR }), { minLength: 1, maxLength: 30 })

describe("expiration policy properties", () => {
  it("touches never move the expiry back, never pass the cap, and never move an absolute expiry", () => {
    fc.assert(
      fc.property(policy, fc.integer({ min: 0, max: 1e13 }), gaps, (chosen, createdAt, steps) => {
        let expiresAt = ExpirationPolicy.initialExpiry(chosen, createdAt)
        const first = expiresAt
        let now = createdAt
        for (const step of steps) {
          now += step
          const next = ExpirationPolicy.renewal(chosen, { createdAt, expiresAt }, now)
          if (Option.isSome(next)) {
            assert.isAbove(next.value, expiresAt)
            assert.isBelow(now, expiresAt)
            expiresAt = next.value
          }
          if (chosen._tag === "SlidingCapped") assert.isAtMost(expiresAt, createdAt + chosen.maxLifetime)
          if (chosen._tag === "Absolute") assert.strictEqual(expiresAt, first)
        }
        return true
      }),
      { numRuns: 2_000 }
    )
  })

  it.effect("through the store, touch never shortens a session and absolute sessions keep their expiry", () =>
    Effect.gen(function* () {
      const samples = fc.sample(fc.tuple(policy, gaps), 200)
      for (const [chosen, steps] of samples) {
        const store = yield* SessionStore.make({ schema: Schema.Struct({}), policy: chosen }).pipe(
          Effect.provideServiceEffect(SessionRepository, MemoryRepository.make)
        )
        let now = T0
        const created = yield* store.create({}).pipe(Effect.withClock(fixedClock(now)))
        let session = created
        for (const step of steps) {
          now += step
          const renewed = yield* store.renew(session).pipe(Effect.withClock(fixedClock(now)))
          if (Option.isSome(renewed)) {
            assert.isAbove(Option.getOrThrow(renewed.value.expiresAt), Option.getOrThrow(session.expiresAt))
            session = renewed.value
          }
        }
        if (chosen._tag === "Absolute") assert.deepStrictEqual(session.expiresAt, created.expiresAt)
      }
    })
  )
})

const fixedClock = (now: number) =>
  ({
    [Symbol.for("effect/Clock")]: Symbol.for("effect/Clock"),
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.succeed(now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.succeed(BigInt(now) * 1_000_000n),
    sleep: () => Effect.void
  }) as any

const Rich = Schema.Struct({
  at: Schema.Date,
  tags: Schema.Set(Schema.String),
  m: Schema.Map({ key: Schema.String, value: Schema.BigInt }),
  big: Schema.BigInt,
  text: Schema.String,
  n: Schema.Number,
  list: Schema.Array(Schema.Union(Schema.String, Schema.Number, Schema.Boolean, Schema.Null)),
  maybe: Schema.Option(Schema.String)
})

const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n))

const rich = fc.record({
  at: fc.date({ noInvalidDate: true }),
  tags: fc.uniqueArray(fc.string({ unit: "binary" })).map((values) => new Set(values)),
  m: fc.array(fc.tuple(fc.string({ unit: "binary" }), fc.bigInt())).map((entries) => new Map(entries)),
  big: fc.bigInt(),
  text: fc.string({ unit: "binary" }),
  n: finite,
  list: fc.array(fc.oneof(fc.string({ unit: "binary" }), finite, fc.boolean(), fc.constant(null))),
  maybe: fc.option(fc.string({ unit: "binary" })).map(Option.fromNullable)
})

describe("payload round-trip properties", () => {
  it("every schema-valid payload, lone surrogates included, encodes to JSON text and decodes equal", () => {
    const codec = makeCodec(Rich, 10_000_000, "ignore")
    fc.assert(
      fc.property(rich, (value) => {
        const json = codec.encode(value)
        assert.isTrue(json._tag === "Right", "encode")
        const back = codec.decode((json as { right: string }).right, "h")
        assert.isTrue(back._tag === "Right", "decode")
        assert.deepStrictEqual((back as { right: unknown }).right, value)
        return true
      }),
      { numRuns: 1_000 }
    )
  })

  it("lone surrogates survive the JSON text as escapes", () => {
    const codec = makeCodec(Rich, 10_000, "ignore")
    const value = {
      at: new Date(0),
      tags: new Set(["\ud800"]),
      m: new Map([["\udfff", 1n]]),
      big: 0n,
      text: "a\ud83d",
      n: 0,
      list: [],
      maybe: Option.some("\udc00")
    }
    const json = codec.encode(value)

    assert.isTrue(json._tag === "Right")
    assert.include((json as { right: string }).right, "\\ud800")
    assert.deepStrictEqual((codec.decode((json as { right: string }).right, "h") as { right: unknown }).right, value)
  })
})
