/**
 * A second, smaller example: compose the layers of an app once, and keep the
 * routes free of wiring so a test can drive them with TestClock (see visits.test.ts).
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as ExpirationPolicy from "../../src/ExpirationPolicy.js"
import * as HttpSession from "../../src/HttpSession.js"
import * as MemoryRepository from "../../src/MemoryRepository.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SessionSweeper from "../../src/SessionSweeper.js"

export const Visits = Schema.Struct({ count: Schema.Number })

export class Sessions extends Context.Tag("visits/Sessions")<
  Sessions,
  SessionStore.SessionStore<typeof Visits.Type>
>() {}

export const Http = HttpSession.make(Sessions, { cookie: { name: "visits" } })

// GET /visit starts a one-hour session on the first call and counts the calls after it.
export const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/visit",
    Effect.gen(function* () {
      const current = yield* Http.current
      const session = Option.isNone(current)
        ? yield* Http.login("guest", { count: 1 })
        : yield* Http.update((visits) => ({ count: visits.count + 1 }))
      return yield* HttpServerResponse.json({ count: session.payload.count })
    })
  ),
  Http.middleware
)

// Built once and held in a const, so one store and one sweeper serve the whole app.
export const SessionsLive = Layer.mergeAll(
  SessionStore.layer(Sessions, { schema: Visits, policy: ExpirationPolicy.absolute("1 hour") }),
  SessionSweeper.layer({ interval: "10 minutes" })
).pipe(Layer.provide(MemoryRepository.layer))

// Serving it is one more layer: HttpServer.serve(app) on top of the sessions and a NodeHttpServer.
export const ServerLive = HttpServer.serve(app).pipe(Layer.provide(SessionsLive))
