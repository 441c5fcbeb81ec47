/**
 * Tokens, keys and handles.
 *
 * - token: the bearer secret in the cookie, 256 random bits in base64url.
 * - key: SHA-256 of the token in hex; the only thing a repository stores.
 * - handle: a short, non-secret id derived from the key, for "active devices" lists.
 *
 * @since 0.1.0
 */

import { hash, randomBytes } from "node:crypto"
import { Context, Effect, Layer, Redacted } from "effect"

/**
 * Bytes of randomness in a token drawn by the default generator.
 *
 * @since 0.1.0
 */
export const TOKEN_BYTES = 32

const tokenPattern = /^[A-Za-z0-9_-]{22,128}$/

/**
 * Draws new session tokens. Replace it in tests to force a clash.
 *
 * @since 0.1.0
 */
export class TokenGenerator extends Context.Tag("effect-session/SessionToken/TokenGenerator")<
  TokenGenerator,
  { readonly next: Effect.Effect<Redacted.Redacted<string>> }
>() {}

/**
 * The default generator: 256 bits from `crypto.randomBytes`, base64url encoded.
 *
 * @since 0.1.0
 */
export const random: TokenGenerator["Type"] = {
  next: Effect.sync(() => Redacted.make(randomBytes(TOKEN_BYTES).toString("base64url")))
}

/**
 * A layer providing the default cryptographic generator.
 *
 * @since 0.1.0
 */
export const layerRandom: Layer.Layer<TokenGenerator> = Layer.succeed(TokenGenerator, random)

/**
 * A generator that returns the given tokens in order, then random ones.
 *
 * @since 0.1.0
 */
export const layerSequence = (tokens: ReadonlyArray<string>): Layer.Layer<TokenGenerator> =>
  Layer.sync(TokenGenerator, () => {
    let index = 0
    return {
      next: Effect.suspend(() => (index < tokens.length ? Effect.succeed(Redacted.make(tokens[index++])) : random.next))
    }
  })

/**
 * Whether a string has the shape of a token: URL-safe alphabet, 22 to 128 characters.
 * Anything else is refused before it is hashed or sent to a backend.
 *
 * @since 0.1.0
 */
export const isWellFormed = (token: string): boolean => tokenPattern.test(token)

/**
 * The repository key of a token: SHA-256, lower-case hex.
 *
 * @since 0.1.0
 */
export const keyOf = (token: Redacted.Redacted<string> | string): string =>
  hash("sha256", typeof token === "string" ? token : Redacted.value(token), "hex")

/**
 * The public handle of a key: 96 bits of a second hash, base64url. Knowing it
 * reveals nothing about the token or the key.
 *
 * @since 0.1.0
 */
export const handleOf = (key: string): string =>
  hash("sha256", `effect-session/handle:${key}`, "base64url").slice(0, 16)
