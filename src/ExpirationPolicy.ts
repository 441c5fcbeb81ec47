/**
 * Expiration policies as values. Each is a pure function of a session's times
 * and `now`, which the store reads from `Clock`.
 *
 * @since 0.1.0
 */
import { Data, Duration, Option } from "effect"
import { isExpiredAt } from "./Session.js"
import { SessionConfigError } from "./SessionError.js"

/**
 * @since 0.1.0
 */
export type ExpirationPolicy = Data.TaggedEnum<{
  /** Expires at creation + ttl; touch never extends it. */
  Absolute: { readonly ttl: number }
  /** Every renewal moves the expiry to now + ttl. */
  Sliding: { readonly ttl: number; readonly renewalThreshold: number }
  /** Slides like `Sliding`, never past creation + maxLifetime. */
  SlidingCapped: { readonly ttl: number; readonly maxLifetime: number; readonly renewalThreshold: number }
}>

const Policy = Data.taggedEnum<ExpirationPolicy>()

/**
 * @since 0.1.0
 */
export interface RenewalOptions {
  /**
   * Renew only when less than this fraction of the ttl remains (0 < x <= 1).
   * The default, 1, renews on every touch that moves the expiry.
   */
  readonly renewalThreshold?: number | undefined
}

const millis = (input: Duration.DurationInput): number =>
  Option.match(Duration.decodeUnknown(input), { onNone: () => Number.NaN, onSome: Duration.toMillis })

/**
 * Fixed lifetime from creation.
 *
 * @since 0.1.0
 */
export const absolute = (ttl: Duration.DurationInput): ExpirationPolicy => Policy.Absolute({ ttl: millis(ttl) })

/**
 * Idle timeout: each renewal moves the expiry to now + ttl.
 *
 * @since 0.1.0
 */
export const sliding = (ttl: Duration.DurationInput, options?: RenewalOptions): ExpirationPolicy =>
  Policy.Sliding({ ttl: millis(ttl), renewalThreshold: options?.renewalThreshold ?? 1 })

/**
 * Idle timeout with an absolute cap on the whole lifetime.
 *
 * @since 0.1.0
 */
export const slidingCapped = (
  ttl: Duration.DurationInput,
  maxLifetime: Duration.DurationInput,
  options?: RenewalOptions
): ExpirationPolicy =>
  Policy.SlidingCapped({
    ttl: millis(ttl),
    maxLifetime: millis(maxLifetime),
    renewalThreshold: options?.renewalThreshold ?? 1
  })

/**
 * Checks that the durations and the threshold can work.
 *
 * @since 0.1.0
 */
export const validate = (policy: ExpirationPolicy): Option.Option<SessionConfigError> => {
  const fail = (reason: string) => Option.some(new SessionConfigError({ option: "policy", reason }))
  if (!Number.isFinite(policy.ttl) || policy.ttl < 1) {
    return fail("ttl must be a finite duration of at least 1 ms")
  }
  if (policy._tag === "Absolute") {
    return Option.none()
  }
  if (!(policy.renewalThreshold > 0 && policy.renewalThreshold <= 1)) {
    return fail("renewalThreshold must be in (0, 1]")
  }
  if (policy._tag === "SlidingCapped" && !(policy.maxLifetime >= policy.ttl && Number.isFinite(policy.maxLifetime))) {
    return fail("maxLifetime must be finite and at least ttl")
  }
  return Option.none()
}

/**
 * The expiry of a session created at `now`.
 *
 * @since 0.1.0
 */
export const initialExpiry = (policy: ExpirationPolicy, now: number): number =>
  policy._tag === "SlidingCapped" ? Math.min(now + policy.ttl, now + policy.maxLifetime) : now + policy.ttl

/**
 * The new expiry a touch at `now` should write, or None when it writes nothing:
 * the session is expired or never expires, the policy is absolute, the renewal
 * threshold is not reached, or the expiry would not move forward.
 *
 * @since 0.1.0
 */
export const renewal = (
  policy: ExpirationPolicy,
  session: { readonly createdAt: number; readonly expiresAt: number | null },
  now: number
): Option.Option<number> => {
  const current = session.expiresAt
  if (policy._tag === "Absolute" || current === null || isExpiredAt(current, now)) {
    return Option.none()
  }
  if (current - now >= policy.renewalThreshold * policy.ttl) {
    return Option.none()
  }
  const wanted = now + policy.ttl
  const next = policy._tag === "SlidingCapped" ? Math.min(wanted, session.createdAt + policy.maxLifetime) : wanted
  return next > current ? Option.some(next) : Option.none()
}
