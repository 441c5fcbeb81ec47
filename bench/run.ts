/**
 * `npm run bench`: every benchmark in one process, side by side, then the
 * table printed and written to BENCHMARKS.md. `--quick` shrinks every count;
 * `--only sqlite,memory,sweep,lifecycle,http` picks sections.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Figure } from "./harness.js"
import { renderMarkdown } from "./report.js"

/** The sizes of every section. */
export interface BenchConfig {
  readonly sessions: number
  readonly operations: number
  readonly rounds: number
  readonly payloadBytes: number
  readonly sweepExpired: number
  readonly sweepLive: number
  readonly sweepBatch: number
  readonly sweepRounds: number
  readonly cycles: number
  readonly connections: number
  readonly httpSeconds: number
  readonly httpRounds: number
}

/** The sizes the issue asks for. */
export const full: BenchConfig = {
  sessions: 10_000,
  operations: 10_000,
  rounds: 5,
  payloadBytes: 1024,
  sweepExpired: 1_000_000,
  sweepLive: 10_000,
  sweepBatch: 1_000,
  sweepRounds: 1,
  cycles: 10_000,
  connections: 50,
  httpSeconds: 10,
  httpRounds: 3
}

/** Tiny sizes: the smoke run inside the test suite. */
export const quick: BenchConfig = {
  sessions: 50,
  operations: 50,
  rounds: 1,
  payloadBytes: 1024,
  sweepExpired: 3_000,
  sweepLive: 20,
  sweepBatch: 1_000,
  sweepRounds: 1,
  cycles: 20,
  connections: 2,
  httpSeconds: 1,
  httpRounds: 1
}

/** Every section name, in run order. */
export const sections = ["sqlite", "memory", "sweep", "lifecycle", "http"] as const

/** Runs the chosen sections and returns their figures. */
export const runBench = async (
  config: BenchConfig,
  only: ReadonlyArray<string> = sections,
  progress: (line: string) => void = () => {}
): Promise<Array<Figure>> => {
  const figures: Array<Figure> = []
  const operations = {
    sessions: config.sessions,
    operations: config.operations,
    rounds: config.rounds,
    payloadBytes: config.payloadBytes
  }
  const run = async (name: string, section: () => Promise<Array<Figure>>) => {
    if (!only.includes(name)) return
    progress(`${name}…`)
    figures.push(...(await section()))
  }
  await run("sqlite", async () => (await import("./operations.js")).sqliteOperations(operations))
  await run("memory", async () => (await import("./operations.js")).memoryOperations(operations))
  await run("sweep", async () =>
    (await import("./sweep.js")).sweepBenchmark({
      expired: config.sweepExpired,
      live: config.sweepLive,
      batchSize: config.sweepBatch,
      rounds: config.sweepRounds
    })
  )
  await run("lifecycle", async () => (await import("./lifecycle.js")).lifecycleBenchmark(config.cycles))
  await run("http", async () =>
    (await import("./http.js")).httpBenchmark({
      connections: config.connections,
      seconds: config.httpSeconds,
      rounds: config.httpRounds
    })
  )
  return figures
}

const main = async () => {
  const args = process.argv.slice(2)
  const isQuick = args.includes("--quick")
  const onlyIndex = args.indexOf("--only")
  const only = onlyIndex >= 0 ? args[onlyIndex + 1].split(",") : sections
  const started = performance.now()
  const figures = await runBench(isQuick ? quick : full, only, (line) => process.stderr.write(`bench: ${line}\n`))
  const markdown = renderMarkdown(
    figures,
    `npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`,
    (performance.now() - started) / 1000
  )
  process.stdout.write(`${markdown}\n`)
  if (!isQuick) writeFileSync(join(import.meta.dirname, "..", "BENCHMARKS.md"), markdown)
}

if (process.argv[1]?.endsWith("run.ts")) {
  main().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`bench failed: ${error?.stack ?? error}\n`)
      process.exit(1)
    }
  )
}
