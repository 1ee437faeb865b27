/**
 * RFC 7239 `Forwarded` parsing. ztunnel sends `for="<ip:port>"` and, when the client addressed
 * a Service, `;host=<service FQDN>`; the inbound side uses only `host=` to pick the
 * `destination_service*` labels (never `for=`, which a client could forge).
 */

/** Each forwarded-element as a map of lower-cased parameter names to unquoted values. */
export function parseForwarded(
  header: string | readonly string[] | undefined,
): Record<string, string>[] {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(',');
  const elements: Record<string, string>[] = [];
  let element: Record<string, string> = {};
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  while (i < n) {
    skipSpace();
    const nameStart = i;
    while (i < n && text[i] !== '=' && text[i] !== ';' && text[i] !== ',') i++;
    const name = text.slice(nameStart, i).trim().toLowerCase();
    let value = '';
    const hasValue = text[i] === '=';
    if (hasValue) {
      i++;
      skipSpace();
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          value += text[i];
          i++;
        }
        i++; // closing quote (or end of input for an unterminated string)
        while (i < n && text[i] !== ';' && text[i] !== ',') i++;
      } else {
        const start = i;
        while (i < n && text[i] !== ';' && text[i] !== ',') i++;
        value = text.slice(start, i).trim();
      }
    }
    // First occurrence wins; a pair without "=" is malformed and skipped.
    if (hasValue && name !== '' && !(name in element)) element[name] = value;
    if (text[i] === ',') {
      if (Object.keys(element).length > 0) elements.push(element);
      element = {};
    }
    i++;
  }
  if (Object.keys(element).length > 0) elements.push(element);
  return elements;
}

/** The first `host=` parameter of a `Forwarded` header, if any. */
export function forwardedHost(header: string | readonly string[] | undefined): string | undefined {
  for (const element of parseForwarded(header)) {
    if (element.host) return element.host;
  }
  return undefined;
}
