/** @internal */
import { Either, ParseResult, Schema } from "effect"
import { PayloadTooLarge, SessionDecodeError, SessionEncodeError } from "../SessionError.js"

/** @internal */
export type ExcessPropertyPolicy = "ignore" | "error" | "preserve"

class NonFiniteNumber extends Error {}

const rejectNonFinite = (_key: string, value: unknown) => {
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new NonFiniteNumber(`${value} has no JSON form`)
  }
  return value
}

const thrownReason = (cause: unknown): string =>
  cause instanceof RangeError ? "nested too deeply for the schema" : "the schema threw"

/**
 * Where a stored payload stops matching the schema, without the stored values:
 * the reason ends up in log lines, and payloads may hold personal data.
 */
const mismatchAt = (error: ParseResult.ParseError): string => {
  const paths = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
    issue.path.length === 0 ? "the top level" : issue.path.map(String).join(".")
  )
  return `stored payload does not match the schema at ${[...new Set(paths)].join(", ")}`
}

/** @internal */
export interface PayloadCodec<A> {
  readonly encode: (payload: A) => Either.Either<string, PayloadTooLarge | SessionEncodeError>
  readonly decode: (json: string, handle: string) => Either.Either<A, SessionDecodeError>
}

/**
 * Schema encode, then JSON text, bounded in UTF-8 bytes; decode is the reverse.
 *
 * @internal
 */
export const makeCodec = <A, I>(
  schema: Schema.Schema<A, I, never>,
  maxBytes: number,
  onExcessProperty: ExcessPropertyPolicy
): PayloadCodec<A> => {
  const options = { onExcessProperty, errors: "first" } as const
  const encodeSchema = Schema.encodeEither(schema, options)
  const decodeSchema = Schema.decodeUnknownEither(schema, options)

  const encode = (payload: A): Either.Either<string, PayloadTooLarge | SessionEncodeError> => {
    let encoded: ReturnType<typeof encodeSchema>
    try {
      encoded = encodeSchema(payload)
    } catch (cause) {
      return Either.left(new SessionEncodeError({ reason: thrownReason(cause), cause }))
    }
    if (Either.isLeft(encoded)) {
      const reason = ParseResult.TreeFormatter.formatErrorSync(encoded.left)
      return Either.left(new SessionEncodeError({ reason, cause: encoded.left }))
    }
    let json: string | undefined
    try {
      json = JSON.stringify(encoded.right, rejectNonFinite)
    } catch (cause) {
      const reason = cause instanceof NonFiniteNumber ? cause.message : "not serialisable as JSON"
      return Either.left(new SessionEncodeError({ reason, cause }))
    }
    if (json === undefined) {
      return Either.left(new SessionEncodeError({ reason: "encoded to nothing" }))
    }
    const size = json.length <= maxBytes / 3 ? json.length : Buffer.byteLength(json, "utf8")
    return size > maxBytes ? Either.left(new PayloadTooLarge({ size, limit: maxBytes })) : Either.right(json)
  }

  const decode = (json: string, handle: string): Either.Either<A, SessionDecodeError> => {
    let parsed: unknown
    try {
      parsed = JSON.parse(json)
    } catch (cause) {
      return Either.left(new SessionDecodeError({ handle, reason: "stored payload is not JSON", cause }))
    }
    let decoded: ReturnType<typeof decodeSchema>
    try {
      decoded = decodeSchema(parsed)
    } catch (cause) {
      return Either.left(new SessionDecodeError({ handle, reason: thrownReason(cause), cause }))
    }
    return Either.mapLeft(
      decoded,
      (error) =>
        new SessionDecodeError({
          handle,
          reason: mismatchAt(error),
          cause: error
        })
    )
  }

  return { encode, decode }
}
