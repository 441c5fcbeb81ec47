/**
 * Runs once before the suites: says which server-backed suites will skip.
 */
const servers = [
  ["EFFECT_SESSION_PG_URL", "PostgreSQL"],
  ["EFFECT_SESSION_MYSQL_URL", "MySQL/MariaDB"],
  ["EFFECT_SESSION_REDIS_URL", "Redis"]
] as const

export default function setup() {
  for (const [name, label] of servers) {
    if (!process.env[name]) {
      process.stdout.write(`effect-session: ${label} suite skipped (set ${name} to run it)\n`)
    }
  }
}
