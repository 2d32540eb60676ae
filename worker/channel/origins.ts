// Which browser origins may open sockets and call the API (`ALLOWED_ORIGINS`).
export function allowedOrigins(env: Env): string[] {
  return (env.ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
}

export function originAllowed(origin: string | undefined, env: Env): boolean {
  if (!origin) return true; // non-browser clients send no Origin; the token still guards them
  const allowed = allowedOrigins(env);
  return allowed.includes('*') || allowed.includes(origin);
}
