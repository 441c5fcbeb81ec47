/**
 * The three ways of keeping sessions that the benchmarks compare: our store
 * (SQLite or memory), the same statements on raw better-sqlite3 (or a raw
 * Map), and express-session's store API over better-sqlite3-session-store.
 */

import { createRequire } from "node:module"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Context, Effect, Layer, ManagedRuntime, Option } from "effect"
import session from "express-session"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import * as MemoryRepository from "../src/MemoryRepository.js"
import type { Session } from "../src/Session.js"
import type { SessionRepository } from "../src/SessionRepository.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SqlRepository from "../src/SqlRepository.js"
import { Payload, randomKey } from "./harness.js"

const require = createRequire(import.meta.url)

/** The few better-sqlite3 calls the benchmarks make, typed here: the package ships no types. */
export interface RawStatement<P extends Array<unknown> = Array<unknown>, R = unknown> {
  get(...params: P): R | undefined
  all(...params: P): Array<R>
  run(...params: P): { readonly changes: number }
  pluck(): RawStatement<P, R>
}

/** A better-sqlite3 connection. */
export interface RawDatabase {
  prepare<P extends Array<unknown> = Array<unknown>, R = unknown>(sql: string): RawStatement<P, R>
  pragma(statement: string): unknown
  exec(sql: string): void
  transaction<A extends Array<unknown>, X>(body: (...args: A) => X): (...args: A) => X
  close(): void
}

/** The better-sqlite3 constructor. */
export const Database = require("better-sqlite3") as new (filename: string) => RawDatabase

/** The store under benchmark, provided under its own tag. */
export class Store extends Context.Tag("bench/Store")<Store, SessionStore.SessionStore<Payload>>() {}

/** Session lifetime in every contender. */
export const TTL_MS = 86_400_000

/** WAL and synchronous=NORMAL, the durability every SQLite contender runs with. */
export const tune = (db: RawDatabase): void => {
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
}

/** Our SQLite client on a file, with the same durability settings as the raw contender. */
export const sqliteClient = (filename: string) =>
  Layer.provideMerge(
    Layer.effectDiscard(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`PRAGMA synchronous = NORMAL`)),
    SqliteClient.layer({ filename })
  )

const storeLayer = (repository: Layer.Layer<SessionRepository, unknown>) =>
  Layer.provide(SessionStore.layer(Store, { schema: Payload, policy: ExpirationPolicy.sliding(TTL_MS) }), repository)

/** Our store over SQLite in `filename`, table `sessions`. */
export const sqliteStore = (filename: string) =>
  ManagedRuntime.make(
    storeLayer(Layer.provide(SqlRepository.layer({ table: "sessions" }), sqliteClient(filename))).pipe(Layer.orDie)
  )

/** Our store over the memory repository. */
export const memoryStore = () => ManagedRuntime.make(storeLayer(MemoryRepository.layer).pipe(Layer.orDie))

/** The contract every contender offers the benchmark, keyed by an opaque handle. */
export interface Contender<H> {
  readonly name: string
  readonly create: (payload: Payload) => Promise<H> | H
  readonly restore: (handles: ReadonlyArray<H>, count: number) => Promise<void> | void
  readonly save: (handles: Array<H>, count: number, payload: Payload) => Promise<void> | void
  readonly touch: (handles: Array<H>, count: number) => Promise<number> | number
  readonly createMany: (count: number, payload: Payload) => Promise<void> | void
  readonly close: () => Promise<void> | void
}

/** Our store through a runtime, each batch of operations run as one effect. */
export const ours = (
  name: string,
  runtime: ManagedRuntime.ManagedRuntime<Store, never>,
  options: { readonly tracing?: boolean } = {}
): Contender<Session<Payload>> => {
  const run = <X>(effect: Effect.Effect<X, unknown, Store>) =>
    runtime.runPromise(options.tracing === false ? Effect.withTracerEnabled(effect, false) : effect)
  return {
    name,
    create: (payload) => run(Effect.flatMap(Store, (store) => store.create(payload))),
    restore: (sessions, count) =>
      run(
        Effect.flatMap(Store, (store) =>
          Effect.gen(function* () {
            for (let i = 0; i < count; i++) {
              const found = yield* store.restore(sessions[i % sessions.length].token)
              if (Option.isNone(found)) return yield* Effect.dieMessage("restore missed a live session")
            }
          })
        )
      ),
    save: (sessions, count, payload) =>
      run(
        Effect.flatMap(Store, (store) =>
          Effect.gen(function* () {
            for (let i = 0; i < count; i++) {
              const index = i % sessions.length
              sessions[index] = yield* store.save({ ...sessions[index], payload })
            }
          })
        )
      ),
    touch: (sessions, count) =>
      run(
        Effect.flatMap(Store, (store) =>
          Effect.gen(function* () {
            let written = 0
            for (let i = 0; i < count; i++) {
              const index = i % sessions.length
              const renewed = yield* store.renew(sessions[index])
              if (Option.isSome(renewed)) {
                sessions[index] = renewed.value
                written++
              }
            }
            return written
          })
        )
      ),
    createMany: (count, payload) =>
      run(
        Effect.flatMap(Store, (store) =>
          Effect.gen(function* () {
            for (let i = 0; i < count; i++) yield* store.create(payload)
          })
        )
      ),
    close: () => runtime.dispose()
  }
}

/** The DDL our SQL repository creates on SQLite, repeated for the raw contender. */
export const createTableSql = `CREATE TABLE IF NOT EXISTS sessions (
  session_key TEXT NOT NULL PRIMARY KEY,
  user_id TEXT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NULL,
  version INTEGER NOT NULL,
  payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_expires_at_idx ON sessions (expires_at);`

interface RawRow {
  readonly session_key: string
  readonly user_id: string | null
  readonly created_at: number
  readonly expires_at: number | null
  readonly version: number
  readonly payload: string
}

interface RawHandle {
  readonly key: string
  version: number
  expiresAt: number
}

/** Raw better-sqlite3 prepared statements doing our SQL, plus JSON.parse / JSON.stringify. */
export const rawSqlite = (filename: string): Contender<RawHandle> => {
  const db = new Database(filename)
  tune(db)
  db.exec(createTableSql)
  const select = db.prepare<[string], RawRow>(
    "SELECT session_key, user_id, created_at, expires_at, version, payload FROM sessions WHERE session_key = ?"
  )
  const insert = db.prepare(
    "INSERT INTO sessions (session_key, user_id, created_at, expires_at, version, payload) " +
      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_key) DO NOTHING"
  )
  const update = db.prepare(
    "UPDATE sessions SET payload = ?, expires_at = ?, version = ? " +
      "WHERE session_key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)"
  )
  const extend = db.prepare(
    "UPDATE sessions SET expires_at = ?, version = version + 1 " +
      "WHERE session_key = ? AND expires_at > ? AND expires_at < ?"
  )
  const create = (payload: Payload): RawHandle => {
    const now = Date.now()
    const handle = { key: randomKey(), version: 1, expiresAt: now + TTL_MS }
    insert.run(handle.key, null, now, handle.expiresAt, 1, JSON.stringify(payload))
    return handle
  }
  return {
    name: "raw better-sqlite3",
    create,
    restore: (handles, count) => {
      for (let i = 0; i < count; i++) {
        const row = select.get(handles[i % handles.length].key)
        if (row === undefined || (row.expires_at !== null && Date.now() >= row.expires_at)) {
          throw new Error("raw restore missed a live session")
        }
        JSON.parse(row.payload)
      }
    },
    save: (handles, count, payload) => {
      for (let i = 0; i < count; i++) {
        const handle = handles[i % handles.length]
        const now = Date.now()
        const changes = update.run(
          JSON.stringify(payload),
          handle.expiresAt,
          handle.version + 1,
          handle.key,
          handle.version,
          now
        )
        if (changes.changes === 1) handle.version++
      }
    },
    touch: (handles, count) => {
      let written = 0
      for (let i = 0; i < count; i++) {
        const handle = handles[i % handles.length]
        const now = Date.now()
        const next = now + TTL_MS
        if (next > handle.expiresAt && extend.run(next, handle.key, now, next).changes === 1) {
          handle.expiresAt = next
          handle.version++
          written++
        }
      }
      return written
    },
    createMany: (count, payload) => {
      for (let i = 0; i < count; i++) create(payload)
    },
    close: () => db.close()
  }
}

/** A raw Map doing the same work as the memory repository's hot path. */
export const rawMap = (): Contender<RawHandle> => {
  const records = new Map<string, RawRow>()
  const create = (payload: Payload): RawHandle => {
    const now = Date.now()
    const handle = { key: randomKey(), version: 1, expiresAt: now + TTL_MS }
    records.set(handle.key, {
      session_key: handle.key,
      user_id: null,
      created_at: now,
      expires_at: handle.expiresAt,
      version: 1,
      payload: JSON.stringify(payload)
    })
    return handle
  }
  return {
    name: "raw Map",
    create,
    restore: (handles, count) => {
      for (let i = 0; i < count; i++) {
        const row = records.get(handles[i % handles.length].key)
        if (row === undefined || (row.expires_at !== null && Date.now() >= row.expires_at)) {
          throw new Error("raw restore missed a live session")
        }
        JSON.parse(row.payload)
      }
    },
    save: (handles, count, payload) => {
      for (let i = 0; i < count; i++) {
        const handle = handles[i % handles.length]
        const row = records.get(handle.key)
        if (row !== undefined && row.version === handle.version) {
          records.set(handle.key, { ...row, payload: JSON.stringify(payload), version: ++handle.version })
        }
      }
    },
    touch: (handles, count) => {
      let written = 0
      for (let i = 0; i < count; i++) {
        const handle = handles[i % handles.length]
        const row = records.get(handle.key)
        const next = Date.now() + TTL_MS
        if (row !== undefined && row.expires_at !== null && next > row.expires_at) {
          records.set(handle.key, { ...row, expires_at: next, version: ++handle.version })
          handle.expiresAt = next
          written++
        }
      }
      return written
    },
    createMany: (count, payload) => {
      for (let i = 0; i < count; i++) create(payload)
    },
    close: () => records.clear()
  }
}

interface PeerStore {
  get(sid: string, callback: (error: unknown, session?: unknown) => void): void
  set(sid: string, session: unknown, callback: (error: unknown) => void): void
  touch(sid: string, session: unknown, callback: (error: unknown) => void): void
}

const makeSqliteStore = require("better-sqlite3-session-store") as (
  module: typeof session
) => new (options: {
  client: RawDatabase
}) => PeerStore & { startInterval(): void }

/** An express-session session object: the payload beside its cookie. */
export const peerSession = (payload: Payload) => ({
  cookie: { originalMaxAge: TTL_MS, maxAge: TTL_MS, expires: new Date(Date.now() + TTL_MS), httpOnly: true, path: "/" },
  ...payload
})

/** The peer store class, without its unstoppable cleanup interval. */
export const PeerSqliteStore = (() => {
  const Base = makeSqliteStore(session)
  return class extends Base {
    override startInterval(): void {}
  }
})()

/** express-session's store API over better-sqlite3-session-store, same payload, same durability. */
export const peerSqlite = (filename: string): Contender<string> => {
  const db = new Database(filename)
  tune(db)
  const store = new PeerSqliteStore({ client: db })
  const fail = (error: unknown) => {
    if (error) throw error
  }
  const create = (payload: Payload): string => {
    const sid = randomKey()
    store.set(sid, peerSession(payload), fail)
    return sid
  }
  return {
    name: "express-session peer",
    create,
    restore: (sids, count) => {
      for (let i = 0; i < count; i++) {
        store.get(sids[i % sids.length], (error, found) => {
          if (error || !found) throw new Error("peer restore missed a live session")
        })
      }
    },
    save: (sids, count, payload) => {
      const value = peerSession(payload)
      for (let i = 0; i < count; i++) store.set(sids[i % sids.length], value, fail)
    },
    touch: (sids, count) => {
      for (let i = 0; i < count; i++) {
        store.touch(sids[i % sids.length], { cookie: { expires: new Date(Date.now() + TTL_MS) } }, fail)
      }
      return count
    },
    createMany: (count, payload) => {
      for (let i = 0; i < count; i++) create(payload)
    },
    close: () => db.close()
  }
}
