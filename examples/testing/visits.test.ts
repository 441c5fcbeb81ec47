/**
 * Testing a handler without a server and without waiting: build a request,
 * run the app inside `it.effect`, move the TestClock past the session's expiry.
 */
import { Cookies, HttpApp, HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import { app, SessionsLive } from "./visits.js"

// Runs one request through the app and returns the response the server would write.
const visit = (cookie: string | undefined) =>
  Effect.gen(function* () {
    const headers: Record<string, string> = cookie === undefined ? {} : { cookie }
    const request = HttpServerRequest.fromWeb(new Request("http://localhost/visit", { headers }))
    let response: HttpServerResponse.HttpServerResponse | undefined
    yield* HttpApp.toHandled(app, (_request, out) => Effect.sync(() => void (response = out))).pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, request),
      Effect.locally(HttpApp.currentPreResponseHandlers, Option.none())
    )
    const cookies = response?.cookies ?? Cookies.empty
    const sent = Option.map(Cookies.get(cookies, "visits"), (c) => `visits=${c.value}`)
    const body = response?.body._tag === "Uint8Array" ? new TextDecoder().decode(response.body.body) : "{}"
    return { status: response?.status, count: (JSON.parse(body) as { count?: number }).count, sent }
  })

describe("examples/testing: the visits counter", () => {
  it.scoped("counts visits and forgets them an hour later, without waiting an hour", () =>
    Effect.gen(function* () {
      const first = yield* visit(undefined)
      const cookie = Option.getOrThrow(first.sent)
      yield* visit(cookie)
      const third = yield* visit(cookie)

      yield* TestClock.adjust("1 hour")
      const later = yield* visit(cookie)

      assert.strictEqual(first.status, 200)
      assert.strictEqual(third.count, 3)
      assert.isTrue(Option.isNone(third.sent))
      assert.strictEqual(later.count, 1)
      assert.notStrictEqual(Option.getOrThrow(later.sent), cookie)
    }).pipe(Effect.provide(SessionsLive))
  )
})
