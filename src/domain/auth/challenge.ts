/** One `WWW-Authenticate` challenge: `Bearer realm="…",service="…"` → `{scheme: 'bearer', params}`. */
export interface AuthChallenge {
  readonly scheme: string;
  /** Lowercased parameter names; a null-prototype object, so `__proto__` is just a key. */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*[ \t]*(?=,|$)/;

/**
 * Parses one or more `WWW-Authenticate` header values (RFC 9110 §11.6.1). A header may hold
 * several challenges separated by commas; a comma starts a new challenge when the next token is
 * not followed by `=`. Malformed input yields whatever parsed cleanly before it, never throws.
 */
export function parseChallenges(headers: string | readonly string[] | undefined): AuthChallenge[] {
  if (headers === undefined) return [];
  const list = typeof headers === 'string' ? [headers] : headers;
  const out: AuthChallenge[] = [];
  for (const header of list) parseHeader(header, out);
  return out;
}

function parseHeader(s: string, out: AuthChallenge[]): void {
  let i = 0;
  const skipSpaces = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TOKEN_CHAR.test(s.charAt(i))) i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string | undefined => {
    // s[i] is the opening quote.
    let value = '';
    for (i++; i < s.length; i++) {
      const c = s.charAt(i);
      if (c === '"') {
        i++;
        return value;
      }
      if (c === '\\' && i + 1 < s.length) i++;
      value += s.charAt(i);
    }
    return undefined; // unterminated
  };

  for (;;) {
    while (i < s.length && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) return;
    const scheme = readToken();
    if (scheme.length === 0) return;
    const params: Record<string, string> = Object.create(null) as Record<string, string>;
    out.push({ scheme: scheme.toLowerCase(), params });

    // Parameters: name=value pairs separated by commas, until a token without `=` (the next scheme).
    for (let first = true; ; first = false) {
      skipSpaces();
      const save = i;
      // Token68 straight after the scheme (`Negotiate abc==`) is unused by registries: skip it.
      const token68 = first ? TOKEN68.exec(s.slice(save)) : null;
      if (token68) {
        i = save + token68[0].length;
        break;
      }
      const name = readToken();
      skipSpaces();
      if (name.length === 0 || s[i] !== '=') {
        i = save;
        break;
      }
      i++;
      skipSpaces();
      let value: string | undefined;
      if (s[i] === '"') value = readQuoted();
      else value = readToken();
      if (value === undefined) return;
      params[name.toLowerCase()] = value;
      skipSpaces();
      if (i >= s.length) return;
      if (s[i] !== ',') return; // garbage after a value
      i++;
    }
  }
}
