import { Effect, Layer, Schema, type Scope, TestClock } from "effect"
import * as ExpirationPolicy from "../../src/ExpirationPolicy.js"
import type { SessionRepository } from "../../src/SessionRepository.js"
import * as SessionStore from "../../src/SessionStore.js"

/** 2030-01-01T00:00:00.000Z */
export const T0 = Date.UTC(2030, 0, 1)

export const Payload = Schema.Struct({
  n: Schema.Number,
  at: Schema.Date,
  tags: Schema.Set(Schema.String),
  m: Schema.Map({ key: Schema.String, value: Schema.BigInt }),
  big: Schema.BigInt,
  note: Schema.String
})
export type Payload = typeof Payload.Type

export const payload = (overrides: Partial<Payload> = {}): Payload => ({
  n: 1,
  at: new Date("2030-06-01T12:34:56.789Z"),
  tags: new Set(["a", "b"]),
  m: new Map([["x", 2n ** 70n]]),
  big: -(2n ** 64n),
  note: "2030-06-01T12:34:56.789Z",
  ...overrides
})

export const policies = {
  absolute: ExpirationPolicy.absolute("10 minutes"),
  sliding: ExpirationPolicy.sliding("10 minutes"),
  capped: ExpirationPolicy.slidingCapped("10 minutes", "15 minutes")
} as const

export type PolicyName = keyof typeof policies

export const makeStore = (
  policy: ExpirationPolicy.ExpirationPolicy,
  options: Partial<SessionStore.Options<Payload, typeof Payload.Encoded>> = {}
) => SessionStore.make({ schema: Payload, policy, ...options })

/** Sets the TestClock to an instant far from the wall clock. */
export const atT0 = (offset = 0) => TestClock.setTime(T0 + offset)

export const advance = (millis: number) => TestClock.adjust(millis)

/**
 * A backend under test. `backend` is built once per test (a connection, an
 * in-memory database); `repository` builds an isolated repository on it each
 * time it is called (its own table, prefix or map), so two calls share the backend.
 */
export interface ConformanceTarget<X> {
  readonly name: string
  /** A reason to skip the whole suite, such as a missing server URL. */
  readonly skip?: string | undefined
  readonly backend: Layer.Layer<X, unknown>
  readonly repository: () => Layer.Layer<SessionRepository, unknown, X>
  /** Per-test timeout in ms for slow backends. */
  readonly timeout?: number | undefined
}

export const provideRepository =
  <X>(target: ConformanceTarget<X>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.scoped(effect).pipe(
      Effect.provide(Layer.orDie(Layer.provideMerge(target.repository(), target.backend)))
    ) as Effect.Effect<A, E, Exclude<R, SessionRepository | X | Scope.Scope>>
