/**
 * The README's composition example: a typed cart in sessions on SQLite, with
 * the sweep running for as long as the program's scope is open.
 *
 * Run it with `npx tsx examples/quickstart.ts`.
 */
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { ExpirationPolicy, SessionStore, SessionSweeper, SqlRepository } from "effect-session"

// 1. The payload, described by a Schema: a Date and a Set survive the round trip.
const Cart = Schema.Struct({
  items: Schema.Set(Schema.String),
  updatedAt: Schema.Date
})

// 2. The application's own tag for its store.
class Sessions extends Context.Tag("app/Sessions")<Sessions, SessionStore.SessionStore<typeof Cart.Type>>() {}

// 3. Layers, built once and held in constants.
const Database = SqliteClient.layer({ filename: ":memory:" })
const Repository = SqlRepository.layer({ table: "sessions" }).pipe(Layer.provide(Database))
const SessionsLive = Layer.mergeAll(
  SessionStore.layer(Sessions, {
    schema: Cart,
    policy: ExpirationPolicy.slidingCapped("30 minutes", "12 hours", { renewalThreshold: 0.5 }),
    maxPayloadBytes: 16_384
  }),
  SessionSweeper.layer({ interval: "5 minutes", batchSize: 1_000 })
).pipe(Layer.provide(Repository))

// 4. Use it: create at login, restore per request, change and save.
const program = Effect.gen(function* () {
  const sessions = yield* Sessions

  const session = yield* sessions.create({ items: new Set(), updatedAt: new Date(0) }, { userId: "ada" })
  const restored = yield* sessions.restore(session.token)

  if (Option.isSome(restored)) {
    const cart = restored.value.payload
    yield* sessions.save({ ...restored.value, payload: { ...cart, items: new Set([...cart.items, "book"]) } })
  }

  const devices = yield* sessions.listByUser("ada")
  yield* Effect.log(`ada has ${devices.length} session(s): ${devices.map((device) => device.handle).join(", ")}`)
})

// Closing the scope at the end of the program stops the sweep; nothing else is needed.
Effect.runPromise(Effect.provide(program, SessionsLive)).catch((error: unknown) => {
  process.exitCode = 1
  process.stderr.write(`${String(error)}\n`)
})
