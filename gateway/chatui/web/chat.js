// The chat page: conversations and settings in localStorage (never on a
// server), answers streamed from the gateway's OpenAI API with fetch, each
// answer's receipt checked in the browser, and optional end-to-end sealing
// to a miner whose key comes from the chain through an explorer.

import { render } from './markdown.js';
import { cryptoAvailable, parseReceipt, verifyReceipt, describe, StreamHasher, unhex, shortAddress } from './receipt.js';
import { seal } from './hpke.js';

const $ = id => document.getElementById(id);
const te = new TextEncoder();
const SETTINGS = 'agora.chat.settings';
// Icons are constant markup, never built from data.
const ICON_SEND = '<svg class="ico" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 19V5M6 11l6-6 6 6"/></svg>';
const ICON_STOP = '<svg class="ico fill" viewBox="0 0 24 24" aria-hidden="true"><rect x="7" y="7" width="10" height="10" rx="1.5"/></svg>';
const ICON_TRASH = '<svg class="ico" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"/></svg>';
const CONVERSATIONS = 'agora.chat.conversations';

const state = {
  settings: { key: '', explorer: '', explorerFrom: '', netuid: 0, e2e: false, maxTokens: 256, model: '', theme: 'auto' },
  convs: [],
  current: null,
  info: null,
  abort: null,
};

function load() {
  try { Object.assign(state.settings, JSON.parse(localStorage.getItem(SETTINGS) || '{}')); } catch { /* a broken entry is replaced */ }
  try {
    const c = JSON.parse(localStorage.getItem(CONVERSATIONS) || '{}');
    state.convs = Array.isArray(c.convs) ? c.convs : [];
    state.current = c.current || null;
  } catch { state.convs = []; }
}

function saveSettings() { localStorage.setItem(SETTINGS, JSON.stringify(state.settings)); }

function saveConvs() {
  try {
    localStorage.setItem(CONVERSATIONS, JSON.stringify({ convs: state.convs, current: state.current }));
  } catch {
    showBanner('This browser\'s storage is full: older conversations will not be kept. Clear some in Settings.', 'warn');
  }
}

// takeFragment reads the key (and explorer, netuid) a link carries after
// "#" — which browsers never send to a server — keeps them, and removes
// them from the address bar and history.
function takeFragment() {
  if (!location.hash || location.hash.length < 2) return;
  const p = new URLSearchParams(location.hash.slice(1));
  let took = false;
  const key = p.get('key');
  if (key && key.startsWith('agora-sk-')) { state.settings.key = key; took = true; }
  const explorer = p.get('explorer');
  if (explorer && /^https?:\/\//.test(explorer)) { state.settings.explorer = explorer; state.settings.explorerFrom = 'your link'; took = true; }
  const netuid = parseInt(p.get('netuid') || '', 10);
  if (netuid > 0) { state.settings.netuid = netuid; took = true; }
  if (took) saveSettings();
  history.replaceState(null, '', location.pathname + location.search);
}

function showBanner(text, cls = 'info') {
  const b = $('banner');
  b.textContent = text;
  b.className = 'banner ' + cls;
  b.hidden = !text;
}

function applyTheme() {
  const t = state.settings.theme;
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}

// ---- conversations ----

function currentConv() { return state.convs.find(c => c.id === state.current) || null; }

function newConv() {
  const c = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 8), title: 'New chat', created: Date.now(), messages: [] };
  state.convs.unshift(c);
  state.current = c.id;
  return c;
}

function renderConvList() {
  const nav = $('conv-list');
  nav.replaceChildren();
  for (const c of state.convs) {
    const row = document.createElement('div');
    row.className = 'conv' + (c.id === state.current ? ' active' : '');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'conv-open';
    open.textContent = c.title;
    open.title = c.title;
    open.addEventListener('click', () => { if (state.abort) return; state.current = c.id; saveConvs(); closeSidebar(); renderAll(); });
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'conv-del';
    del.setAttribute('aria-label', 'Delete this conversation');
    del.innerHTML = ICON_TRASH;
    del.addEventListener('click', () => {
      if (state.abort && c.id === state.current) return;
      state.convs = state.convs.filter(x => x.id !== c.id);
      if (state.current === c.id) state.current = state.convs[0]?.id || null;
      saveConvs();
      renderAll();
    });
    row.append(open, del);
    nav.append(row);
  }
}

function messageEl(m) {
  const el = document.createElement('article');
  el.className = 'msg ' + m.role;
  const body = document.createElement('div');
  body.className = 'body';
  if (m.role === 'user') {
    body.textContent = m.content;
  } else {
    body.innerHTML = render(m.content); // render escapes everything first
    if (!m.content && m.pending) body.innerHTML = '<span class="typing"><i></i><i></i><i></i></span>';
  }
  el.append(body);
  if (m.role === 'assistant') {
    if (m.sealed) el.dataset.sealed = 'true';
    const meta = document.createElement('div');
    meta.className = 'meta';
    fillMeta(meta, m);
    el.append(meta);
  }
  return el;
}

function fillMeta(meta, m) {
  meta.replaceChildren();
  if (m.pending) {
    meta.className = 'meta pending';
    meta.textContent = m.sealed ? (m.miner ? 'sealed to ' + shortAddress(m.miner) + ' · streaming…' : 'sealing…') : 'streaming…';
    return;
  }
  if (m.error) {
    meta.className = 'meta error';
    meta.textContent = '⚠ ' + m.error;
    if (m.receipt) { meta.append(document.createElement('br')); }
    if (!m.receipt) return;
  }
  if (m.receipt) {
    const d = describe(m.receipt);
    const span = document.createElement('span');
    span.className = 'receipt ' + d.cls;
    span.textContent = d.text;
    if (m.receipt.miner) span.title = 'served by ' + m.receipt.miner;
    if (!m.error) meta.className = 'meta';
    meta.append(span);
  }
}

function renderMessages() {
  const box = $('messages');
  const c = currentConv();
  box.replaceChildren();
  const empty = !c || c.messages.length === 0;
  $('welcome').hidden = !empty;
  box.hidden = empty;
  $('key-card').hidden = !!state.settings.key;
  $('suggestions').hidden = !state.settings.key;
  if (empty) return;
  for (const m of c.messages) box.append(messageEl(m));
  box.scrollTop = box.scrollHeight;
}

function renderAll() {
  renderConvList();
  renderMessages();
  syncControls();
}

function syncControls() {
  const busy = !!state.abort;
  const send = $('send');
  if (send.dataset.state !== (busy ? 'stop' : 'send') || !send.firstChild) send.innerHTML = busy ? ICON_STOP : ICON_SEND;
  send.dataset.state = busy ? 'stop' : 'send';
  send.setAttribute('aria-label', busy ? 'Stop' : 'Send');
  send.title = busy ? 'Stop' : 'Send (Enter)';
  $('e2e').checked = state.settings.e2e;
  $('e2e').disabled = !cryptoAvailable();
  const st = $('e2e-status');
  if (!cryptoAvailable()) st.textContent = 'needs a secure context (https or localhost)';
  else if (state.settings.e2e) {
    const ex = explorer();
    st.textContent = ex.url ? `keys from ${ex.url.replace(/^https?:\/\//, '')} (${ex.from})` : 'needs an explorer URL in Settings';
  } else st.textContent = 'off: the gateway can read this chat';
}

// ---- network ----

function explorer() {
  if (state.settings.explorer) return { url: state.settings.explorer.replace(/\/+$/, ''), from: state.settings.explorerFrom || 'your settings' };
  if (state.info && state.info.explorer) return { url: state.info.explorer.replace(/\/+$/, ''), from: 'as told by this gateway' };
  return { url: '', from: '' };
}

function netuid() { return state.settings.netuid || (state.info && state.info.netuid) || 1; }

async function getJSON(url, opts) {
  const r = await fetch(url, opts);
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  return r.json();
}

async function loadInfo() {
  try { state.info = await getJSON('/v1/agora/info'); } catch { state.info = null; }
  const net = $('net');
  if (state.info) {
    net.textContent = `${state.info.chain_id || 'agora'} · subnet ${state.info.netuid || '?'}`;
  }
  const sel = $('model');
  try {
    const list = await getJSON('/v1/models');
    const ids = (list.data || []).map(m => m.id).filter(Boolean);
    sel.replaceChildren();
    for (const id of ids) {
      const o = document.createElement('option');
      o.value = id;
      o.textContent = id;
      sel.append(o);
    }
    const alias = document.createElement('option');
    alias.value = 'agora';
    alias.textContent = 'agora (the subnet\'s model)';
    sel.append(alias);
    const want = state.settings.model;
    sel.value = [...sel.options].some(o => o.value === want) ? want : sel.options[0].value;
  } catch {
    showBanner('The gateway did not list its models; using "agora".', 'warn');
  }
  syncControls();
}

// pickMiner chooses, like agent.PickMiner, the gateway's best-scored miner
// that has an X25519 key on chain. The gateway says only whom it would
// route to; the key comes from the explorer, which reads the chain.
async function pickMiner() {
  const ex = explorer();
  if (!ex.url) throw new Error('end-to-end needs an explorer to read miners\' keys from the chain: set its URL in Settings');
  const [miners, keys] = await Promise.all([
    getJSON('/v1/agora/miners'),
    getJSON(`${ex.url}/api/subnets/${netuid()}/keys`).catch(e => { throw new Error(`could not read miners' keys from the explorer (${e.message})`); }),
  ]);
  const byHotkey = new Map();
  for (const k of keys.keys || []) if (typeof k.x25519 === 'string' && /^[0-9a-f]{64}$/i.test(k.x25519)) byHotkey.set(k.hotkey, k.x25519);
  for (const m of miners.data || []) {
    const key = byHotkey.get(m.hotkey);
    if (key) return { hotkey: m.hotkey, key: unhex(key), height: keys.height };
  }
  throw new Error(`none of the gateway's ${(miners.data || []).length} miners has an X25519 key on subnet ${netuid()}`);
}

// events splits an SSE byte stream into {name, data} events as
// wire.ScanEvents does: line by line, "event:" names, "data:" payloads
// (one leading space dropped), a blank line ending the event.
async function* events(body) {
  const reader = body.getReader();
  let buf = new Uint8Array(0);
  let name = '';
  const td = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (value) {
      const next = new Uint8Array(buf.length + value.length);
      next.set(buf); next.set(value, buf.length);
      buf = next;
    }
    let nl;
    while ((nl = buf.indexOf(10)) >= 0) {
      let line = buf.subarray(0, nl);
      buf = buf.slice(nl + 1);
      if (line.length && line[line.length - 1] === 13) line = line.subarray(0, line.length - 1);
      if (line.length === 0) { name = ''; continue; }
      const head = td.decode(line.subarray(0, Math.min(line.length, 6)));
      if (head.startsWith('event:')) name = td.decode(line.subarray(6)).trim();
      else if (head.startsWith('data:')) {
        let p = line.subarray(5);
        if (p[0] === 32) p = p.subarray(1);
        yield { name, data: p.slice() };
      }
    }
    if (done) return;
  }
}

function friendlyError(status, msg) {
  if (status === 401 || status === 402) return `the gateway refused the payment: ${msg}. Check your session key in Settings.`;
  if (status === 429) return `too many requests: ${msg}`;
  if (status === 400 && /context/.test(msg)) return `${msg}: this conversation is too long for the model; start a new chat.`;
  if (status === 503) return `no miner is available right now: ${msg}`;
  return msg || `the gateway answered ${status}`;
}

async function send(text) {
  text = text.trim();
  if (!text || state.abort) return;
  if (!state.settings.key) { renderMessages(); $('key-input').focus(); return; }
  const conv = currentConv() || newConv();
  if (conv.messages.length === 0) conv.title = text.length > 48 ? text.slice(0, 47) + '…' : text;
  const history = conv.messages.filter(m => !m.error && m.content).map(m => ({ role: m.role, content: m.content }));
  conv.messages.push({ role: 'user', content: text });
  const answer = { role: 'assistant', content: '', pending: true, sealed: state.settings.e2e };
  conv.messages.push(answer);
  // Moved to the top: the list is most recent first.
  state.convs = [conv, ...state.convs.filter(c => c !== conv)];
  state.abort = new AbortController();
  saveConvs();
  renderAll();
  const box = $('messages');
  const el = box.lastElementChild;
  const bodyEl = el.querySelector('.body');
  const meta = el.querySelector('.meta');
  let frame = 0;
  const paint = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      bodyEl.innerHTML = answer.content ? render(answer.content) : '<span class="typing"><i></i><i></i><i></i></span>';
      fillMeta(meta, answer);
      const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
      if (nearBottom) box.scrollTop = box.scrollHeight;
    });
  };
  const model = $('model').value || 'agora';
  const maxTokens = Math.min(4096, Math.max(1, state.settings.maxTokens | 0 || 256));
  let reply = null, body, miner = '', receiptText = null, settle = null, afterReceipt = false;
  const hasher = new StreamHasher();
  try {
    body = te.encode(JSON.stringify({ model, messages: [...history, { role: 'user', content: text }], max_tokens: maxTokens, stream: true }));
    if (answer.sealed) {
      if (!cryptoAvailable()) throw new Error('end-to-end needs WebCrypto, which this page (not https or localhost) does not have');
      const target = await pickMiner();
      answer.miner = target.hotkey;
      paint();
      ({ body, reply } = await seal(target.key, target.hotkey, model, maxTokens, true, body));
    }
    const resp = await fetch('/v1/chat/completions', {
      method: 'POST', body, signal: state.abort.signal, cache: 'no-store', referrerPolicy: 'no-referrer',
      headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + state.settings.key },
    });
    miner = resp.headers.get('Agora-Miner') || '';
    if (!resp.ok) {
      let msg = '';
      try { msg = (await resp.json()).error.message; } catch { /* not JSON */ }
      throw new Error(friendlyError(resp.status, msg));
    }
    const td = new TextDecoder();
    // After a failure the stream is still read to its end: the gateway's
    // payment event says what the part that arrived cost.
    let failed = null;
    for await (const e of events(resp.body)) {
      if (e.name === 'agora-receipt') { receiptText = td.decode(e.data); afterReceipt = true; continue; }
      if (e.name === 'agora-payment') { try { settle = JSON.parse(td.decode(e.data)); } catch { /* shown as unknown cost */ } continue; }
      if (afterReceipt) continue; // nothing the receipt does not cover is shown
      await hasher.add(e.data);
      if (e.name || failed) continue; // e.g. a failover marker
      let data = td.decode(e.data);
      if (data === '[DONE]') continue;
      try {
        if (reply) data = td.decode((await reply.open(data)).plaintext);
      } catch (err) { failed = err; continue; }
      let chunk;
      try { chunk = JSON.parse(data); } catch { continue; }
      if (chunk.error) { failed = new Error(chunk.error.message || 'the stream failed'); continue; }
      for (const c of chunk.choices || []) {
        if (c.delta && c.delta.content) { answer.content += c.delta.content; paint(); }
      }
    }
    if (failed) throw failed;
    if (reply && !reply.done) throw new Error('the sealed answer ended before the miner\'s final message');
  } catch (e) {
    if (e.name === 'AbortError') answer.error = 'stopped';
    else answer.error = e.message || String(e);
  } finally {
    answer.pending = false;
    // Whatever arrived is marked: verified, or not and why.
    if (receiptText !== null || settle || answer.content) {
      let verify = { ok: false, reason: 'the answer came without a receipt' }, rc = null;
      if (receiptText !== null) {
        try { rc = parseReceipt(receiptText); verify = await verifyReceipt(rc, miner, body, await hasher.sum()); }
        catch (err) { verify = { ok: false, reason: 'unreadable receipt: ' + err.message }; }
      }
      answer.receipt = {
        verify, miner: miner || answer.miner, sealed: !!reply,
        charged: settle && settle.extra ? settle.extra.charged : null,
        free: !settle && verify.ok, tokens: rc ? rc.completion_tokens : null,
      };
      if (!reply && rc && answer.receipt.miner) answer.miner = answer.receipt.miner;
    }
    if (!answer.content && !answer.error) answer.error = 'the miner sent an empty answer';
    state.abort = null;
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    saveConvs();
    bodyEl.innerHTML = render(answer.content);
    fillMeta(meta, answer);
    if (answer.sealed) el.dataset.sealed = 'true';
    box.scrollTop = box.scrollHeight;
    syncControls();
  }
}

// ---- wiring ----

function openSidebar() { $('sidebar').classList.add('open'); $('scrim').hidden = false; }
function closeSidebar() { $('sidebar').classList.remove('open'); $('scrim').hidden = true; }

function autosize() {
  const p = $('prompt');
  p.style.height = 'auto';
  p.style.height = Math.min(p.scrollHeight, 200) + 'px';
}

function openSettings() {
  const s = state.settings;
  $('set-key').value = s.key;
  $('set-key').type = 'password';
  $('show-key').textContent = 'Show';
  $('set-explorer').value = s.explorer;
  $('set-explorer').placeholder = state.info && state.info.explorer ? state.info.explorer : 'http://127.0.0.1:8080';
  const ex = explorer();
  $('explorer-source').textContent = ex.url
    ? `Miners' keys are read from ${ex.url} (${ex.from}). End-to-end encryption trusts it, not the gateway, for them.`
    : 'End-to-end encryption reads each miner\'s key from the chain through an explorer. None is set.';
  $('set-e2e').checked = s.e2e;
  $('set-e2e').disabled = !cryptoAvailable();
  $('set-maxtokens').value = s.maxTokens;
  $('set-theme').value = s.theme;
  $('settings').showModal();
}

function closeSettings() {
  const s = state.settings;
  const key = $('set-key').value.trim();
  if (key !== s.key) s.key = key;
  const ex = $('set-explorer').value.trim();
  if (ex !== s.explorer) { s.explorer = /^https?:\/\//.test(ex) ? ex : ''; s.explorerFrom = s.explorer ? 'your settings' : ''; }
  s.e2e = $('set-e2e').checked && cryptoAvailable();
  const mt = parseInt($('set-maxtokens').value, 10);
  if (mt >= 1 && mt <= 4096) s.maxTokens = mt;
  s.theme = $('set-theme').value;
  saveSettings();
  applyTheme();
  $('settings').close();
  renderAll();
}

function wire() {
  $('send').addEventListener('click', () => {
    if (state.abort) { state.abort.abort(); return; }
    const p = $('prompt');
    const text = p.value;
    p.value = '';
    autosize();
    send(text);
  });
  $('prompt').addEventListener('keydown', e => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); if (!state.abort) $('send').click(); }
  });
  $('prompt').addEventListener('input', autosize);
  $('new-chat').addEventListener('click', () => {
    if (state.abort) return;
    const c = currentConv();
    if (!c || c.messages.length) newConv();
    saveConvs();
    closeSidebar();
    renderAll();
    $('prompt').focus();
  });
  $('menu-btn').addEventListener('click', openSidebar);
  $('close-sidebar').addEventListener('click', closeSidebar);
  $('scrim').addEventListener('click', closeSidebar);
  $('model').addEventListener('change', () => { state.settings.model = $('model').value; saveSettings(); });
  $('e2e').addEventListener('change', () => { state.settings.e2e = $('e2e').checked; saveSettings(); syncControls(); });
  $('settings-btn').addEventListener('click', openSettings);
  $('settings-close').addEventListener('click', closeSettings);
  $('settings-done').addEventListener('click', closeSettings);
  $('settings').addEventListener('cancel', e => { e.preventDefault(); closeSettings(); });
  $('show-key').addEventListener('click', () => {
    const k = $('set-key');
    k.type = k.type === 'password' ? 'text' : 'password';
    $('show-key').textContent = k.type === 'password' ? 'Show' : 'Hide';
  });
  $('clear-data').addEventListener('click', () => {
    if (!confirm('Delete your session key, settings and every conversation from this browser?')) return;
    if (state.abort) state.abort.abort();
    localStorage.removeItem(SETTINGS);
    localStorage.removeItem(CONVERSATIONS);
    location.reload();
  });
  $('key-save').addEventListener('click', () => {
    const k = $('key-input').value.trim();
    if (!k.startsWith('agora-sk-')) { showBanner('A session key starts with agora-sk-.', 'warn'); return; }
    state.settings.key = k;
    $('key-input').value = '';
    saveSettings();
    showBanner('');
    renderAll();
    $('prompt').focus();
  });
  $('key-input').addEventListener('keydown', e => { if (e.key === 'Enter') $('key-save').click(); });
  for (const b of document.querySelectorAll('.suggestion')) {
    b.addEventListener('click', () => { $('prompt').value = b.textContent; send(b.textContent); $('prompt').value = ''; });
  }
}

load();
takeFragment();
applyTheme();
wire();
if (!cryptoAvailable()) {
  showBanner('This page is not in a secure context (https, or http on localhost/127.0.0.1), so the browser has no WebCrypto: receipts cannot be checked and end-to-end encryption is off.', 'warn');
  state.settings.e2e = false;
}
renderAll();
// ready tells tests (and anything scripting the page) that the gateway's
// info and models are in.
loadInfo().finally(() => { document.documentElement.dataset.ready = 'true'; });
