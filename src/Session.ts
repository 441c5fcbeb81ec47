/**
 * The session model: what the store hands to an application.
 *
 * @since 0.1.0
 */
import { Either, Option, type Redacted, Schema } from "effect"
import { InvalidUserId } from "./SessionError.js"

/**
 * The longest user id accepted, in UTF-16 code units.
 *
 * @since 0.1.0
 */
export const USER_ID_MAX_LENGTH = 255

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * A user id: non-blank, no surrounding white space, no control characters (C0,
 * DEL or C1), well-formed Unicode, at most 255 characters. Ids compare exactly,
 * so every backend stores the same text it was given.
 *
 * @since 0.1.0
 */
export const UserId = Schema.String.pipe(
  Schema.nonEmptyString({ message: () => "must not be empty" }),
  Schema.trimmed({ message: () => "must not start or end with white space" }),
  Schema.maxLength(USER_ID_MAX_LENGTH, { message: () => `must be at most ${USER_ID_MAX_LENGTH} characters` }),
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
  Schema.pattern(/^[^\u0000-\u001f\u007f-\u009f]*$/, { message: () => "must not contain control characters" }),
  Schema.filter((id) => !loneSurrogate.test(id), { message: () => "must be well-formed Unicode (no lone surrogate)" }),
  Schema.brand("effect-session/UserId")
)

/**
 * @since 0.1.0
 */
export type UserId = typeof UserId.Type

const decodeUserId = Schema.decodeUnknownEither(UserId)

/**
 * Checks a user id at run time, for ids that arrive as plain strings.
 *
 * @since 0.1.0
 */
export const parseUserId = (input: unknown): Either.Either<UserId, InvalidUserId> =>
  Either.mapLeft(decodeUserId(input), (error) => {
    const issue = error.message.split("\n").at(-1)?.trim() ?? "invalid"
    return new InvalidUserId({ reason: issue })
  })

/**
 * A live session. `token` is the bearer secret and stays redacted; `handle`
 * is the id to show in lists. Times are epoch milliseconds from `Clock`.
 *
 * @since 0.1.0
 */
export interface Session<A> {
  readonly token: Redacted.Redacted<string>
  readonly key: string
  readonly handle: string
  readonly userId: Option.Option<UserId>
  readonly createdAt: number
  readonly expiresAt: Option.Option<number>
  readonly version: number
  readonly payload: A
}

/**
 * A session as listed for its user: metadata only, never the token.
 *
 * @since 0.1.0
 */
export interface SessionInfo {
  readonly handle: string
  readonly userId: UserId
  readonly createdAt: number
  readonly expiresAt: Option.Option<number>
}

/**
 * Whether a session with this expiry is expired at `now`. The one rule every operation uses.
 *
 * @since 0.1.0
 */
export const isExpiredAt = (expiresAt: number | null | undefined, now: number): boolean =>
  expiresAt !== null && expiresAt !== undefined && now >= expiresAt

/**
 * The expiry of a session as a `Date`, for display.
 *
 * @since 0.1.0
 */
export const expiresAtDate = <A>(session: Session<A>): Option.Option<Date> =>
  Option.map(session.expiresAt, (millis) => new Date(millis))
