'use strict';
(() => {
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'giftcard.admin_token';
const CARDS_PAGE = 50, WALLETS_PAGE = 25, PURCHASES_N = 20;
const TAIL_SHOWN = 100;      // events listed in the live tail
const RING = 2000;           // events kept (sanitized) to re-apply over a slower answer
const TRAVEL_TAIL = 30;      // events listed as of a past position
const REFRESH_MS = 1000;     // the state panels are re-read at most once a second
const USER_RE = /^[A-Za-z0-9_.@-]*$/;

// ------------------------------------------------------------ formatting
function money(cents) {
  const neg = cents < 0, a = Math.abs(cents);
  return (neg ? '-' : '') + Math.floor(a / 100).toLocaleString('en-US') + '.' +
         String(a % 100).padStart(2, '0');
}
function count(n) { return Number(n).toLocaleString('en-US'); }
// Activation codes are secrets: only the last 4 characters ever reach the page.
function mask(code) { return '****' + String(code == null ? '' : code).slice(-4); }
function parseTime(s) {  // RFC 3339 with microseconds -> ms since the epoch
  if (!s) return NaN;
  return Date.parse(String(s).replace(/(\.\d{3})\d+/, '$1'));
}
function pad(n) { return String(n).padStart(2, '0'); }
function localInput(ms) {  // value for <input type=datetime-local step=1>
  const d = new Date(ms);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' +
         pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}
function clock(s) {
  const ms = parseTime(s);
  if (isNaN(ms)) return '';
  const d = new Date(ms);
  return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}
function stamp(s) {
  const ms = parseTime(s);
  return isNaN(ms) ? '' : localInput(ms).replace('T', ' ');
}
// Builds an element; children are nodes or strings (always text, never HTML).
// No style strings (the CSP allows no inline style): use a class, or set
// element.style.<property> on the result.
function h(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || (v === false && !k.startsWith('data-'))) continue;
    if (k === 'style' || /^on/i.test(k)) throw new Error('h(): no ' + k + ' (the CSP allows no inline style or handler)');
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}

// ------------------------------------------------------------ state
const S = {
  token: '',
  mode: 'live',          // 'live' follows the head; 'travel' shows S.at
  at: 0,
  head: 0,               // last log position known to the page
  seen: 0,               // last event position received
  ring: [],              // sanitized events, oldest first
  state: null,           // /api/admin/state answer (+ live events applied)
  wallets: null,
  purchases: null,
  travelTail: [],
  shownAt: -1,           // the position every panel shows in time travel (-1: none yet)
  tailPrimed: false,     // the first tail render marks nothing as new
  cardsFrom: '', cardsBack: [],
  walletQ: '', walletFrom: '', walletBack: [],
};
const seq = { state: 0, wallets: 0, purchases: 0, tail: 0 };  // newest answer wins

class Unauthorized extends Error {}
class Gone extends Error {}

async function api(path) {
  const headers = { Accept: 'application/json' };
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  let res;
  try {
    res = await fetch(path, { headers, cache: 'no-store' });
  } catch (e) {
    throw new Error('cannot reach the server');
  }
  if (res.status === 401) throw new Unauthorized();
  if (!res.ok) {
    let detail = 'HTTP ' + res.status;
    try { const p = await res.json(); if (p.detail) detail += ': ' + p.detail; } catch (e) {}
    throw new Error(detail);
  }
  return res.json();
}

function showError(msg) {
  $('error').textContent = msg || '';
  $('error').hidden = !msg;
}
function fail(e) {
  if (e instanceof Unauthorized) return askToken('The token was rejected. Enter it again.');
  if (e instanceof Gone) return;
  showError(String(e && e.message || e));
}

// ------------------------------------------------------------ events
// Keeps what the page shows of an event; codes leave here masked or counted.
function sanitize(raw) {
  const d = raw.data || {};
  const out = { position: raw.position, type: raw.type, stream: raw.stream,
                recorded_at: raw.recorded_at, d: {} };
  const o = out.d;
  for (const k of ['card_id', 'user_id', 'purchase_id', 'name', 'price', 'value', 'amount',
                   'balance_after'])
    if (d[k] !== undefined) o[k] = d[k];
  if (d.code !== undefined) o.code = mask(d.code);
  if (Array.isArray(d.codes)) o.n = d.codes.length;
  return out;
}

function summary(ev) {
  const d = ev.d;
  switch (ev.type) {
    case 'CardCreated': return 'card ' + d.card_id + ' "' + d.name + '" at ' + money(d.price);
    case 'CodesAdded': return d.card_id + ': +' + count(d.n) + ' codes';
    case 'CodeAssigned': return d.user_id + ' bought ' + d.card_id + ' for ' + money(d.price) +
                                ', code ' + d.code;
    case 'CodeRevoked': return d.card_id + ': code ' + d.code + ' revoked';
    case 'CodesExpired': return d.card_id + ': ' + count(d.n) + ' codes expired';
    case 'WalletCredited': return d.user_id + ' +' + money(d.amount) + ' \u2192 ' + money(d.balance_after);
    case 'WalletDebited': return d.user_id + ' -' + money(d.amount) + ' \u2192 ' + money(d.balance_after);
    default: return ev.stream || '';
  }
}

// Folds one event into the cards page and the totals (as the server's fold does).
// Only answers read for the live view take live events (st.live).
function applyToState(st, ev) {
  if (!st || !st.live || ev.position <= st.position) return;
  st.position = ev.position;
  st.head = Math.max(st.head, ev.position);
  st.recorded_at = ev.recorded_at;
  const d = ev.d, t = st.totals;
  const c = d.card_id !== undefined ? st.cards.find((x) => x.id === d.card_id) : null;
  switch (ev.type) {
    case 'CardCreated': t.cards += 1; break;  // listed by the next refresh
    case 'CodesAdded': t.codes_available += d.n; if (c) c.available += d.n; break;
    case 'CodeAssigned':
      t.codes_available -= 1; t.codes_sold += 1; t.revenue += d.price;
      if (c) { c.available -= 1; c.assigned += 1; c.sold += 1; c.revenue += d.price; }
      break;
    case 'CodeRevoked': t.codes_available -= 1; if (c) { c.available -= 1; c.revoked += 1; } break;
    case 'CodesExpired':
      t.codes_available -= d.n;
      if (c) { c.available -= d.n; c.expired += d.n; }
      break;
    case 'WalletCredited': t.wallet_float += d.amount; break;
    case 'WalletDebited': t.wallet_float -= d.amount; break;
  }
}
function applyToWallets(ws, ev) {
  if (!ws || !ws.live || ev.position <= ws.position) return;
  if (ev.type !== 'WalletCredited' && ev.type !== 'WalletDebited') return;
  const w = ws.wallets.find((x) => x.user_id === ev.d.user_id);
  if (w) { w.balance = ev.d.balance_after; w.existed = true; }
}
function applyToPurchases(ps, ev) {
  if (!ps || !ps.live || ev.position <= ps.position || ev.type !== 'CodeAssigned') return;
  if (ps.purchases.some((p) => p.purchase_id === ev.d.purchase_id)) return;
  ps.purchases.unshift({ purchase_id: ev.d.purchase_id, card_id: ev.d.card_id,
                         user_id: ev.d.user_id, code: ev.d.code, price: ev.d.price,
                         purchased_at: ev.recorded_at, position: ev.position });
  ps.purchases.length = Math.min(ps.purchases.length, PURCHASES_N);
}
// Re-applies what arrived after an answer's position; false if the ring has a gap.
function catchUp(answer, apply) {
  if (!answer) return true;
  const from = answer.position;
  if (S.seen > from && (S.ring.length === 0 || S.ring[0].position > from + 1)) return false;
  for (const ev of S.ring) if (ev.position > from) apply(answer, ev);
  return true;
}

function onEvent(ev) {
  if (ev.position <= S.seen) return;  // a reconnect may repeat a few
  S.seen = ev.position;
  S.head = Math.max(S.head, ev.position);
  S.ring.push(ev);
  if (S.ring.length > RING) S.ring.splice(0, S.ring.length - RING);
  if (S.mode === 'live') {
    applyToState(S.state, ev);
    applyToWallets(S.wallets, ev);
    applyToPurchases(S.purchases, ev);
    scheduleRefresh();
  }
  queueRender();
}

// ------------------------------------------------------------ the stream
// EventSource cannot send a bearer token: read the SSE stream with fetch.
let stream = null;  // { ctrl }
function stopStream() {
  if (stream) stream.ctrl.abort();
  stream = null;
}
async function runStream() {
  stopStream();
  const me = { ctrl: new AbortController() };
  stream = me;
  let resumeFrom = true;
  while (stream === me) {
    const url = '/api/events/stream' + (resumeFrom ? '?from=' + (S.seen + 1) : '');
    let buf = '', backfillRefused = false;
    try {
      const headers = { Accept: 'text/event-stream' };
      if (S.token) headers.Authorization = 'Bearer ' + S.token;
      const res = await fetch(url, { headers, signal: me.ctrl.signal, cache: 'no-store' });
      if (res.status === 401) { if (stream === me) askToken('The token was rejected. Enter it again.'); return; }
      // 400 (or an 'error' frame): the server will not backfill that far.
      if (res.status === 400 && resumeFrom) throw new Gone();
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      setConn('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stream !== me) break;
        // One split per chunk (a chunk may hold thousands of frames).
        const frames = (buf + value.replace(/\r\n?/g, '\n')).split('\n\n');
        buf = frames.pop();
        for (const frame of frames) {
          if (handleFrame(frame) === 'refused') { backfillRefused = true; me.ctrl.abort(); break; }
        }
        if (backfillRefused) break;
      }
    } catch (e) {
      if (stream !== me) return;
      if (e instanceof Gone) backfillRefused = true;
    }
    if (stream !== me) return;
    if (backfillRefused) {  // too far behind to resume: start over from the head
      resumeFrom = false;
      me.ctrl = new AbortController();
      S.ring = [];
      S.seen = 0;
      loadTailFromLog(S.head).catch(fail);
      refreshNow();
      continue;
    }
    setConn('down');
    await new Promise((r) => setTimeout(r, 1000));
    resumeFrom = true;
  }
}
// Handles one SSE frame; 'refused' if the server would not backfill.
function handleFrame(frame) {
  let type = 'message', data = '';
  for (const line of frame.split('\n')) {
    if (line === '' || line[0] === ':') continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let val = c < 0 ? '' : line.slice(c + 1);
    if (val[0] === ' ') val = val.slice(1);
    if (field === 'event') type = val;
    else if (field === 'data') data += (data ? '\n' : '') + val;
  }
  if (type === 'error') return 'refused';
  if (!data) return '';
  let raw;
  try { raw = JSON.parse(data); } catch (e) { return ''; }
  if (typeof raw.position === 'number') onEvent(sanitize(raw));
  return '';
}
function setConn(what) {
  const p = $('conn');
  p.hidden = false;
  p.className = 'pill ' + what;
  p.textContent = what === 'live' ? 'stream connected' : what === 'down' ? 'reconnecting' : 'connecting';
}

// ------------------------------------------------------------ loading
function atParam() { return S.mode === 'travel' ? '&at=' + S.at : ''; }

async function loadCards() {
  const me = ++seq.state;
  const st = await api('/api/admin/state?limit=' + CARDS_PAGE +
                       '&cards_from=' + encodeURIComponent(S.cardsFrom) + atParam());
  if (me !== seq.state) throw new Gone();
  st.live = S.mode === 'live';
  S.head = Math.max(S.head, st.head);
  if (S.mode === 'live' && !catchUp(st, applyToState)) scheduleRefresh();
  S.state = st;
}
async function loadWallets() {
  const me = ++seq.wallets;
  const ws = await api('/api/admin/wallets?limit=' + WALLETS_PAGE + '&q=' +
                       encodeURIComponent(S.walletQ) + '&from=' + encodeURIComponent(S.walletFrom) +
                       atParam());
  if (me !== seq.wallets) throw new Gone();
  ws.live = S.mode === 'live';
  if (S.mode === 'live' && !catchUp(ws, applyToWallets)) scheduleRefresh();
  S.wallets = ws;
}
async function loadPurchases() {
  const me = ++seq.purchases;
  const ps = await api('/api/admin/purchases?limit=' + PURCHASES_N + atParam());
  if (me !== seq.purchases) throw new Gone();
  ps.live = S.mode === 'live';
  for (const p of ps.purchases) p.code = mask(p.code);
  if (S.mode === 'live' && !catchUp(ps, applyToPurchases)) scheduleRefresh();
  S.purchases = ps;
}
async function eventsBefore(p, n) {  // the n events up to position p, sanitized
  const from = Math.max(1, p - n + 1);
  if (p < 1) return [];
  const r = await api('/api/events?from=' + from + '&limit=' + (p - from + 1));
  return r.events.map(sanitize);
}
async function loadTravelTail() {
  const me = ++seq.tail;
  const evs = await eventsBefore(S.at, TRAVEL_TAIL);
  if (me !== seq.tail) throw new Gone();
  S.travelTail = evs;
}
// Merges events into the ring (by position, once each).
function addToRing(evs) {
  const have = new Set(S.ring.map((e) => e.position));
  for (const ev of evs) if (!have.has(ev.position)) S.ring.push(ev);
  S.ring.sort((a, b) => a.position - b.position);
  if (S.ring.length > RING) S.ring.splice(0, S.ring.length - RING);
  if (S.ring.length) S.seen = Math.max(S.seen, S.ring[S.ring.length - 1].position);
}
async function loadTailFromLog(p) {  // the live tail's first lines: the 50 events up to p
  addToRing(await eventsBefore(p, 50));
  S.seen = Math.max(S.seen, p);
  queueRender();
}

let refreshTimer = null, lastRefresh = 0, refreshing = false, refreshAgain = false, lagRetries = 0;
function scheduleRefresh() {
  if (S.mode !== 'live' || refreshTimer) return;
  const wait = Math.max(0, lastRefresh + REFRESH_MS - Date.now());
  refreshTimer = setTimeout(() => { refreshTimer = null; refreshNow(); }, wait);
}
async function refreshNow() {
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  lastRefresh = Date.now();
  try {
    if (S.mode === 'live') {
      await Promise.all([loadCards(), loadWallets(), loadPurchases()]);
      // Wallets and purchases come from the projections, which trail the log
      // by a moment: look again shortly if they were behind the cards.
      const behind = S.wallets.position < S.state.position || S.purchases.position < S.state.position;
      if (behind && lagRetries < 5) { lagRetries++; refreshAgain = true; } else lagRetries = 0;
    } else {
      await Promise.all([loadCards(), loadWallets(), loadPurchases(), loadTravelTail()]);
    }
    showError('');
    render();
  } catch (e) {
    fail(e);
  } finally {
    refreshing = false;
    if (refreshAgain) { refreshAgain = false; scheduleRefresh(); }
  }
}
async function reload(what) {  // one panel, after paging or searching
  try { await what(); render(); } catch (e) { fail(e); }
}

// ------------------------------------------------------------ time travel
let travelTimer = null;
function goTo(p, soon) {
  p = Math.max(0, Math.min(S.head, Math.floor(Number(p) || 0)));
  S.mode = 'travel';
  S.at = p;
  S.shownAt = -1;
  for (const k in seq) seq[k]++;  // answers for the live view are dropped
  if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; }
  document.body.classList.add('travel');
  renderTravelBar();
  clearTimeout(travelTimer);
  travelTimer = setTimeout(loadTravel, soon ? 0 : 120);
}
async function loadTravel() {
  if (S.mode !== 'travel') return;
  const at = S.at;
  try {
    await Promise.all([loadCards(), loadWallets(), loadPurchases(), loadTravelTail()]);
    if (S.mode === 'travel' && S.at === at) S.shownAt = at;  // every panel is as of `at`
    showError('');
    render();
  } catch (e) { fail(e); }
}
function goLive() {
  S.mode = 'live';
  S.shownAt = -1;
  document.body.classList.remove('travel');
  for (const k in seq) seq[k]++;
  refreshNow();
  render();
}
// The last position recorded at or before ms (0: before the first event).
async function positionAt(ms) {
  let lo = 0, hi = S.head;
  while (lo < hi) {
    const mid = Math.floor((lo + hi + 1) / 2);
    const r = await api('/api/events?from=' + mid + '&limit=1');
    const t = r.events.length ? parseTime(r.events[0].recorded_at) : Infinity;
    if (t <= ms) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// ------------------------------------------------------------ rendering
let renderTimer = null;
function queueRender() {
  if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = null; render(); }, 16);
}
function fill(tbody, rows, empty, cols) {
  tbody.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { class: 'empty', colSpan: cols }, empty))]));
}

function renderTravelBar() {
  const sl = $('slider');
  sl.max = String(S.head);
  const p = S.mode === 'live' ? S.head : S.at;
  if (document.activeElement !== sl || S.mode === 'live') sl.value = String(p);
  if (document.activeElement !== $('pos-input')) $('pos-input').value = String(p);
  $('pos-input').max = String(S.head);
  $('live-btn').classList.toggle('on', S.mode === 'live');
  const mp = $('mode-pill');
  mp.hidden = false;
  mp.textContent = S.mode === 'live' ? 'live' : 'time travel';
  mp.className = 'pill ' + (S.mode === 'live' ? 'live' : '');
  const st = S.state;
  let text;
  if (S.mode === 'live') {
    text = 'Live: following the head of the log, position ' + count(S.head) + '.';
  } else {
    if (S.shownAt === S.at && st) {
      text = 'Time travel: every panel shows the shop as of position ' + count(S.at) + ' of ' +
             count(S.head);
      if (st.recorded_at) text += ', recorded ' + stamp(st.recorded_at);
      text += ' (a checkpoint + ' + count(st.replayed) + ' replayed events). Live returns to the head.';
    } else {
      text = 'Time travel: loading position ' + count(S.at) + ' of ' + count(S.head) + '\u2026';
    }
  }
  $('asof').textContent = text;
  document.querySelector('main').classList.toggle('stale', S.mode === 'travel' && S.shownAt !== S.at);
  if (st && st.recorded_at && document.activeElement !== $('time-input'))
    $('time-input').value = localInput(parseTime(st.recorded_at));
}

function renderTotals() {
  const t = S.state && S.state.totals;
  $('t-cards').textContent = t ? count(t.cards) : '';
  $('t-available').textContent = t ? count(t.codes_available) : '';
  $('t-sold').textContent = t ? count(t.codes_sold) : '';
  $('t-revenue').textContent = t ? money(t.revenue) : '';
  $('t-float').textContent = t ? money(t.wallet_float) : '';
}

const KINDS = ['available', 'assigned', 'expired', 'revoked'];
function cardRow(c) {
  const total = KINDS.reduce((s, k) => s + Math.max(0, c[k]), 0);
  const low = total > 0 && c.available > 0 && c.available < Math.max(10, total * 0.1);
  const out = total > 0 && c.available <= 0;
  const bar = h('div', { class: 'bar', title: KINDS.map((k) => c[k] + ' ' + k).join(', ') },
                ...KINDS.filter((k) => c[k] > 0).map((k) => {
                  const seg = h('span', { class: k, 'data-kind': k, 'data-count': c[k] });
                  seg.style.flexGrow = String(c[k]);  // CSSOM, not a style attribute: allowed by the CSP
                  return seg;
                }));
  const legend = h('div', { class: 'legend' });
  for (const k of KINDS) {
    legend.append(h('i', { class: k }),  // coloured by app.css
                  count(c[k]) + ' ' + k);
  }
  return h('tr', { class: 'card-row' + (low ? ' low' : '') + (out ? ' out' : ''),
                   'data-card': c.id, 'data-available': c.available, 'data-assigned': c.assigned,
                   'data-expired': c.expired, 'data-revoked': c.revoked, 'data-sold': c.sold },
    h('td', {}, h('div', { class: 'mono' }, c.id), h('div', { class: 'sub' }, c.name)),
    h('td', { class: 'num' }, money(c.price)),
    h('td', { class: 'num' }, money(c.value)),
    h('td', { class: 'stock' }, total ? bar : h('div', { class: 'sub' }, 'no codes'), total ? legend : null),
    h('td', { class: 'num' }, count(c.sold)),
    h('td', { class: 'num' }, money(c.revenue)),
    h('td', {}, out ? h('span', { class: 'badge out' }, 'sold out') :
                low ? h('span', { class: 'badge low' }, 'low stock') : null));
}
function renderCards() {
  const st = S.state;
  const cards = st ? st.cards : [];
  fill($('cards'), cards.map(cardRow), st ? 'no cards' : '', 7);
  $('cards-prev').disabled = S.cardsBack.length === 0;
  $('cards-next').disabled = !(st && st.next_card);
  $('cards-note').textContent = st ? (S.cardsFrom ? 'from ' + S.cardsFrom + ' \u00b7 ' : '') +
      count(cards.length) + ' of ' + count(st.totals.cards) + ' shown' : '';
}
function renderWallets() {
  const ws = S.wallets;
  const rows = (ws ? ws.wallets : []).map((w) =>
    h('tr', { 'data-user': w.user_id, 'data-balance': w.balance, 'data-existed': w.existed },
      h('td', { class: 'mono' }, w.user_id),
      h('td', { class: 'num' + (w.existed ? '' : ' muted'), title: w.existed ? null : 'no wallet yet at this position' },
        w.existed ? money(w.balance) : '\u2014')));
  fill($('wallets'), rows, ws ? (S.walletQ ? 'no wallet starts with "' + S.walletQ + '"' : 'no wallets') : '', 2);
  $('wallets-prev').disabled = S.walletBack.length === 0;
  $('wallets-next').disabled = !(ws && ws.next);
  $('wallets-note').textContent = ws ? 'page of ' + WALLETS_PAGE + ', searched on the server' : '';
}
function renderPurchases() {
  const ps = S.purchases;
  const rows = (ps ? ps.purchases : []).map((p) =>
    h('tr', { 'data-purchase': p.purchase_id, 'data-position': p.position },
      h('td', { title: stamp(p.purchased_at) }, clock(p.purchased_at)),
      h('td', { class: 'mono' }, p.user_id),
      h('td', { class: 'mono' }, p.card_id),
      h('td', { class: 'num' }, money(p.price)),
      h('td', { class: 'mono' }, mask(p.code))));
  fill($('purchases'), rows, ps ? 'no purchases' : '', 5);
  $('purchases-note').textContent = ps ? 'newest first' : '';
}
let tailShownUpTo = 0;  // the live tail marks events after this as new
function renderTail() {
  const live = S.mode === 'live';
  const evs = live ? S.ring.slice(-TAIL_SHOWN) : S.travelTail;
  const items = evs.slice().reverse().map((ev) => {
    const li = h('li', { class: 'ev', 'data-position': ev.position, 'data-type': ev.type },
      h('span', { class: 'num mono muted' }, '#' + ev.position),
      h('span', { class: 'type t-' + ev.type, title: stamp(ev.recorded_at) }, ev.type),
      h('span', { title: stamp(ev.recorded_at) + ' \u00b7 ' + (ev.stream || '') }, summary(ev)));
    if (live && S.tailPrimed && ev.position > tailShownUpTo) li.classList.add('fresh');
    return li;
  });
  if (live && evs.length) {
    tailShownUpTo = Math.max(tailShownUpTo, evs[evs.length - 1].position);
    S.tailPrimed = true;
  }
  $('tail').replaceChildren(...items);
  if (!items.length) $('tail').append(h('li', { class: 'empty' }, 'no events'));
  $('tail-note').textContent = live ? 'live, newest first' : 'up to position ' + count(S.at);
}
function render() {
  if ($('app').hidden) return;
  // Positions only (no data): what the panels are as of, for tests and curious admins.
  $('app').dataset.seen = S.seen;
  $('app').dataset.state = S.state ? S.state.position : '';
  renderTravelBar();
  renderTotals();
  renderCards();
  renderWallets();
  renderPurchases();
  renderTail();
}

// ------------------------------------------------------------ the token
function wipe() {
  stopStream();
  if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; }
  for (const k in seq) seq[k]++;
  Object.assign(S, { mode: 'live', at: 0, head: 0, seen: 0, ring: [], state: null, wallets: null,
                     purchases: null, travelTail: [], shownAt: -1, cardsFrom: '', cardsBack: [],
                     walletQ: '', walletFrom: '', walletBack: [], tailPrimed: false });
  tailShownUpTo = 0;
  document.body.classList.remove('travel');
  for (const id of ['cards', 'wallets', 'purchases', 'tail', 't-cards', 't-available', 't-sold',
                    't-revenue', 't-float', 'asof', 'cards-note', 'wallets-note', 'purchases-note',
                    'tail-note'])
    $(id).replaceChildren();
  $('wallet-q').value = '';
  $('cards-jump').value = '';
  $('time-input').value = '';
  $('pos-input').value = '';
  $('conn').hidden = true;
  $('mode-pill').hidden = true;
}
function askToken(msg) {
  wipe();
  S.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  $('app').hidden = true;
  $('signout').hidden = true;
  $('login').hidden = false;
  showError('');
  $('login-error').textContent = msg || '';
  $('token').value = '';
  $('token').focus();
}
async function openApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = !S.token;
  setConn('connecting');
  try {
    await loadCards();
    await loadTailFromLog(S.state.position);
    await Promise.all([loadWallets(), loadPurchases()]);
    render();
  } catch (e) {
    return fail(e);
  }
  runStream();
}
// The data endpoints answer 401 to a missing or wrong token; an open server
// (no --admin-token) answers without one.
async function tokenWorks() {
  try {
    await api('/api/admin/purchases?limit=1');
    return true;
  } catch (e) {
    if (e instanceof Unauthorized) return false;
    throw e;
  }
}
$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  S.token = t;
  $('login-error').textContent = 'checking\u2026';
  try {
    if (!(await tokenWorks())) {
      S.token = '';
      $('login-error').textContent = 'That token was rejected (401).';
      $('token').select();
      return;
    }
  } catch (err) {
    S.token = '';
    $('login-error').textContent = String(err.message || err);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, t);
  $('token').value = '';
  $('login-error').textContent = '';
  openApp();
});
$('signout').addEventListener('click', () => askToken(''));

// ------------------------------------------------------------ controls
$('live-btn').addEventListener('click', goLive);
$('slider').addEventListener('input', () => goTo($('slider').value, false));
$('slider').addEventListener('change', () => goTo($('slider').value, true));
$('pos-input').addEventListener('change', () => goTo($('pos-input').value, true));
$('pos-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') goTo($('pos-input').value, true); });
let timeSeq = 0;
$('time-input').addEventListener('change', async () => {
  const v = $('time-input').value;
  if (!v) return;
  const ms = new Date(v).getTime();  // datetime-local: the browser's local time
  if (isNaN(ms)) return;
  const me = ++timeSeq;
  try {
    const p = await positionAt(ms);
    if (me === timeSeq) goTo(p, true);
  } catch (e) { fail(e); }
});
$('cards-next').addEventListener('click', () => {
  if (!S.state || !S.state.next_card) return;
  S.cardsBack.push(S.cardsFrom);
  S.cardsFrom = S.state.next_card;
  reload(loadCards);
});
$('cards-prev').addEventListener('click', () => {
  if (!S.cardsBack.length) return;
  S.cardsFrom = S.cardsBack.pop();
  reload(loadCards);
});
let jumpTimer = null;
$('cards-jump').addEventListener('input', () => {
  clearTimeout(jumpTimer);
  jumpTimer = setTimeout(() => {
    S.cardsFrom = $('cards-jump').value.trim();
    S.cardsBack = [];
    reload(loadCards);
  }, 250);
});
let searchTimer = null;
$('wallet-q').addEventListener('input', () => {
  clearTimeout(searchTimer);
  const q = $('wallet-q').value.trim();
  if (!USER_RE.test(q)) { $('wallets-note').textContent = 'only A-Z a-z 0-9 _ . @ -'; return; }
  searchTimer = setTimeout(() => {
    S.walletQ = q;
    S.walletFrom = '';
    S.walletBack = [];
    reload(loadWallets);
  }, 250);
});
$('wallets-next').addEventListener('click', () => {
  if (!S.wallets || !S.wallets.next) return;
  S.walletBack.push(S.walletFrom);
  S.walletFrom = S.wallets.next;
  reload(loadWallets);
});
$('wallets-prev').addEventListener('click', () => {
  if (!S.walletBack.length) return;
  S.walletFrom = S.walletBack.pop();
  reload(loadWallets);
});

// ------------------------------------------------------------ start
$('tz').textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
(async () => {
  S.token = sessionStorage.getItem(TOKEN_KEY) || '';
  try {
    if (await tokenWorks()) return openApp();
    askToken(S.token ? 'The saved token was rejected. Enter it again.' : '');
  } catch (e) {
    showError(String(e.message || e));
  }
})();
})();
