import { execFile } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import type { PushMetricExporter, ResourceMetrics } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base"
import { Effect, Redacted } from "effect"
import { run } from "../examples/observability/main.js"
import * as SessionToken from "../src/SessionToken.js"

const collecting = () => {
  const spans: Array<ReadableSpan> = []
  const metrics: Array<ResourceMetrics> = []
  const done = (callback: (result: { code: number }) => void) => callback({ code: 0 })
  const spanExporter: SpanExporter = {
    export: (batch, callback) => {
      spans.push(...batch)
      done(callback)
    },
    shutdown: () => Promise.resolve()
  }
  const metricExporter: PushMetricExporter = {
    export: (batch, callback) => {
      metrics.push(batch)
      done(callback)
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve()
  }
  return { spans, metrics, exporters: { spans: spanExporter, metrics: metricExporter } }
}

const exported = Effect.gen(function* () {
  const sink = collecting()
  const tokens = yield* run(sink.exporters)
  const metrics = sink.metrics.flatMap((batch) => batch.scopeMetrics.flatMap((scope) => scope.metrics))
  return { tokens: tokens.map(Redacted.value), spans: sink.spans, metrics }
})

describe("observability example", () => {
  it.live("exports every metric the store and the sweeper recorded, under its stable name", () =>
    Effect.gen(function* () {
      const { metrics } = yield* exported

      const names = new Set(metrics.map((metric) => metric.descriptor.name))

      for (const name of [
        "effect_session_operations_total",
        "effect_session_payload_bytes",
        "effect_session_sweep_runs_total",
        "effect_session_swept_sessions_total",
        "effect_session_sweep_duration_ms"
      ]) {
        assert.isTrue(names.has(name), `${name} exported`)
      }
      const operations = metrics.find((metric) => metric.descriptor.name === "effect_session_operations_total")!
      const outcomes = operations.dataPoints.map((point) => `${point.attributes.operation}/${point.attributes.outcome}`)
      for (const expected of [
        "create/ok",
        "restore/found",
        "restore/missing",
        "save/ok",
        "save/conflict",
        "touch/ok"
      ]) {
        assert.include(outcomes, expected)
      }
      for (const point of operations.dataPoints) {
        assert.deepStrictEqual(Object.keys(point.attributes).sort(), ["backend", "operation", "outcome"])
      }
    })
  )

  it.live("gives each store and repository operation a span with backend, handle and outcome", () =>
    Effect.gen(function* () {
      const { spans, tokens } = yield* exported

      const byName = (name: string) => spans.filter((span) => span.name === name)
      const handle = SessionToken.handleOf(SessionToken.keyOf(tokens[0]))

      const restores = byName("session.restore")
      assert.deepStrictEqual(
        restores.map((span) => span.attributes["session.outcome"]),
        ["found", "missing", "found"]
      )
      assert.strictEqual(restores[0].attributes["session.handle"], handle)
      assert.strictEqual(restores[0].attributes["session.backend"], "sqlite")
      const conflict = byName("session.save").find((span) => span.attributes["session.outcome"] === "conflict")
      assert.strictEqual(conflict?.attributes["session.handle"], handle)
      assert.isAbove(byName("session.repository.get").length, 0)
      assert.isAbove(byName("session.repository.removeExpired").length, 0)
      const storeSpanIds = new Set(
        spans.filter((span) => !span.name.startsWith("session.repository.")).map((span) => span.spanContext().spanId)
      )
      for (const span of byName("session.repository.get")) {
        assert.strictEqual(span.attributes["db.system.name"], "sqlite")
        assert.isTrue(storeSpanIds.has(span.parentSpanContext?.spanId ?? ""), "a child of its store span")
      }
    })
  )

  it.live("never exports a token, nor its key, in a span name, attribute, event or metric attribute", () =>
    Effect.gen(function* () {
      const { metrics, spans, tokens } = yield* exported

      const text = JSON.stringify([
        spans.map((span) => [span.name, span.attributes, span.events, span.status]),
        metrics.map((metric) => [metric.descriptor, metric.dataPoints.map((point) => point.attributes)])
      ])

      assert.strictEqual(tokens.length, 2)
      for (const token of tokens) {
        assert.isAtLeast(token.length, 22)
        assert.notInclude(text, token)
        assert.notInclude(text, SessionToken.keyOf(token))
      }
    })
  )

  it.live("runs from the command line with the console exporters", () =>
    Effect.gen(function* () {
      const output = yield* Effect.async<{ code: number; stdout: string }>((resume) => {
        const child = execFile(
          process.execPath,
          ["--import", "tsx", "examples/observability/main.ts"],
          { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
          (error, stdout) => resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stdout }))
        )
        return Effect.sync(() => child.kill())
      })

      assert.strictEqual(output.code, 0)
      assert.include(output.stdout, "session.restore")
      assert.include(output.stdout, "effect_session_operations_total")
      assert.include(output.stdout, "effect_session_sweep_runs_total")
    })
  )
})
