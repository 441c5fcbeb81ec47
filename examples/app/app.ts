/**
 * The example app: a shopping cart kept in a server-side session on a SQLite
 * file. `main.ts` serves it, `demo.ts` takes it on a tour, the tests drive it.
 *
 * There is no password store: POST /login trusts the user name it is given.
 * A real app checks credentials first, then calls `login` exactly like this.
 */

import { dirname } from "node:path"
import { FileSystem, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import * as ExpirationPolicy from "../../src/ExpirationPolicy.js"
import * as HttpSession from "../../src/HttpSession.js"
import type { Session } from "../../src/Session.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SessionSweeper from "../../src/SessionSweeper.js"
import * as SqlRepository from "../../src/SqlRepository.js"

// The typed payload: a Set and a Date survive the trip through SQLite because the schema says how.
export const Cart = Schema.Struct({
  items: Schema.ReadonlySet(Schema.String),
  updatedAt: Schema.NullOr(Schema.Date)
})
export type Cart = typeof Cart.Type

export const emptyCart: Cart = { items: new Set(), updatedAt: null }

export class Sessions extends Context.Tag("example/Sessions")<Sessions, SessionStore.SessionStore<Cart>>() {}

// Everything the app reads from the environment, each with a default that works on a fresh machine.
export const AppConfig = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(3000)),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  database: Config.string("SESSION_DB_PATH").pipe(Config.withDefault("./data/sessions.db")),
  ttl: Config.duration("SESSION_TTL").pipe(Config.withDefault(Duration.minutes(30))),
  sweepInterval: Config.duration("SESSION_SWEEP_INTERVAL").pipe(Config.withDefault(Duration.minutes(5))),
  secureCookie: Config.boolean("SESSION_COOKIE_SECURE").pipe(Config.withDefault(true))
})
export type AppConfig = Config.Config.Success<typeof AppConfig>

const Login = Schema.Struct({ user: Schema.String })
const AddItem = Schema.Struct({ item: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)) })

const iso = (millis: number) => new Date(millis).toISOString()

const profile = (session: Session<Cart>) => ({
  user: Option.getOrNull(session.userId),
  handle: session.handle,
  expiresAt: Option.getOrNull(Option.map(session.expiresAt, iso))
})

const cartJson = (cart: Cart) => ({
  items: [...cart.items].sort(),
  updatedAt: cart.updatedAt === null ? null : cart.updatedAt.toISOString()
})

const badRequest = () => HttpServerResponse.unsafeJson({ error: "BadRequest" }, { status: 400 })

/** The routes, wrapped in the session middleware. */
export const makeApp = (options: { readonly secureCookie: boolean }) => {
  const Http = HttpSession.make(Sessions, { cookie: { secure: options.secureCookie } })

  const router = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/",
      Effect.flatMap(Http.current, (session) =>
        HttpServerResponse.json({
          user: Option.getOrNull(Option.flatMap(session, (s) => s.userId)),
          routes: [
            "POST /login",
            "GET /me",
            "GET /cart",
            "POST /cart",
            "POST /regenerate",
            "GET /sessions",
            "DELETE /sessions/:handle",
            "POST /logout"
          ]
        })
      )
    ),
    HttpRouter.post(
      "/login",
      Effect.gen(function* () {
        const { user } = yield* HttpServerRequest.schemaBodyJson(Login)
        const session = yield* Http.login(user, emptyCart)
        return yield* HttpServerResponse.json(profile(session))
      }).pipe(Effect.catchTags({ ParseError: badRequest, RequestError: badRequest }))
    ),
    HttpRouter.get(
      "/me",
      Effect.flatMap(Http.require, (session) => HttpServerResponse.json(profile(session)))
    ),
    HttpRouter.get(
      "/cart",
      Effect.flatMap(Http.require, (session) => HttpServerResponse.json(cartJson(session.payload)))
    ),
    HttpRouter.post(
      "/cart",
      Effect.gen(function* () {
        const { item } = yield* HttpServerRequest.schemaBodyJson(AddItem)
        const now = yield* Clock.currentTimeMillis
        const session = yield* Http.update((cart) => ({
          items: new Set([...cart.items, item]),
          updatedAt: new Date(now)
        }))
        return yield* HttpServerResponse.json(cartJson(session.payload))
      }).pipe(Effect.catchTags({ ParseError: badRequest, RequestError: badRequest }))
    ),
    HttpRouter.post(
      "/regenerate",
      Effect.flatMap(Http.regenerate, (session) => HttpServerResponse.json(profile(session)))
    ),
    HttpRouter.get(
      "/sessions",
      Effect.flatMap(Http.devices, (devices) =>
        HttpServerResponse.json(
          devices.map((device) => ({
            handle: device.handle,
            current: device.current,
            createdAt: iso(device.createdAt),
            expiresAt: Option.getOrNull(Option.map(device.expiresAt, iso))
          }))
        )
      )
    ),
    HttpRouter.del(
      "/sessions/:handle",
      Effect.gen(function* () {
        const { handle } = yield* HttpRouter.params
        const removed = yield* Http.revoke(handle ?? "")
        return HttpServerResponse.empty({ status: removed ? 204 : 404 })
      })
    ),
    HttpRouter.post("/logout", Effect.as(Http.logout, HttpServerResponse.empty({ status: 204 })))
  )

  return router.pipe(Http.middleware)
}

/** SQLite on a file, WAL (the client's default) with synchronous=NORMAL, its directory created first. */
export const sqliteLayer = (filename: string) => {
  const directory = Layer.effectDiscard(
    Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory(dirname(filename), { recursive: true }))
  ).pipe(Layer.provide(NodeContext.layer))
  const pragmas = Layer.effectDiscard(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`PRAGMA synchronous = NORMAL`))
  return pragmas.pipe(Layer.provideMerge(SqliteClient.layer({ filename })), Layer.provide(directory))
}

/** The session store and its sweeper over a SQL client; the table is migrated when it is built. */
export const sessionsLayer = (config: Pick<AppConfig, "ttl" | "sweepInterval">) => {
  const repository = SqlRepository.layer({ table: "sessions" })
  const store = SessionStore.layer(Sessions, {
    schema: Cart,
    policy: ExpirationPolicy.sliding(config.ttl, { renewalThreshold: 0.5 })
  })
  const sweeper = SessionSweeper.layer({ interval: config.sweepInterval })
  return Layer.mergeAll(store, sweeper).pipe(Layer.provide(repository))
}

/** The HTTP server of the app with everything it needs except the `HttpServer` itself. */
export const appLayer = (config: AppConfig) =>
  HttpServer.serve(makeApp(config)).pipe(
    HttpServer.withLogAddress,
    Layer.provideMerge(sessionsLayer(config)),
    Layer.provideMerge(sqliteLayer(config.database))
  )
