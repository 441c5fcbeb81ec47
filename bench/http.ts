/**
 * Item 5: the example app's GET /me with a session, against a minimal express
 * app with express-session over the same SQLite store, both served from this
 * process and loaded by autocannon in a child process.
 */

import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeHttpServer } from "@effect/platform-node"
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import express from "express"
import session from "express-session"
import { appLayer } from "../examples/app/app.js"
import { Database, PeerSqliteStore, TTL_MS, tune } from "./contenders.js"
import { type Figure, median } from "./harness.js"

/** Load of an HTTP run. */
export interface HttpOptions {
  readonly connections: number
  readonly seconds: number
  readonly rounds: number
}

interface Load {
  readonly requests: number
  readonly p99: number
  readonly non2xx: number
}

const autocannon = (url: string, cookie: string, options: HttpOptions): Promise<Load> =>
  new Promise((resolve, reject) => {
    const bin = join(import.meta.dirname, "..", "node_modules", "autocannon", "autocannon.js")
    const args = [
      bin,
      "--json",
      "-c",
      `${options.connections}`,
      "-d",
      `${options.seconds}`,
      "-H",
      `cookie=${cookie}`,
      url
    ]
    execFile(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => {
      if (error) return reject(error)
      const result = JSON.parse(stdout)
      resolve({ requests: result.requests.average, p99: result.latency.p99, non2xx: result.non2xx + result.errors })
    })
  })

const login = async (base: string): Promise<string> => {
  const response = await fetch(`${base}/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: "bench" })
  })
  if (!response.ok) throw new Error(`login answered ${response.status}`)
  const cookie = response.headers.get("set-cookie")
  if (cookie === null) throw new Error("login set no cookie")
  return cookie.split(";")[0]
}

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  )

const startOurs = async (directory: string) => {
  const server = createServer()
  const config = {
    port: 0,
    host: "127.0.0.1",
    database: join(directory, "ours.sqlite"),
    ttl: Duration.millis(TTL_MS),
    sweepInterval: Duration.minutes(5),
    secureCookie: false
  }
  const runtime = ManagedRuntime.make(
    appLayer(config).pipe(Layer.provide(NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" })))
  )
  await runtime.runPromise(Effect.void)
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { base, close: () => runtime.dispose() }
}

const startPeer = async (directory: string) => {
  const db = new Database(join(directory, "peer.sqlite"))
  tune(db)
  const app = express()
  app.use(express.json())
  app.use(
    session({
      secret: "benchmark secret",
      resave: true,
      saveUninitialized: false,
      store: new PeerSqliteStore({ client: db }) as unknown as session.Store,
      cookie: { maxAge: TTL_MS, httpOnly: true, sameSite: "lax" }
    })
  )
  app.post("/login", (req, res) => {
    ;(req.session as unknown as { user: string }).user = req.body.user
    res.json({ user: req.body.user })
  })
  app.get("/me", (req, res) => {
    const user = (req.session as unknown as { user?: string }).user
    if (user === undefined) return void res.status(401).json({ error: "NoSession" })
    res.json({ user, expiresAt: req.session.cookie.expires?.toISOString() ?? null })
  })
  const server = createServer(app)
  const base = await listen(server)
  return {
    base,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      db.close()
    }
  }
}

/** Requests per second and p99 latency of GET /me, medians over `rounds`. */
export const httpBenchmark = async (options: HttpOptions): Promise<Array<Figure>> => {
  const directory = mkdtempSync(join(tmpdir(), "effect-session-http-"))
  const servers = [
    ["ours (examples/app)", await startOurs(directory)],
    ["express + express-session", await startPeer(directory)]
  ] as const
  try {
    const cookies = await Promise.all(servers.map(([, server]) => login(server.base)))
    const loads = new Map<string, Array<Load>>(servers.map(([name]) => [name, []]))
    for (let round = 0; round < options.rounds; round++) {
      for (const [index, [name, server]] of servers.entries()) {
        const load = await autocannon(`${server.base}/me`, cookies[index], options)
        if (load.non2xx > 0) throw new Error(`${name}: ${load.non2xx} failed requests`)
        loads.get(name)!.push(load)
      }
    }
    return [...loads].flatMap(
      ([contender, list]): Array<Figure> => [
        {
          section: "http",
          operation: "requests/s",
          contender,
          value: median(list.map((l) => l.requests)),
          unit: "req/s"
        },
        { section: "http", operation: "p99 latency", contender, value: median(list.map((l) => l.p99)), unit: "ms" }
      ]
    )
  } finally {
    for (const [, server] of servers) await server.close()
    rmSync(directory, { recursive: true, force: true })
  }
}
