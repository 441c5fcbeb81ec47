/**
 * Redis test setup: the server URL from the environment, a prefix no other
 * run uses, a repository that clears its prefix when its scope closes, and a
 * private redis-server child process for tests that stop the server.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { Effect, Layer, type Scope } from "effect"
import * as RedisRepository from "../../src/RedisRepository.js"
import { SessionRepository } from "../../src/SessionRepository.js"

export const redisUrl = process.env.EFFECT_SESSION_REDIS_URL

export const skipRedis = redisUrl ? undefined : "EFFECT_SESSION_REDIS_URL is not set"

const run = `${process.pid.toString(36)}-${Math.floor(Math.random() * 36 ** 4).toString(36)}`
let prefixes = 0

/** A key prefix unique to this process and call. */
export const uniquePrefix = (label: string): string => `es-test:${run}:${label}:${++prefixes}:`

/** A repository with its own connection and prefix; the prefix is cleared before the connection quits. */
export const scopedRepository = (
  options: RedisRepository.ConnectionOptions = {}
): Layer.Layer<SessionRepository, unknown> =>
  Layer.scoped(
    SessionRepository,
    Effect.gen(function* () {
      const repository = yield* RedisRepository.make({ url: redisUrl, prefix: uniquePrefix("c"), ...options })
      yield* Effect.addFinalizer(() => Effect.ignore(repository.clear))
      return repository
    })
  )

/** A TCP port that was free a moment ago. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export interface PrivateServer {
  readonly port: number
  readonly url: string
  readonly start: Effect.Effect<void>
  readonly stop: Effect.Effect<void>
}

const launch = (port: number): Effect.Effect<ChildProcess> =>
  Effect.async<ChildProcess>((resume) => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let output = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("Ready to accept connections")) {
        child.stdout?.removeAllListeners("data")
        child.stdout?.resume()
        resume(Effect.succeed(child))
      }
    })
    child.on("exit", (code) => resume(Effect.dieMessage(`redis-server exited early with ${code}: ${output}`)))
  })

const halt = (child: ChildProcess): Effect.Effect<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Effect.void
    : Effect.async<void>((resume) => {
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGTERM")
      })

/** A redis-server of the test's own on a free port, stopped for good when the scope closes. */
export const privateServer: Effect.Effect<PrivateServer, never, Scope.Scope> = Effect.gen(function* () {
  const port = yield* freePort
  let child: ChildProcess | undefined
  const start = Effect.flatMap(launch(port), (started) => Effect.sync(() => void (child = started)))
  const stop = Effect.suspend(() => (child === undefined ? Effect.void : halt(child)))
  yield* Effect.acquireRelease(start, () => stop)
  return { port, url: `redis://127.0.0.1:${port}`, start, stop }
})
