import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Logger, Option, Queue, Redacted, Schedule, Scope } from "effect"
import { Redis } from "ioredis"
import { vi } from "vitest"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import * as RedisRepository from "../src/RedisRepository.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import * as SessionToken from "../src/SessionToken.js"
import { advance, atT0, makeStore, payload, T0 } from "./conformance/fixtures.js"
import { conformance } from "./conformance/suite.js"
import { runExitFixture } from "./helpers/child.js"
import * as Logs from "./helpers/logs.js"
import { privateServer, redisUrl, scopedRepository, skipRedis, uniquePrefix } from "./helpers/redis.js"

const MINUTE = 60_000

conformance({
  name: "redis",
  skip: skipRedis,
  backend: Layer.empty,
  repository: () => scopedRepository(),
  timeout: 30_000
})

/** A client of the test's own, quit when the scope closes. */
const probe = (url = redisUrl ?? "") =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.quit().catch(() => "closed"))
  )

/** A repository over a probe client, its prefix and the client, cleared when the scope closes. */
const repositoryWithProbe = Effect.gen(function* () {
  const client = yield* probe()
  const prefix = uniquePrefix("p")
  const repository = yield* RedisRepository.fromClient(client, { prefix })
  yield* Effect.addFinalizer(() => Effect.ignore(repository.clear))
  return { client, prefix, repository }
})

const countKeys = (client: Redis, pattern: string) =>
  Effect.promise(async () => {
    let cursor = "0"
    let count = 0
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1_000)
      count += keys.length
      cursor = next
    } while (cursor !== "0")
    return count
  })

describe.skipIf(skipRedis !== undefined)("RedisRepository on the local server", () => {
  it.scoped("a 10-minute absolute session gets a PTTL of 599,000 to 600,000 ms however far TestClock is", () =>
    Effect.gen(function* () {
      const { client, prefix, repository } = yield* repositoryWithProbe
      yield* atT0()
      const store = yield* makeStore(ExpirationPolicy.absolute("10 minutes")).pipe(
        Effect.provideService(SessionRepository, repository)
      )

      const session = yield* store.create(payload(), { userId: "u1" })
      const pttl = yield* Effect.promise(() => client.pttl(RedisRepository.recordKey(session.key, prefix)))
      const hash = yield* Effect.promise(() => client.hgetall(RedisRepository.recordKey(session.key, prefix)))

      assert.isAtLeast(pttl, 599_000)
      assert.isAtMost(pttl, 600_000)
      assert.strictEqual(hash.expires, String(T0 + 10 * MINUTE))
      assert.strictEqual(hash.created, String(T0))
      yield* atT0(10 * MINUTE - 1_000)
      assert.isTrue(Option.isSome(yield* store.restore(session.token)))
      yield* atT0(10 * MINUTE)
      assert.isTrue(Option.isNone(yield* store.restore(session.token)))
      const stored = Option.getOrThrow(yield* repository.get(session.key))
      assert.strictEqual(stored.expiresAt, T0 + 10 * MINUTE)
    })
  )

  it.scoped("a save 8 minutes in sets PTTL to the 2 minutes left; a record without expiry has none", () =>
    Effect.gen(function* () {
      const { client, prefix, repository } = yield* repositoryWithProbe
      yield* atT0()
      const store = yield* makeStore(ExpirationPolicy.absolute("10 minutes")).pipe(
        Effect.provideService(SessionRepository, repository)
      )
      const session = yield* store.create(payload())
      yield* advance(8 * MINUTE)

      yield* store.save({ ...session, payload: payload({ n: 2 }) })
      const key = SessionToken.keyOf("a-record-that-never-expires-xxxxxxxx")
      yield* repository.insert({ key, userId: "u1", createdAt: T0, expiresAt: null, version: 1, payload: "{}" })

      const saved = yield* Effect.promise(() => client.pttl(RedisRepository.recordKey(session.key, prefix)))
      assert.isAtLeast(saved, 119_000)
      assert.isAtMost(saved, 120_000)
      assert.strictEqual(yield* Effect.promise(() => client.pttl(RedisRepository.recordKey(key, prefix))), -1)
      assert.isNull(yield* Effect.promise(() => client.zscore(RedisRepository.expiryIndexKey(prefix), `${key}:u1`)))
    })
  )

  it.scoped("expired and vanished members leave the user set on read and on sweep", () =>
    Effect.gen(function* () {
      const { client, prefix, repository } = yield* repositoryWithProbe
      yield* atT0()
      const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(
        Effect.provideService(SessionRepository, repository)
      )
      const scard = Effect.promise(() => client.scard(RedisRepository.userSetKey("u1", prefix)))
      const zcard = Effect.promise(() => client.zcard(RedisRepository.expiryIndexKey(prefix)))
      const doomed = yield* Effect.all([
        store.create(payload(), { userId: "u1" }),
        store.create(payload(), { userId: "u1" })
      ])
      const vanished = yield* store.create(payload(), { userId: "u1" })
      yield* advance(5 * MINUTE)
      const live = yield* store.create(payload(), { userId: "u1" })
      yield* Effect.promise(() => client.del(RedisRepository.recordKey(vanished.key, prefix)))

      yield* advance(6 * MINUTE)
      const listed = yield* store.listByUser("u1")
      const afterList = yield* scard
      const swept = yield* SessionSweeper.sweepOnce(repository, 100)

      assert.deepStrictEqual(
        listed.map((info) => info.handle),
        [live.handle]
      )
      assert.strictEqual(afterList, 1)
      assert.strictEqual(swept.swept, 3)
      assert.strictEqual(yield* scard, 1)
      assert.strictEqual(yield* zcard, 1)
      for (const session of doomed) {
        assert.strictEqual(
          yield* Effect.promise(() => client.exists(RedisRepository.recordKey(session.key, prefix))),
          0
        )
      }
      assert.strictEqual(yield* store.deleteByUser("u1"), 1)
      assert.strictEqual(yield* scard, 0)
      assert.strictEqual(yield* countKeys(client, `${prefix}*`), 0)
    })
  )

  it.scoped(
    "over 1,000 create/expire cycles the user set and the expiry index stay bounded",
    () =>
      Effect.gen(function* () {
        const { client, prefix, repository } = yield* repositoryWithProbe
        yield* atT0()
        const store = yield* makeStore(ExpirationPolicy.absolute("1 minute")).pipe(
          Effect.provideService(SessionRepository, repository)
        )
        const scard = Effect.promise(() => client.scard(RedisRepository.userSetKey("u1", prefix)))
        const zcard = Effect.promise(() => client.zcard(RedisRepository.expiryIndexKey(prefix)))
        let largestSet = 0
        let largestIndex = 0
        let swept = 0

        for (let cycle = 1; cycle <= 1_000; cycle++) {
          yield* store.create(payload(), { userId: "u1" })
          yield* advance(2 * MINUTE)
          if (cycle % 100 === 0) {
            largestSet = Math.max(largestSet, yield* scard)
            largestIndex = Math.max(largestIndex, yield* zcard)
            swept += (yield* SessionSweeper.sweepOnce(repository, 30)).swept
          }
        }

        assert.strictEqual(swept, 1_000)
        assert.strictEqual(largestSet, 100)
        assert.strictEqual(largestIndex, 100)
        assert.strictEqual(yield* scard, 0)
        assert.strictEqual(yield* zcard, 0)
        assert.strictEqual(yield* countKeys(client, `${prefix}*`), 0)
      }),
    60_000
  )

  it.scoped(
    "truncate of one prefix spares another prefix and unrelated keys",
    () =>
      Effect.gen(function* () {
        const client = yield* probe()
        const prefixA = uniquePrefix("a")
        const prefixB = uniquePrefix("b")
        const repositoryA = yield* RedisRepository.fromClient(client, { prefix: prefixA })
        const repositoryB = yield* RedisRepository.fromClient(client, { prefix: prefixB })
        yield* Effect.addFinalizer(() => Effect.ignore(repositoryB.clear))
        const unrelated = [`${prefixA}config`, `${prefixA.slice(0, -1)}-neighbour`, `${prefixB}x`]
        yield* Effect.addFinalizer(() => Effect.promise(() => client.del(...unrelated)))
        yield* Effect.promise(() => client.mset(...unrelated.flatMap((key) => [key, "keep"])))
        yield* atT0()
        const storeA = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(
          Effect.provideService(SessionRepository, repositoryA)
        )
        const storeB = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(
          Effect.provideService(SessionRepository, repositoryB)
        )
        for (let i = 0; i < 1_500; i++) yield* storeA.create(payload(), { userId: `u${i % 50}` })
        const kept = yield* storeB.create(payload(), { userId: "u1" })

        yield* storeA.truncate

        assert.strictEqual(yield* countKeys(client, `${prefixA}*`), 1)
        assert.strictEqual(yield* Effect.promise(() => client.get(`${prefixA}config`)), "keep")
        assert.strictEqual(yield* Effect.promise(() => client.get(`${prefixA.slice(0, -1)}-neighbour`)), "keep")
        assert.strictEqual(yield* Effect.promise(() => client.get(`${prefixB}x`)), "keep")
        assert.isTrue(Option.isSome(yield* storeB.restore(kept.token)))
        assert.strictEqual((yield* storeB.listByUser("u1")).length, 1)
      }),
    60_000
  )

  it.scoped("stored data and keys hold no token", () =>
    Effect.gen(function* () {
      const { client, prefix, repository } = yield* repositoryWithProbe
      yield* atT0()
      const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(
        Effect.provideService(SessionRepository, repository)
      )
      const session = yield* store.create(payload(), { userId: "u1" })
      const token = Redacted.value(session.token)

      const dump = yield* Effect.promise(async () => {
        const keys = await client.keys(`${prefix}*`)
        const values = await Promise.all(
          keys.map(async (key) => {
            const type = await client.type(key)
            if (type === "hash") return JSON.stringify(await client.hgetall(key))
            if (type === "set") return JSON.stringify(await client.smembers(key))
            return JSON.stringify(await client.zrange(key, 0, -1))
          })
        )
        return keys.join(" ") + values.join(" ")
      })

      assert.include(dump, session.key)
      assert.notInclude(dump, token)
    })
  )

  it.effect("impossible options are SessionConfigError", () =>
    Effect.gen(function* () {
      const client = new Redis({ lazyConnect: true, keyPrefix: "app:" })
      const plain = new Redis({ lazyConnect: true })

      const results = [
        yield* Effect.either(RedisRepository.fromClient(client)),
        yield* Effect.either(RedisRepository.fromClient(plain, { prefix: "" })),
        yield* Effect.either(RedisRepository.fromClient(plain, { expiryMarginMillis: -1 })),
        yield* Effect.either(Effect.scoped(RedisRepository.make({ redis: { keyPrefix: "app:" } })))
      ]

      for (const result of results) {
        assert.isTrue(Either.isLeft(result) && result.left._tag === "SessionConfigError")
      }
      client.disconnect()
      plain.disconnect()
    })
  )
})

describe.skipIf(skipRedis !== undefined)("RedisRepository connection lifecycle", () => {
  it.live("closing the layer's scope quits its connection", () =>
    Effect.gen(function* () {
      const client = yield* probe()
      const name = `es-test-${process.pid}-${Date.now()}`
      const names = Effect.promise(async () => String(await client.call("CLIENT", "LIST")))
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(RedisRepository.layer({ url: redisUrl, redis: { connectionName: name } }), scope)

      const open = yield* names
      yield* Scope.close(scope, Exit.void)
      const closed = yield* names

      assert.include(open, `name=${name}`)
      assert.notInclude(closed, `name=${name}`)
    }).pipe(Effect.scoped)
  )

  it.live("a layer built while Redis is down fails with StoreUnavailable", () =>
    Effect.gen(function* () {
      const server = yield* privateServer
      yield* server.stop

      const exit = yield* Effect.exit(Effect.scoped(RedisRepository.make({ url: server.url })))

      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.strictEqual(error?._tag, "StoreUnavailable")
      assert.strictEqual(error?._tag === "StoreUnavailable" && error.operation, "connect")
    }).pipe(Effect.scoped)
  )

  const runFixture = (...args: Array<string>) => runExitFixture("redis-exit.ts", ...args)

  it("a process that builds the layers, saves, closes the scope and returns exits by itself", async () => {
    const run = await runFixture()

    assert.strictEqual(run.code, 0, run.output)
    assert.isAbove(run.closedAt, 0, run.output)
    assert.isBelow(run.exitedAfter, 1_000)
    assert.include(run.output, "handles after close: []")
  })

  it("a process whose layer failed to connect exits by itself", async () => {
    const run = await runFixture("redis://127.0.0.1:1")

    assert.strictEqual(run.code, 0, run.output)
    assert.include(run.output, "build failed: StoreUnavailable connect")
    assert.isBelow(run.exitedAfter, 1_000)
  })
})

describe.skipIf(skipRedis !== undefined)("RedisRepository against a server that goes away", () => {
  it.live(
    "calls fail fast with StoreUnavailable, sweeps fail and are counted, and all recovers on restart",
    () =>
      Effect.gen(function* () {
        const consoleError = vi.spyOn(console, "error")
        const server = yield* privateServer
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          SessionSweeper.layer({ interval: "20 millis", jitter: 0 }).pipe(
            Layer.provideMerge(
              RedisRepository.layer({ url: server.url, prefix: "away:", redis: { retryStrategy: () => 50 } })
            )
          ),
          scope
        )
        const sweeper = yield* Effect.provide(SessionSweeper.SessionSweeper, context)
        const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(Effect.provide(context))
        const before = yield* store.create(payload(), { userId: "u1" })
        const reports = yield* sweeper.reports

        yield* server.stop
        const started = performance.now()
        const failures = yield* Effect.all(
          [
            Effect.flip(store.restore(before.token)),
            Effect.flip(store.create(payload())),
            Effect.flip(store.save(before)),
            Effect.flip(store.deleteByUser("u1")),
            Effect.flip(store.truncate)
          ],
          { concurrency: "unbounded" }
        )
        const elapsed = performance.now() - started
        let report = yield* Queue.take(reports)
        while (report._tag !== "Failed") report = yield* Queue.take(reports)
        const failedRuns = (yield* sweeper.stats).failures

        for (const error of failures) {
          assert.strictEqual(error._tag, "StoreUnavailable")
          assert.strictEqual(error._tag === "StoreUnavailable" && error.backend, "redis")
        }
        assert.isBelow(elapsed, 1_000)
        assert.strictEqual(report.error.cause instanceof Object && (report.error.cause as any)._tag, "StoreUnavailable")
        assert.isAtLeast(failedRuns, 1)

        yield* server.start
        const after = yield* store
          .create(payload(), { userId: "u1" })
          .pipe(Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") }))
        while (report._tag !== "Swept") report = yield* Queue.take(reports)

        assert.isTrue(Option.isSome(yield* store.restore(after.token)))
        assert.isTrue(Option.isNone(yield* store.restore(before.token)))
        assert.strictEqual((yield* store.listByUser("u1")).length, 1)
        yield* store.truncate
        yield* Scope.close(scope, Exit.void)
        const logs = yield* Logs.CapturedLogs.entries
        assert.isFalse(consoleError.mock.calls.some((args) => String(args[0]).includes("ioredis")))
        consoleError.mockRestore()
        assert.isTrue(logs.some((entry) => entry.level === "WARN" && entry.text.includes("redis connection lost")))
        assert.isTrue(logs.some((entry) => entry.level === "INFO" && entry.text.includes("redis connection restored")))
        assert.isTrue(logs.some((entry) => entry.level === "WARN" && entry.text.includes("sweep failed")))
      }).pipe(Effect.scoped, Effect.provide(Layer.merge(Logs.layer, Logger.remove(Logger.defaultLogger)))),
    30_000
  )
})
