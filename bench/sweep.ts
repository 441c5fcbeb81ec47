/**
 * Item 3: a backlog of expired rows beside live ones in a SQLite file. Our
 * sweep against one unbounded DELETE and against "select every expired key,
 * then delete by key", each on a fresh copy of the same file, while a fiber
 * keeps restoring live sessions through our store.
 */

import { randomBytes } from "node:crypto"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Effect, Fiber, Layer, ManagedRuntime, Option } from "effect"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import * as SessionToken from "../src/SessionToken.js"
import * as SqlRepository from "../src/SqlRepository.js"
import { createTableSql, Database, type RawDatabase, Store, sqliteClient, TTL_MS, tune } from "./contenders.js"
import { type Figure, median, mib, Payload, quantile, randomKey } from "./harness.js"

/** Sizes of a sweep run. */
export interface SweepOptions {
  readonly expired: number
  readonly live: number
  readonly batchSize: number
  readonly rounds: number
}

const filler = JSON.stringify({ name: "gone", roles: [], cart: [], note: "x".repeat(40) })

const buildTemplate = (filename: string, options: SweepOptions, now: number): Array<string> => {
  const db = new Database(filename)
  tune(db)
  db.exec(createTableSql)
  const insert = db.prepare(
    "INSERT INTO sessions (session_key, user_id, created_at, expires_at, version, payload) VALUES (?, ?, ?, ?, 1, ?)"
  )
  const tokens: Array<string> = []
  const fill = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const expiresAt = now - options.expired + i
      insert.run(randomKey(), i % 3 === 0 ? null : `user-${i % 50_000}`, expiresAt - TTL_MS, expiresAt, filler)
    }
  })
  for (let from = 0; from < options.expired; from += 100_000) fill(from, Math.min(options.expired, from + 100_000))
  const live = db.transaction(() => {
    const payload = JSON.stringify({ name: "live", roles: ["reader"], cart: [], note: "" })
    for (let i = 0; i < options.live; i++) {
      const token = randomBytes(32).toString("base64url")
      tokens.push(token)
      insert.run(SessionToken.keyOf(token), `user-${i}`, now, now + TTL_MS, payload)
    }
  })
  live()
  db.pragma("wal_checkpoint(TRUNCATE)")
  db.close()
  return tokens
}

interface Sample {
  readonly seconds: number
  readonly stallMs: number
  readonly rssGrowthMiB: number
  readonly restoreP99Ms: number
  readonly restores: number
  readonly removed: number
}

type Sweeper = (filename: string, now: number) => Effect.Effect<number, unknown, SessionRepository>

const runOne = async (filename: string, tokens: ReadonlyArray<string>, now: number, sweep: Sweeper) => {
  const runtime = ManagedRuntime.make(
    Layer.provideMerge(
      SessionStore.layer(Store, { schema: Payload, policy: ExpirationPolicy.sliding(TTL_MS) }),
      Layer.provide(SqlRepository.layer({ table: "sessions", migrate: false }), sqliteClient(filename))
    ).pipe(Layer.orDie)
  )
  await runtime.runPromise(Effect.void)
  const latencies: Array<number> = []
  let stop = false
  const restores = Effect.gen(function* () {
    const store = yield* Store
    let i = 0
    while (!stop) {
      const started = performance.now()
      const found = yield* store.restore(tokens[i++ % tokens.length])
      latencies.push(performance.now() - started)
      if (Option.isNone(found)) return yield* Effect.dieMessage("a live session was swept")
      yield* Effect.sleep(1)
    }
  })
  const rssStart = process.memoryUsage().rss
  let rssPeak = rssStart
  let lastTick = performance.now()
  let longestGap = 0
  const sampler = setInterval(() => {
    const tick = performance.now()
    longestGap = Math.max(longestGap, tick - lastTick - 5)
    lastTick = tick
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  }, 5)
  const delay = monitorEventLoopDelay({ resolution: 5 })
  const fiber = runtime.runFork(restores)
  await new Promise((resolve) => setTimeout(resolve, 50))
  delay.enable()
  const started = performance.now()
  longestGap = 0
  lastTick = performance.now()
  const removed = await runtime.runPromise(sweep(filename, now))
  const seconds = (performance.now() - started) / 1000
  await new Promise((resolve) => setTimeout(resolve, 20))
  delay.disable()
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  stop = true
  await runtime.runPromise(Fiber.join(fiber))
  clearInterval(sampler)
  await runtime.dispose()
  return {
    seconds,
    stallMs: Math.max(delay.max / 1e6, longestGap),
    rssGrowthMiB: mib(rssPeak - rssStart),
    restoreP99Ms: quantile(latencies, 0.99),
    restores: latencies.length,
    removed
  } satisfies Sample
}

/** Our sweep: the repository's bounded batches through `sweepOnce`. */
const oursSweep =
  (batchSize: number): Sweeper =>
  () =>
    Effect.flatMap(SessionRepository, (repository) =>
      Effect.map(SessionSweeper.sweepOnce(repository, batchSize), ({ swept }) => swept)
    )

const onRaw =
  (work: (db: RawDatabase, now: number) => number): Sweeper =>
  (filename, now) =>
    Effect.sync(() => {
      const db = new Database(filename)
      tune(db)
      try {
        return work(db, now)
      } finally {
        db.close()
      }
    })

const unbounded = onRaw((db, now) => db.prepare("DELETE FROM sessions WHERE expires_at <= ?").run(now).changes)

const selectThenDelete = onRaw((db, now) => {
  const keys = db.prepare("SELECT session_key FROM sessions WHERE expires_at <= ?").pluck().all(now) as Array<string>
  const remove = db.prepare("DELETE FROM sessions WHERE session_key = ?")
  return db.transaction(() => keys.reduce((n, key) => n + remove.run(key).changes, 0))()
})

/** Our sweep and both baselines, `rounds` times each on a fresh copy, medians reported. */
export const sweepBenchmark = async (options: SweepOptions): Promise<Array<Figure>> => {
  const directory = mkdtempSync(join(tmpdir(), "effect-session-sweep-"))
  try {
    const now = Date.now()
    const template = join(directory, "template.sqlite")
    const tokens = buildTemplate(template, options, now)
    const contenders: ReadonlyArray<readonly [string, Sweeper]> = [
      [`ours, batches of ${options.batchSize}`, oursSweep(options.batchSize)],
      ["one unbounded DELETE", unbounded],
      ["select all expired, delete by key", selectThenDelete]
    ]
    const samples = new Map<string, Array<Sample>>(contenders.map(([name]) => [name, []]))
    for (let round = 0; round < options.rounds; round++) {
      for (const [name, sweep] of contenders) {
        const filename = join(directory, `run-${round}.sqlite`)
        copyFileSync(template, filename)
        const sample = await runOne(filename, tokens, now, sweep)
        if (sample.removed !== options.expired) throw new Error(`${name} removed ${sample.removed} rows`)
        samples.get(name)!.push(sample)
        rmSync(filename, { force: true })
        rmSync(`${filename}-wal`, { force: true })
        rmSync(`${filename}-shm`, { force: true })
      }
    }
    const figures: Array<Figure> = []
    for (const [contender, list] of samples) {
      const pick = (f: (s: Sample) => number) => median(list.map(f))
      figures.push(
        { section: "sweep", operation: "time", contender, value: pick((s) => s.seconds), unit: "s" },
        { section: "sweep", operation: "longest stall", contender, value: pick((s) => s.stallMs), unit: "ms" },
        { section: "sweep", operation: "peak RSS growth", contender, value: pick((s) => s.rssGrowthMiB), unit: "MiB" },
        { section: "sweep", operation: "restore p99", contender, value: pick((s) => s.restoreP99Ms), unit: "ms" },
        { section: "sweep", operation: "restores during", contender, value: pick((s) => s.restores), unit: "" }
      )
    }
    return figures
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}
