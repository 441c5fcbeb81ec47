/**
 * Items 1 and 2: restore, save, touch and create per second through our
 * store, against the raw driver (SQLite) or a raw Map (memory), and against
 * express-session's store API over better-sqlite3-session-store (SQLite).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Contender, memoryStore, ours, peerSqlite, rawMap, rawSqlite, sqliteStore } from "./contenders.js"
import { type Figure, makePayload, opsPerSecond } from "./harness.js"

/** Sizes of an operations run. */
export interface OperationsOptions {
  readonly sessions: number
  readonly operations: number
  readonly rounds: number
  readonly payloadBytes: number
}

type AnyContender = Contender<any>

const measure = async (
  section: string,
  contenders: ReadonlyArray<AnyContender>,
  options: OperationsOptions
): Promise<Array<Figure>> => {
  const payload = makePayload(options.payloadBytes)
  const edited = makePayload(options.payloadBytes, 1)
  const handles = new Map<AnyContender, Array<unknown>>()
  for (const contender of contenders) {
    const created: Array<unknown> = []
    for (let i = 0; i < options.sessions; i++)
      created.push(await contender.create(makePayload(options.payloadBytes, i)))
    handles.set(contender, created)
  }
  const figures: Array<Figure> = []
  const record = (operation: string, results: Map<string, number>) => {
    for (const [contender, value] of results) {
      figures.push({ section, operation, contender, value, unit: "ops/s" })
    }
  }
  const each = (run: (contender: AnyContender, handles: Array<unknown>, count: number) => unknown) =>
    contenders.map(
      (contender) => [contender.name, (count: number) => run(contender, handles.get(contender)!, count)] as const
    ) as any
  const { operations: count, rounds } = options

  record(
    "restore",
    await opsPerSecond(
      each((c, h, n) => c.restore(h, n)),
      count,
      rounds
    )
  )
  record(
    "save",
    await opsPerSecond(
      each((c, h, n) => c.save(h, n, h === handles.get(contenders[0]) ? edited : edited)),
      count,
      rounds
    )
  )
  record(
    "touch",
    await opsPerSecond(
      each((c, h, n) => c.touch(h, n)),
      count,
      rounds
    )
  )
  record(
    "create",
    await opsPerSecond(
      each((c, _h, n) => c.createMany(n, payload)),
      count,
      rounds
    )
  )
  return figures
}

/** Item 1: SQLite files with WAL and synchronous=NORMAL, one per contender. */
export const sqliteOperations = async (options: OperationsOptions): Promise<Array<Figure>> => {
  const directory = mkdtempSync(join(tmpdir(), "effect-session-bench-"))
  const contenders = [
    ours("ours", sqliteStore(join(directory, "ours.sqlite"))),
    ours("ours, tracing off", sqliteStore(join(directory, "ours-untraced.sqlite")), { tracing: false }),
    rawSqlite(join(directory, "raw.sqlite")),
    peerSqlite(join(directory, "peer.sqlite"))
  ]
  try {
    return await measure("sqlite", contenders, options)
  } finally {
    for (const contender of contenders) await contender.close()
    rmSync(directory, { recursive: true, force: true })
  }
}

/** Item 2: the memory repository against a raw Map. */
export const memoryOperations = async (options: OperationsOptions): Promise<Array<Figure>> => {
  const contenders = [
    ours("ours", memoryStore()),
    ours("ours, tracing off", memoryStore(), { tracing: false }),
    rawMap()
  ]
  try {
    return await measure("memory", contenders, options)
  } finally {
    for (const contender of contenders) await contender.close()
  }
}
