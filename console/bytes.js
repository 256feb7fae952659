// bytes.js - keys and values are bytes (Uint8Array) everywhere in the
// console; this module converts them to and from what people read and type
// (text, hex, base64), to the API's percent-encoded URL form, and from the
// API's JSON forms ("value" or "value_base64"). Nothing here ever turns
// bytes into a string that cannot be turned back into the same bytes.

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(text) {
  return encoder.encode(text);
}

// The bytes as text when they are valid UTF-8 without NUL (the API's rule
// for the plain JSON form), else null.
export function asText(bytes) {
  if (bytes.includes(0)) return null;
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

export function isText(bytes) {
  return asText(bytes) !== null;
}

export function toHex(bytes, sep = " ") {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(sep);
}

// Hex digits, spaces, newlines and an optional 0x prefix per byte group.
export function fromHex(text) {
  const clean = text.replace(/0x/gi, "").replace(/[\s:,]/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new Error("hex takes pairs of digits 0-9 a-f (spaces allowed)");
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}

export function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function fromBase64(text) {
  const clean = text.replace(/\s/g, "").replace(/-/g, "+").replace(/_/g, "/");
  let bin;
  try {
    bin = atob(clean);
  } catch {
    throw new Error("not valid base64");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// The bytes in a form: "text", "hex" or "base64"; wrap: hex in lines of 16
// bytes and base64 in lines of 76 characters (for a text area).
export function encodeAs(bytes, form, wrap = false) {
  if (form === "hex") {
    if (!wrap) return toHex(bytes);
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) lines.push(toHex(bytes.subarray(i, i + 16)));
    return lines.join("\n");
  }
  if (form === "base64") {
    const b = toBase64(bytes);
    return wrap ? (b.match(/.{1,76}/g) || [""]).join("\n") : b;
  }
  const t = asText(bytes);
  if (t === null) throw new Error("these bytes are not UTF-8 text");
  return t;
}

export function decodeFrom(text, form) {
  if (form === "hex") return fromHex(text);
  if (form === "base64") return fromBase64(text);
  return utf8(text);
}

// One URL path segment or query value: every byte but A-Z a-z 0-9 - . _ ~
// percent-encoded, so "/" and NUL are data and any byte survives.
export function pct(bytes) {
  let s = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9\-._~]/.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return s;
}

// The inverse of pct, byte-exact (decodeURIComponent would insist on UTF-8).
export function unpct(text) {
  const out = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "%" && /^[0-9a-fA-F]{2}$/.test(text.substr(i + 1, 2))) {
      out.push(parseInt(text.substr(i + 1, 2), 16));
      i += 2;
    } else {
      for (const b of utf8(c)) out.push(b);
    }
  }
  return new Uint8Array(out);
}

// obj[name] (a UTF-8 string) or obj[name_base64] as bytes; null when neither.
export function fieldBytes(obj, name) {
  if (typeof obj[name] === "string") return utf8(obj[name]);
  if (typeof obj[name + "_base64"] === "string") return fromBase64(obj[name + "_base64"]);
  return null;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// A short human label for a key or value: the text, or its hex.
export function label(bytes, max = 80) {
  const t = asText(bytes);
  if (t !== null) return t.length > max ? t.slice(0, max) + "…" : t;
  const hex = toHex(bytes.subarray(0, Math.ceil(max / 3)));
  return "0x " + hex + (bytes.length > Math.ceil(max / 3) ? " …" : "");
}

export function sizeLabel(n) {
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1024 / 1024).toFixed(1) + " MiB";
}
