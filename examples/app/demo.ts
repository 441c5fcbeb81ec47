/**
 * `npm run demo`: starts the app on a free port with a SQLite file in a temp
 * directory, a 2-second TTL and a fast sweep, takes it on the tour, exits 0.
 */

import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Layer, Logger, LogLevel } from "effect"
import { type AppConfig, appLayer } from "./app.js"
import { tour } from "./tour.js"

const directory = mkdtempSync(join(tmpdir(), "effect-session-demo-"))

const config: AppConfig = {
  port: 0,
  host: "127.0.0.1",
  database: join(directory, "sessions.db"),
  ttl: Duration.seconds(2),
  sweepInterval: Duration.millis(250),
  secureCookie: true
}

const server = appLayer(config).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: config.port, host: config.host }))
)

const program = Effect.gen(function* () {
  const baseUrl = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
  yield* tour(baseUrl, { ttl: config.ttl, cookie: "session" })
}).pipe(
  Effect.provide(Layer.mergeAll(server, FetchHttpClient.layer)),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.ensuring(Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
)

NodeRuntime.runMain(program)
