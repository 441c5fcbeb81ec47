/**
 * Exports effect-session's spans and metrics through @effect/opentelemetry.
 * Run it with `npx tsx examples/observability/main.ts`: the spans and, when
 * the layer closes, the metrics are printed by the console exporters.
 */

import { pathToFileURL } from "node:url"
import { NodeSdk } from "@effect/opentelemetry"
import { SqliteClient } from "@effect/sql-sqlite-node"
import {
  ConsoleMetricExporter,
  PeriodicExportingMetricReader,
  type PushMetricExporter
} from "@opentelemetry/sdk-metrics"
import { ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import { Context, Effect, Layer, Queue, Schema } from "effect"
import { ExpirationPolicy, SessionStore, SessionSweeper, SqlRepository } from "../../src/index.js"

const Visits = Schema.Struct({ visits: Schema.Number })

class Sessions extends Context.Tag("example/Sessions")<Sessions, SessionStore.SessionStore<typeof Visits.Type>>() {}

/** Where spans and metrics go: the console here, any OpenTelemetry exporter in production. */
export const telemetry = (exporters: { readonly spans: SpanExporter; readonly metrics: PushMetricExporter }) =>
  NodeSdk.layer(() => ({
    resource: { serviceName: "effect-session-example" },
    spanProcessor: new SimpleSpanProcessor(exporters.spans),
    // One export when the layer closes; a long-running service keeps the default interval.
    metricReader: new PeriodicExportingMetricReader({ exporter: exporters.metrics, exportIntervalMillis: 3_600_000 })
  }))

/** Store and sweeper on an in-memory SQLite database; the sweeper runs every 50 ms. */
const Live = Layer.mergeAll(
  SessionStore.layer(Sessions, { schema: Visits, policy: ExpirationPolicy.sliding("30 minutes") }),
  SessionSweeper.layer({ interval: "50 millis", jitter: 0 })
).pipe(
  Layer.provide(SqlRepository.layer({ table: "sessions" })),
  Layer.provide(SqliteClient.layer({ filename: ":memory:" }))
)

/** A few requests' worth of store calls, one of each outcome; returns the tokens it handed out. */
export const program = Effect.gen(function* () {
  const store = yield* Sessions
  const sweeper = yield* SessionSweeper.SessionSweeper
  const reports = yield* sweeper.reports

  const session = yield* store.create({ visits: 0 }, { userId: "alice" })
  yield* store.restore(session.token)
  const saved = yield* store.save({ ...session, payload: { visits: 1 } })
  yield* Effect.either(store.save({ ...session, payload: { visits: 2 } }))
  yield* store.touch(saved)
  yield* store.restore("a-token-that-was-never-issued-000000000000")
  const current = yield* Effect.flatten(store.restore(session.token))
  const regenerated = yield* store.regenerate(current)
  yield* store.listByUser("alice")
  yield* Queue.take(reports)

  return [session.token, regenerated.token] as const
}).pipe(Effect.scoped)

/** Runs `program` with the given exporters; closing the layer flushes both. */
export const run = (exporters: { readonly spans: SpanExporter; readonly metrics: PushMetricExporter }) =>
  program.pipe(Effect.provide(Live), Effect.provide(telemetry(exporters)))

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await Effect.runPromise(run({ spans: new ConsoleSpanExporter(), metrics: new ConsoleMetricExporter() }))
}
