/**
 * effect-session: server-side sessions for Effect applications.
 *
 * @since 0.1.0
 */
export * as DynamoRepository from "./DynamoRepository.js"
export * as ExpirationPolicy from "./ExpirationPolicy.js"
export * as HttpSession from "./HttpSession.js"
export * as MemoryRepository from "./MemoryRepository.js"
export * as RedisRepository from "./RedisRepository.js"
export * as Session from "./Session.js"
export * as SessionError from "./SessionError.js"
export * as SessionMetrics from "./SessionMetrics.js"
export * as SessionRepository from "./SessionRepository.js"
export * as SessionStore from "./SessionStore.js"
export * as SessionSweeper from "./SessionSweeper.js"
export * as SessionToken from "./SessionToken.js"
export * as SqlRepository from "./SqlRepository.js"
