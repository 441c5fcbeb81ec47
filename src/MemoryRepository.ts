/**
 * A repository in process memory: for tests and single-process apps. Records
 * live in a Map, a per-user index and a min-heap on expiry, so a sweep visits
 * only expired records.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import { isExpiredAt } from "./Session.js"
import { type SessionRecord, SessionRepository, type SessionRepositoryShape } from "./SessionRepository.js"

interface DueEntry {
  readonly expiresAt: number
  readonly key: string
}

class DueHeap {
  private readonly items: Array<DueEntry> = []

  get size(): number {
    return this.items.length
  }

  peek(): DueEntry | undefined {
    return this.items[0]
  }

  push(entry: DueEntry): void {
    const items = this.items
    items.push(entry)
    let index = items.length - 1
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (items[parent].expiresAt <= entry.expiresAt) break
      items[index] = items[parent]
      index = parent
    }
    items[index] = entry
  }

  pop(): DueEntry | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    let index = 0
    for (;;) {
      const left = 2 * index + 1
      if (left >= items.length) break
      const right = left + 1
      const child = right < items.length && items[right].expiresAt < items[left].expiresAt ? right : left
      if (items[child].expiresAt >= last.expiresAt) break
      items[index] = items[child]
      index = child
    }
    items[index] = last
    return top
  }

  clear(): void {
    this.items.length = 0
  }
}

/**
 * Builds an empty memory repository.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<SessionRepositoryShape> = Effect.sync(() => {
  const records = new Map<string, SessionRecord>()
  const byUser = new Map<string, Set<string>>()
  const due = new DueHeap()

  const isLive = (record: SessionRecord, now: number) => !isExpiredAt(record.expiresAt, now)

  const index = (record: SessionRecord) => {
    if (record.expiresAt !== null) {
      due.push({ expiresAt: record.expiresAt, key: record.key })
    }
    if (record.userId !== null) {
      const keys = byUser.get(record.userId)
      if (keys) keys.add(record.key)
      else byUser.set(record.userId, new Set([record.key]))
    }
  }

  const drop = (record: SessionRecord) => {
    records.delete(record.key)
    if (record.userId === null) return
    const keys = byUser.get(record.userId)
    keys?.delete(record.key)
    if (keys?.size === 0) byUser.delete(record.userId)
  }

  const write = (record: SessionRecord, previous: SessionRecord) => {
    records.set(record.key, record)
    if (record.expiresAt !== null && record.expiresAt !== previous.expiresAt) {
      due.push({ expiresAt: record.expiresAt, key: record.key })
    }
  }

  const userRecords = (userId: string): Array<SessionRecord> => {
    const keys = byUser.get(userId)
    const found: Array<SessionRecord> = []
    if (keys === undefined) return found
    for (const key of keys) {
      const record = records.get(key)
      if (record !== undefined) found.push(record)
    }
    return found
  }

  return SessionRepository.of({
    backend: "memory",

    get: (key) => Effect.sync(() => Option.fromNullable(records.get(key))),

    insert: (record) =>
      Effect.sync(() => {
        if (records.has(record.key)) return false
        records.set(record.key, record)
        index(record)
        return true
      }),

    update: (record, expectedVersion, now) =>
      Effect.sync(() => {
        const stored = records.get(record.key)
        if (stored === undefined || stored.version !== expectedVersion || !isLive(stored, now)) {
          return false
        }
        write({ ...record, userId: stored.userId, createdAt: stored.createdAt }, stored)
        return true
      }),

    extend: (key, expiresAt, now) =>
      Effect.sync(() => {
        const stored = records.get(key)
        if (stored === undefined || !isLive(stored, now)) return false
        if (stored.expiresAt === null || stored.expiresAt >= expiresAt) return false
        write({ ...stored, expiresAt, version: stored.version + 1 }, stored)
        return true
      }),

    remove: (key, expectedVersion) =>
      Effect.sync(() => {
        const stored = records.get(key)
        if (stored === undefined) return false
        if (expectedVersion !== undefined && stored.version !== expectedVersion) return false
        drop(stored)
        return true
      }),

    listByUser: (userId, now) =>
      Effect.sync(() =>
        userRecords(userId)
          .filter((record) => isLive(record, now))
          .map(({ payload: _payload, ...metadata }) => metadata)
      ),

    removeByUser: (userId, now) =>
      Effect.sync(() => {
        let live = 0
        for (const record of userRecords(userId)) {
          if (isLive(record, now)) live++
          drop(record)
        }
        byUser.delete(userId)
        return live
      }),

    removeExpired: (now, limit) =>
      Effect.sync(() => {
        let removed = 0
        while (removed < limit) {
          const next = due.peek()
          if (next === undefined || next.expiresAt > now) break
          due.pop()
          const stored = records.get(next.key)
          if (stored !== undefined && stored.expiresAt === next.expiresAt) {
            drop(stored)
            removed++
          }
        }
        return removed
      }),

    clear: Effect.sync(() => {
      records.clear()
      byUser.clear()
      due.clear()
    })
  })
})

/**
 * A memory repository layer. Each build starts empty; share one build to share the data.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<SessionRepository> = Layer.effect(SessionRepository, make)
