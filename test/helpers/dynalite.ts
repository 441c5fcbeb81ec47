/**
 * dynalite, a DynamoDB protocol server, started in this process on
 * 127.0.0.1 with a port the OS picks; and a client pointed at it.
 */

import type { Server } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb"

const require = createRequire(import.meta.url)
const dynalite = require("dynalite") as (options: Record<string, unknown>) => Server

export interface Dynalite {
  readonly endpoint: string
  readonly close: () => Promise<void>
}

/** Starts dynalite with instant table transitions; `close` stops it. */
export const startDynalite = (): Promise<Dynalite> => {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        endpoint: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done, fail) => server.close((error) => (error ? fail(error) : done())))
      })
    })
  })
}

/** Client options for dynalite: loopback endpoint, fake credentials, no SDK-level retries. */
export const clientConfig = (endpoint: string): DynamoDBClientConfig => ({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
  maxAttempts: 1
})

/** A fresh client for dynalite; the caller destroys it. */
export const makeClient = (endpoint: string): DynamoDBClient => new DynamoDBClient(clientConfig(endpoint))
