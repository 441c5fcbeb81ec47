/**
 * A test logger that records every entry, at every level, with its message,
 * annotations and cause rendered to text.
 */
import { Cause, Effect, HashMap, Layer, List, Logger, LogLevel } from "effect"

export interface LogEntry {
  readonly level: string
  readonly text: string
}

export class CapturedLogs extends Effect.Tag("test/CapturedLogs")<
  CapturedLogs,
  { readonly entries: Effect.Effect<ReadonlyArray<LogEntry>> }
>() {}

const render = (value: unknown): string =>
  typeof value === "string" ? value : (JSON.stringify(value) ?? String(value))

export const layer = Layer.unwrapEffect(
  Effect.sync(() => {
    const entries: Array<LogEntry> = []
    const logger = Logger.make(({ annotations, cause, logLevel, message, spans }) => {
      const parts = [
        ...(Array.isArray(message) ? message : [message]).map(render),
        ...[...HashMap.toEntries(annotations)].map(([k, v]) => `${k}=${render(v)}`),
        ...List.toArray(spans).map((span) => span.label),
        Cause.isEmpty(cause) ? "" : Cause.pretty(cause, { renderErrorCause: true })
      ]
      entries.push({ level: logLevel.label, text: parts.join(" ") })
    })
    return Layer.mergeAll(
      Logger.add(logger),
      Logger.minimumLogLevel(LogLevel.All),
      Layer.succeed(CapturedLogs, { entries: Effect.sync(() => [...entries]) })
    )
  })
)
