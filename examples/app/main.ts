/**
 * `npm start`: the example app on PORT (default 3000) with sessions in a SQLite
 * file (SESSION_DB_PATH, default ./data/sessions.db). See docs/http.md for every variable.
 */

import { createServer } from "node:http"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { AppConfig, appLayer } from "./app.js"

const main = Effect.gen(function* () {
  const config = yield* AppConfig
  if (!config.secureCookie) {
    yield* Effect.logWarning("session cookie without Secure: for plain-http development only")
  }
  const server = NodeHttpServer.layer(createServer, { port: config.port, host: config.host })
  return yield* Layer.launch(appLayer(config).pipe(Layer.provide(server)))
})

NodeRuntime.runMain(main)
