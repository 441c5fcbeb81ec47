import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as SessionToken from "../src/SessionToken.js"

describe("SessionToken", () => {
  it.effect("100,000 generated tokens are distinct, URL-safe and carry 256 bits", () =>
    Effect.gen(function* () {
      const seen = new Set<string>()

      for (let i = 0; i < 100_000; i++) {
        seen.add(Redacted.value(yield* SessionToken.random.next))
      }

      assert.strictEqual(seen.size, 100_000)
      for (const token of seen) {
        assert.match(token, /^[A-Za-z0-9_-]{43}$/)
      }
      assert.isAtLeast(SessionToken.TOKEN_BYTES * 8, 128)
      assert.strictEqual(Buffer.from([...seen][0], "base64url").length, SessionToken.TOKEN_BYTES)
    })
  )

  it.effect("every character position of the tokens uses the whole alphabet", () =>
    Effect.gen(function* () {
      const positions = Array.from({ length: 42 }, () => new Set<string>())

      for (let i = 0; i < 5_000; i++) {
        const token = Redacted.value(yield* SessionToken.random.next)
        for (let p = 0; p < 42; p++) positions[p].add(token[p])
      }

      for (const used of positions) assert.strictEqual(used.size, 64)
    })
  )

  it("the key is SHA-256 of the token in lower-case hex", () => {
    const token = "dGhpcy1pcy1hLXRlc3QtdG9rZW4tb2YtZW5vdWdoLWxlbmd0aA"

    assert.strictEqual(SessionToken.keyOf(token), createHash("sha256").update(token).digest("hex"))
    assert.strictEqual(SessionToken.keyOf(Redacted.make(token)), SessionToken.keyOf(token))
  })

  it("the handle is neither the key nor the token, and is stable", () => {
    const token = "dGhpcy1pcy1hLXRlc3QtdG9rZW4tb2YtZW5vdWdoLWxlbmd0aA"
    const key = SessionToken.keyOf(token)

    assert.strictEqual(SessionToken.handleOf(key), SessionToken.handleOf(key))
    assert.notInclude(key, SessionToken.handleOf(key))
    assert.notStrictEqual(SessionToken.handleOf(key), SessionToken.handleOf(SessionToken.keyOf(`${token}x`)))
  })

  it("the default generator draws from node:crypto randomBytes", () => {
    const source = readFileSync(new URL("../src/SessionToken.ts", import.meta.url), "utf8")

    assert.match(source, /import \{[^}]*\brandomBytes\b[^}]*\} from "node:crypto"/)
    assert.include(source, "randomBytes(TOKEN_BYTES)")
    assert.notInclude(source, "Math.random")
  })

  it("no module compares a token or key with === : lookups go by key, so no secret is compared in code", () => {
    const files = ["SessionStore.ts", "HttpSession.ts", "SessionToken.ts", "MemoryRepository.ts"]
    for (const file of files) {
      const source = readFileSync(new URL(`../src/${file}`, import.meta.url), "utf8")
      assert.notMatch(source, /(token|key)\w*\s*[!=]==\s*\w*(token|key)/i, file)
    }
  })

  it("isWellFormed accepts generated tokens and refuses anything outside the alphabet or length", () => {
    assert.isTrue(SessionToken.isWellFormed("a".repeat(22)))
    assert.isTrue(SessionToken.isWellFormed("a".repeat(128)))
    assert.isFalse(SessionToken.isWellFormed("a".repeat(21)))
    assert.isFalse(SessionToken.isWellFormed("a".repeat(129)))
    assert.isFalse(SessionToken.isWellFormed(`${"a".repeat(30)}=`))
    assert.isFalse(SessionToken.isWellFormed(`${"a".repeat(30)}\n`))
  })
})
