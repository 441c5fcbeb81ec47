import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Layer, Queue, Redacted, type Scope, TestClock, Tracer } from "effect"
import type { SessionRepository } from "../../src/SessionRepository.js"
import * as SessionSweeper from "../../src/SessionSweeper.js"
import { atT0, makeStore, payload, policies } from "../conformance/fixtures.js"
import { type Backend, backends, installProcessSpies, RawAccess, repositoryLayer } from "../helpers/backends.js"
import * as Faulty from "../helpers/faulty.js"
import * as Logs from "../helpers/logs.js"

const MINUTE = 60_000

const scanned = { logLines: 0, spans: 0, spanTexts: 0, storedTexts: 0, tokens: 0 }

/** Every span name, attribute, event and failed exit of the run, as text. */
const recorded: Array<string> = []
let spanCount = 0

const recordingTracer = Layer.unwrapEffect(
  Effect.map(Effect.tracer, (base) =>
    Layer.setTracer(
      Tracer.make({
        context: base.context,
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = base.span(name, parent, context, links, startTime, kind, options)
          spanCount++
          recorded.push(name, ...Object.entries(options?.attributes ?? {}).map(([k, v]) => `${k}=${String(v)}`))
          const attribute = span.attribute.bind(span)
          const event = span.event.bind(span)
          const end = span.end.bind(span)
          span.attribute = (key, value) => {
            recorded.push(`${key}=${String(value)}`)
            attribute(key, value)
          }
          span.event = (eventName, time, attributes) => {
            recorded.push(eventName, JSON.stringify(attributes ?? {}))
            event(eventName, time, attributes)
          }
          span.end = (endTime, exit) => {
            if (Exit.isFailure(exit)) recorded.push(Cause.pretty(exit.cause, { renderErrorCause: true }))
            end(endTime, exit)
          }
          return span
        }
      })
    )
  )
)

const settle = Effect.repeat(Effect.zipRight(Effect.yieldNow(), TestClock.sleeps()), {
  until: (sleeps) => Chunk.size(sleeps) > 0
})

const instrumented =
  <X>(target: Backend<X>) =>
  <A, E, R>(body: Effect.Effect<A, E, R>) => {
    const shared = repositoryLayer(target)
    return Effect.zipRight(
      atT0(),
      Effect.scoped(body).pipe(
        Effect.provide(
          Layer.orDie(
            Layer.mergeAll(
              Faulty.layer(shared),
              Layer.effect(RawAccess, RawAccess).pipe(Layer.provide(shared)),
              Logs.layer,
              recordingTracer
            ).pipe(Layer.provide(target.backend))
          )
        )
      )
    ) as Effect.Effect<
      A,
      E,
      Exclude<R, SessionRepository | Faulty.FaultControl | Logs.CapturedLogs | RawAccess | X | Scope.Scope>
    >
  }

installProcessSpies("tokens")

describe("tokens at rest and in logs", () => {
  for (const target of backends) {
    it.effect.skipIf(target.skip !== undefined)(
      `${target.name}: no token of the run is stored, logged, traced or put in an error`,
      () =>
        Effect.gen(function* () {
          recorded.length = 0
          spanCount = 0
          const faults = yield* Faulty.FaultControl
          const store = yield* makeStore(policies.sliding)
          const sweeper = yield* SessionSweeper.make({ interval: "1 minute", jitter: 0 })
          const reports = yield* sweeper.reports
          const tokens: Array<string> = []
          const errors: Array<string> = []
          const keep = <A extends { readonly token: Redacted.Redacted<string> }>(session: A) => {
            tokens.push(Redacted.value(session.token))
            return session
          }
          const attempt = <A, E>(effect: Effect.Effect<A, E>) =>
            Effect.tap(Effect.exit(effect), (exit) =>
              Effect.sync(() => {
                if (Exit.isFailure(exit)) errors.push(Cause.pretty(exit.cause, { renderErrorCause: true }))
              })
            )

          const sessions: Array<Effect.Effect.Success<ReturnType<typeof store.create>>> = []
          for (let i = 0; i < 12; i++) {
            sessions.push(keep(yield* store.create(payload({ n: i }), { userId: `user${i % 3}` })))
          }
          for (const session of sessions) {
            yield* store.restore(session.token)
            yield* store.restore(Redacted.value(session.token))
          }
          yield* TestClock.adjust(MINUTE)
          yield* settle
          yield* Queue.take(reports)
          yield* store.touch(sessions[0])
          yield* store.update(sessions[1].token, (p) => ({ ...p, n: 99 }))
          yield* attempt(store.save(sessions[1]))
          const regenerated = keep(yield* store.regenerate(sessions[2]))
          yield* attempt(store.save(sessions[2]))
          yield* store.restore(sessions[2].token)
          yield* store.revoke("user0", sessions[3].handle)
          yield* store.delete(sessions[4].token)
          yield* store.listByUser("user1")
          yield* faults.breakAll()
          for (const session of [sessions[5], regenerated]) {
            yield* attempt(store.restore(session.token))
            yield* attempt(store.update(session.token, (p) => p))
            yield* attempt(store.regenerate(session))
            yield* attempt(store.delete(session.token))
          }
          yield* TestClock.adjust(MINUTE)
          yield* Queue.take(reports)
          yield* faults.heal
          yield* attempt(store.restore(`${Redacted.value(sessions[6].token)}!`))
          yield* store.deleteByUser("user2")

          const stored = yield* (yield* RawAccess).everything
          const logs = (yield* Logs.CapturedLogs.entries).map((entry) => entry.text)
          const haystacks = { stored, logs, spans: recorded, errors }
          for (const [where, texts] of Object.entries(haystacks)) {
            for (const token of tokens) {
              const leak = texts.find((text) => text.includes(token))
              assert.isUndefined(leak, `a token appears in ${where}`)
            }
          }
          assert.isAbove(stored.length, 0)
          assert.isTrue(
            stored.some((text) => text.includes(sessions[0].key)),
            "the stored view holds the keys"
          )
          assert.isAbove(logs.length, 0)
          assert.isAbove(errors.length, 0)
          assert.isTrue(recorded.includes("session.restore"), "spans were recorded")
          scanned.logLines += logs.length
          scanned.spans += spanCount
          scanned.spanTexts += recorded.length
          scanned.storedTexts += stored.length
          scanned.tokens += tokens.length
        }).pipe(instrumented(target)),
      target.timeout
    )
  }

  it("reports what was scanned", () => {
    if (process.env.EFFECT_SESSION_REPORT) process.stdout.write(`tokens scan: ${JSON.stringify(scanned)}\n`)
  })
})
