// Receipt checks, exactly as wire.Receipt.Verify does them: the miner's
// ed25519 signature over the receipt's sign bytes, that the signing key's
// address is the miner the gateway named, and that the receipt covers the
// very request bytes this page sent and the very stream it received.

const enc = new TextEncoder();

export function cryptoAvailable() {
  return typeof crypto !== 'undefined' && !!crypto.subtle && window.isSecureContext;
}

export function hex(bytes) {
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

export function unhex(s) {
  if (typeof s !== 'string' || s.length % 2 !== 0 || /[^0-9a-fA-F]/.test(s)) throw new Error('not hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

export async function sha256hex(bytes) {
  return hex(await sha256(bytes));
}

// StreamHasher mirrors wire.StreamHasher: the response hash of a stream is
// sha256 over the concatenated lowercase-hex sha256 of every data payload.
export class StreamHasher {
  constructor() { this.parts = []; }
  async add(payload) { this.parts.push(await sha256hex(payload)); }
  async sum() { return sha256hex(enc.encode(this.parts.join(''))); }
}

// bech32 (BIP 173), the encoding of Agora addresses. It is an encoding, not
// cryptography: a checksum over 5-bit groups.
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values) {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
  }
  return chk >>> 0;
}

function hrpExpand(hrp) {
  const out = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

function convertBits(data, from, to, pad) {
  let acc = 0, bits = 0;
  const out = [], maxv = (1 << to) - 1;
  for (const v of data) {
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) { bits -= to; out.push((acc >> bits) & maxv); }
  }
  if (pad) { if (bits > 0) out.push((acc << (to - bits)) & maxv); }
  else if (bits >= from || ((acc << (to - bits)) & maxv)) throw new Error('bad padding');
  return out;
}

export function bech32Encode(hrp, bytes) {
  const data = convertBits(bytes, 8, 5, true);
  const mod = polymod([...hrpExpand(hrp), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const check = [];
  for (let i = 0; i < 6; i++) check.push((mod >>> (5 * (5 - i))) & 31);
  return hrp + '1' + [...data, ...check].map(d => CHARSET[d]).join('');
}

export function bech32Decode(s) {
  if (typeof s !== 'string' || s.toLowerCase() !== s) throw new Error('not a lowercase bech32 string');
  const pos = s.lastIndexOf('1');
  if (pos < 1 || pos + 7 > s.length) throw new Error('not a bech32 string');
  const hrp = s.slice(0, pos);
  const data = [];
  for (const c of s.slice(pos + 1)) {
    const d = CHARSET.indexOf(c);
    if (d < 0) throw new Error('bad bech32 character');
    data.push(d);
  }
  if (polymod([...hrpExpand(hrp), ...data]) !== 1) throw new Error('bad bech32 checksum');
  return { hrp, bytes: new Uint8Array(convertBits(data.slice(0, -6), 5, 8, false)) };
}

// addressOf is an Agora address: bech32 "agora" of the first 20 bytes of
// sha256(ed25519 public key).
export async function addressOf(pubkey) {
  return bech32Encode('agora', (await sha256(pubkey)).slice(0, 20));
}

// addressBytes decodes an agora1… address to its 20 bytes.
export function addressBytes(addr) {
  const { hrp, bytes } = bech32Decode(addr);
  if (hrp !== 'agora' || bytes.length !== 20) throw new Error('not an Agora address');
  return bytes;
}

export function shortAddress(addr) {
  return addr && addr.length > 16 ? addr.slice(0, 10) + '…' + addr.slice(-4) : addr || '';
}

const FIELDS = ['miner', 'request_hash', 'response_hash', 'model_id', 'prompt_tokens', 'completion_tokens', 'ttft_ms', 'duration_ms', 'price', 'signature'];

// signBytes mirrors wire.Receipt.signBytes: the domain, four strings each
// prefixed by its u32 big-endian length, five u64 big-endian numbers.
export function signBytes(r) {
  const parts = [enc.encode('agora/wire-receipt/v1\0')];
  for (const s of [r.miner, r.request_hash, r.response_hash, r.model_id]) {
    const b = enc.encode(s);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, b.length, false);
    parts.push(len, b);
  }
  for (const v of [r.prompt_tokens, r.completion_tokens, r.ttft_ms, r.duration_ms, r.price]) {
    const n = new Uint8Array(8);
    new DataView(n.buffer).setBigUint64(0, BigInt(v), false);
    parts.push(n);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

// parseReceipt reads the receipt event's JSON the way the gateway does:
// no unknown fields, no negative counts. Its numbers are kept exact: the
// price is a u64, which a JavaScript number cannot always hold.
export function parseReceipt(text) {
  if (text.length > 4096) throw new Error('receipt too long');
  const raw = JSON.parse(text.replace(/"price":\s*(\d+)/, '"price":"$1"'));
  for (const k of Object.keys(raw)) if (!FIELDS.includes(k)) throw new Error('unknown receipt field ' + k);
  for (const k of ['prompt_tokens', 'completion_tokens', 'ttft_ms', 'duration_ms']) {
    if (!Number.isSafeInteger(raw[k] ?? 0) || (raw[k] ?? 0) < 0) throw new Error('bad ' + k);
  }
  const r = {};
  for (const k of FIELDS) r[k] = raw[k] ?? (k.endsWith('tokens') || k.endsWith('_ms') ? 0 : '');
  r.price = BigInt(raw.price ?? 0).toString();
  return r;
}

// verifyReceipt checks receipt r against the miner address the gateway
// named, the request body bytes sent and the stream's response hash. It
// never throws: it returns {ok: true} or {ok: false, reason}.
export async function verifyReceipt(r, miner, requestBody, responseHash) {
  try {
    if (!cryptoAvailable()) return { ok: false, reason: 'this page is not a secure context, so the browser cannot check signatures' };
    if (!r) return { ok: false, reason: 'the answer came without a receipt' };
    let pub;
    try { pub = unhex(r.miner); } catch { return { ok: false, reason: 'bad miner key' }; }
    if (pub.length !== 32) return { ok: false, reason: 'bad miner key' };
    const signer = await addressOf(pub);
    if (!miner) return { ok: false, reason: 'the gateway did not say which miner served it' };
    if (signer !== miner) return { ok: false, reason: `signed by ${shortAddress(signer)}, but the gateway named ${shortAddress(miner)}` };
    let sig;
    try { sig = unhex(r.signature); } catch { return { ok: false, reason: 'signature does not verify' }; }
    const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
    if (sig.length !== 64 || !(await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, signBytes(r)))) {
      return { ok: false, reason: 'signature does not verify' };
    }
    if (r.request_hash !== await sha256hex(requestBody)) return { ok: false, reason: 'covers another request' };
    if (r.response_hash !== responseHash) return { ok: false, reason: 'covers another response' };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: 'could not check it: ' + (e && e.message || e) };
  }
}

// formatAGR renders base units (1 AGR = 1e9) like agr.Format.
export function formatAGR(base) {
  const n = BigInt(base);
  const unit = 1000000000n;
  const whole = n / unit, frac = n % unit;
  if (frac === 0n) return whole.toString() + ' AGR';
  return whole.toString() + '.' + frac.toString().padStart(9, '0').replace(/0+$/, '') + ' AGR';
}

// describe is the line shown under an answer: what was verified, who
// served it and what it cost, or what failed.
export function describe(m) {
  const cost = m.charged != null ? ' · cost ' + formatAGR(m.charged) : (m.free ? ' · free' : '');
  const tokens = m.tokens != null ? ` · ${m.tokens} tokens` : '';
  const lock = m.sealed ? ' · end-to-end encrypted' : '';
  if (m.verify && m.verify.ok) {
    return { cls: 'ok', text: `✓ receipt verified · served by ${shortAddress(m.miner)}${cost}${tokens}${lock}` };
  }
  const why = m.verify ? m.verify.reason : 'no receipt';
  return { cls: 'warn', text: `⚠ receipt NOT verified: ${why}${m.miner ? ' · served by ' + shortAddress(m.miner) : ''}${cost}${lock}` };
}
