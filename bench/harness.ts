/**
 * Timing helpers shared by every benchmark: rounds interleaved between
 * contenders, medians, and the shapes of the results the report prints.
 */
import { randomBytes } from "node:crypto"
import { Schema } from "effect"

/** One measured figure of one contender. */
export interface Figure {
  readonly section: string
  readonly operation: string
  readonly contender: string
  readonly value: number
  readonly unit: string
}

/** A contender runs `count` operations and resolves when they are done. */
export type Runner = (count: number) => void | Promise<void>

/** The median of a non-empty list. */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** The q-quantile (0..1) of a list, nearest rank. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/**
 * Ops per second of each contender: `rounds` rounds, every contender once per
 * round in turn so noise from the shared machine hits them alike; the median.
 */
export const opsPerSecond = async (
  contenders: ReadonlyArray<readonly [string, Runner]>,
  count: number,
  rounds: number
): Promise<Map<string, number>> => {
  const samples = new Map<string, Array<number>>(contenders.map(([name]) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of contenders) {
      const started = process.hrtime.bigint()
      await run(count)
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      samples.get(name)!.push(count / seconds)
    }
  }
  return new Map([...samples].map(([name, values]) => [name, median(values)]))
}

/** The benchmark payload schema: a small profile and a cart. */
export const Payload = Schema.Struct({
  name: Schema.String,
  roles: Schema.Array(Schema.String),
  cart: Schema.Array(Schema.Struct({ sku: Schema.String, quantity: Schema.Number })),
  note: Schema.String
})

/** The payload type. */
export type Payload = typeof Payload.Type

/** A payload whose JSON text is `bytes` long (at least about 200). */
export const makePayload = (bytes: number, seed = 0): Payload => {
  const base: Payload = {
    name: `user-${seed}`,
    roles: ["reader", "writer"],
    cart: Array.from({ length: 3 }, (_, i) => ({ sku: `sku-${seed}-${i}`, quantity: i + 1 })),
    note: ""
  }
  const missing = Math.max(0, bytes - JSON.stringify(base).length)
  return { ...base, note: "x".repeat(missing) }
}

/** A random 64-character hex key, as a SHA-256 would give. */
export const randomKey = (): string => randomBytes(32).toString("hex")

/** Bytes to mebibytes, one decimal. */
export const mib = (bytes: number): number => Math.round((bytes / 1_048_576) * 10) / 10

/** Runs the garbage collector when node was started with --expose-gc. */
export const collect = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) {
    gc()
    gc()
  }
}
