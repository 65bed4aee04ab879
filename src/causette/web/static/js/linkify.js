// Turn plain text into text nodes and safe links. Only http:// and https:// become links;
// everything else stays text. Nothing is fetched (no previews, no images).

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?'"»)\]}]+$/;

/** Split text into [{text}|{text, href}] segments. */
export function segments(text) {
  const out = [];
  let last = 0;
  URL_RE.lastIndex = 0;
  let m;
  while ((m = URL_RE.exec(text)) !== null) {
    let raw = m[0];
    // Drop trailing punctuation, but keep a closing parenthesis that belongs to the URL.
    const trail = raw.match(TRAILING);
    if (trail) {
      let cut = trail[0];
      raw = raw.slice(0, raw.length - cut.length);
      while (cut.startsWith(')') && count(raw, '(') > count(raw, ')')) {
        raw += ')';
        cut = cut.slice(1);
      }
    }
    const href = safeHref(raw);
    const start = m.index;
    if (!href) continue;
    if (start > last) out.push({ text: text.slice(last, start) });
    out.push({ text: raw, href });
    last = start + raw.length;
    URL_RE.lastIndex = last;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

function count(s, ch) {
  let n = 0;
  for (const c of s) if (c === ch) n += 1;
  return n;
}

function safeHref(raw) {
  try {
    const u = new URL(raw);
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.hostname) return u.href;
  } catch { /* not a URL */ }
  return null;
}

/** A DocumentFragment with the text and its links. */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  for (const seg of segments(text)) {
    if (seg.href) {
      const a = document.createElement('a');
      a.href = seg.href;
      a.target = '_blank';
      a.rel = 'nofollow noopener noreferrer ugc';
      a.textContent = seg.text;
      frag.appendChild(a);
    } else {
      frag.appendChild(document.createTextNode(seg.text));
    }
  }
  return frag;
}
