// End-to-end sealing, exactly as package e2e does it, with the browser's own
// WebCrypto and nothing else: HPKE (RFC 9180) base mode,
// DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, sender side
// (SetupBaseS, Seal, Export), and the miner's answer opened as Oblivious
// HTTP (RFC 9458) opens responses.

import { addressBytes } from './receipt.js';

const te = new TextEncoder();
const INFO_DOMAIN = 'agora/e2e/v3\0';
const RESPONSE_CONTEXT = 'agora/e2e/v3 response';
const NK = 32, NN = 12, NH = 32;
const RESPONSE_NONCE = Math.max(NK, NN);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

function u16(n) { return new Uint8Array([(n >> 8) & 0xff, n & 0xff]); }

function u32(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, false); return b; }

function u64(n) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n), false); return b; }

export function b64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function unb64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function hmac(key, data) {
  // HKDF with no salt uses Nh zero bytes, which HMAC treats the same as an
  // empty key; WebCrypto refuses empty HMAC keys, so always pass Nh bytes.
  if (key.length === 0) key = new Uint8Array(NH);
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, data));
}

// extract and expand are HKDF-SHA256 (RFC 5869).
const extract = (salt, ikm) => hmac(salt, ikm);

async function expand(prk, info, length) {
  let t = new Uint8Array(0), out = new Uint8Array(0);
  for (let i = 1; out.length < length; i++) {
    t = await hmac(prk, concat(t, info, new Uint8Array([i])));
    out = concat(out, t);
  }
  return out.slice(0, length);
}

const KEM_ID = 0x0020, KDF_ID = 0x0001, AEAD_ID = 0x0002;
const KEM_SUITE = concat(te.encode('KEM'), u16(KEM_ID));
const HPKE_SUITE = concat(te.encode('HPKE'), u16(KEM_ID), u16(KDF_ID), u16(AEAD_ID));
const V1 = te.encode('HPKE-v1');

const labeledExtract = (suite, salt, label, ikm) => extract(salt, concat(V1, suite, te.encode(label), ikm));
const labeledExpand = (suite, prk, label, info, length) =>
  expand(prk, concat(u16(length), V1, suite, te.encode(label), info), length);

function xorNonce(base, seq) {
  const n = base.slice();
  const s = u64(seq);
  for (let i = 0; i < 8; i++) n[n.length - 8 + i] ^= s[i];
  return n;
}

async function aesKey(raw, usage) {
  return crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, [usage]);
}

// setupBaseS is RFC 9180's SetupBaseS: a fresh ephemeral X25519 key, the
// KEM's shared secret with the recipient's key, and the key schedule.
async function setupBaseS(pkR, info) {
  const eph = await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  const enc = new Uint8Array(await crypto.subtle.exportKey('raw', eph.publicKey));
  const recipient = await crypto.subtle.importKey('raw', pkR, { name: 'X25519' }, false, []);
  const dh = new Uint8Array(await crypto.subtle.deriveBits({ name: 'X25519', public: recipient }, eph.privateKey, 256));
  const eaePrk = await labeledExtract(KEM_SUITE, new Uint8Array(0), 'eae_prk', dh);
  const shared = await labeledExpand(KEM_SUITE, eaePrk, 'shared_secret', concat(enc, pkR), 32);
  const pskIdHash = await labeledExtract(HPKE_SUITE, new Uint8Array(0), 'psk_id_hash', new Uint8Array(0));
  const infoHash = await labeledExtract(HPKE_SUITE, new Uint8Array(0), 'info_hash', info);
  const ctx = concat(new Uint8Array([0]), pskIdHash, infoHash);
  const secret = await labeledExtract(HPKE_SUITE, shared, 'secret', new Uint8Array(0));
  return {
    enc,
    key: await labeledExpand(HPKE_SUITE, secret, 'key', ctx, NK),
    baseNonce: await labeledExpand(HPKE_SUITE, secret, 'base_nonce', ctx, NN),
    exporter: await labeledExpand(HPKE_SUITE, secret, 'exp', ctx, NH),
  };
}

// aad mirrors e2e.Envelope.aad: the clear fields bound to the ciphertext.
function envelopeAAD(model, maxTokens, created, stream) {
  const m = te.encode(model);
  return concat(te.encode(INFO_DOMAIN), u32(m.length), m, u64(maxTokens), u64(created), te.encode(stream ? 'true' : 'false'));
}

// seal seals the OpenAI request bytes to a miner's X25519 key (32 bytes,
// read from the chain) and address, like e2e.Seal. It returns the envelope
// body to send and the Reply that opens the answer.
export async function seal(minerKey, miner, model, maxTokens, stream, request) {
  if (!(minerKey instanceof Uint8Array) || minerKey.length !== 32) throw new Error('the miner\'s X25519 key must be 32 bytes');
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > 4096) throw new Error('max_tokens must be between 1 and 4096');
  const info = concat(te.encode(INFO_DOMAIN), addressBytes(miner));
  const s = await setupBaseS(minerKey, info);
  const created = Math.floor(Date.now() / 1000);
  const ct = new Uint8Array(await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: xorNonce(s.baseNonce, 0), additionalData: envelopeAAD(model, maxTokens, created, stream) },
    await aesKey(s.key, 'encrypt'), request));
  const secret = await labeledExpand(HPKE_SUITE, s.exporter, 'sec', te.encode(RESPONSE_CONTEXT), RESPONSE_NONCE);
  // Field order and base64 []byte fields as Go's encoding/json writes an
  // e2e.Envelope; the miner's decoder refuses unknown fields.
  const env = { model, max_tokens: maxTokens };
  if (stream) env.stream = true;
  env.created = created;
  env.agora_sealed = { miner, enc: b64(s.enc), ciphertext: b64(ct) };
  return { body: te.encode(JSON.stringify(env)), reply: new Reply(secret, s.enc) };
}

// Reply opens the messages of one sealed answer, in order, as e2e.Reply.Open.
export class Reply {
  constructor(secret, enc) {
    this.secret = secret;
    this.enc = enc;
    this.key = null;
    this.baseNonce = null;
    this.seq = 0;
    this.closed = false;
  }

  // derive is e2e.Reply.derive: HKDF over the exported secret, salted with
  // the encapsulated key and the miner's response nonce (RFC 9458 4.4).
  async derive(nonce) {
    const prk = await extract(concat(this.enc, nonce), this.secret);
    this.key = await aesKey(await expand(prk, te.encode('key'), NK), 'decrypt');
    this.baseNonce = await expand(prk, te.encode('nonce'), NN);
  }

  get done() { return this.closed; }

  // open opens the next message ({"agora_sealed": b64, "agora_response_nonce"?: b64})
  // and returns {plaintext, final}; it throws if it does not open.
  async open(message) {
    if (this.closed) throw new Error('sealed message after the final one');
    let m;
    try { m = JSON.parse(typeof message === 'string' ? message : new TextDecoder().decode(message)); } catch { m = null; }
    if (!m || typeof m.agora_sealed !== 'string') throw new Error('the answer is not sealed');
    const nonce = m.agora_response_nonce != null ? unb64(m.agora_response_nonce) : null;
    if (!this.key) {
      if (!nonce || nonce.length !== RESPONSE_NONCE) throw new Error(`the answer's first message carries no ${RESPONSE_NONCE}-byte response nonce`);
      await this.derive(nonce);
    } else if (nonce) {
      throw new Error(`message ${this.seq} carries a second response nonce`);
    }
    const ct = unb64(m.agora_sealed);
    for (const final of [false, true]) {
      try {
        const pt = await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: xorNonce(this.baseNonce, this.seq), additionalData: te.encode(final ? 'final' : 'more') }, this.key, ct);
        this.seq++;
        this.closed = final;
        return { plaintext: new Uint8Array(pt), final };
      } catch { /* try the other marker */ }
    }
    if (this.seq === 0) { this.key = null; this.baseNonce = null; }
    throw new Error(`sealed message ${this.seq} does not open (altered, reordered or from another request)`);
  }
}
