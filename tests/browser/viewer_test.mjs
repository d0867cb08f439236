#!/usr/bin/env node
// The admin viewer (GET /admin, docs/CONTRACT.md, "Admin viewer") in a real headless browser: Debian's
// Chromium driven by playwright-core.
//
//   node viewer_test.mjs GIFTCARD_BINARY [--screenshots[=DIR]]
//
// Starts `giftcard serve --demo` on free loopback ports with a random admin
// token, drives the page and checks:
//   - without the token, or with a wrong one, the page asks for it and shows no data;
//   - with it, the page shows the demo catalog (3 cards), totals and wallets;
//   - a purchase made through the API appears in the live tail and in its card's
//     stock bar within 1 s, without a reload;
//   - a burst of purchases turns a card "low stock", and the state panels are
//     re-read at most about once a second meanwhile;
//   - the slider, the position field and the date-time field show the stock,
//     balances, purchases and log as of an earlier position; events arriving
//     meanwhile do not disturb it, and "Live" returns to the head;
//   - no full activation code (nor its part before the last 4 characters) ever
//     appears in the DOM;
//   - the page works under its strict Content-Security-Policy (issue #14): GET
//     /admin sends a CSP without 'unsafe-inline' or 'unsafe-eval' (script and
//     style from 'self' only, frame-ancestors 'none'), nosniff, no-referrer and
//     DENY; the markup has no inline script, style, style= or on...= attribute;
//     /admin/app.js and /admin/app.css are public with the right types; the page
//     loads nothing from elsewhere; and not one CSP violation is reported during
//     the whole run (securitypolicyviolation events, collected by an init
//     script, and console errors naming the Content Security Policy). A canary
//     in a separate tab shows that the collector does see violations;
//   - the server stops cleanly (SIGTERM, exit 0).
// With --screenshots it saves PNGs of the main views (default: ../../docs).
// Exit status 0 when every check passed; otherwise 1 with the failed check.

import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const binary = args.find((a) => !a.startsWith('--'));
const shotArg = args.find((a) => a.startsWith('--screenshots'));
const shotDir = shotArg ? path.resolve(shotArg.includes('=') ? shotArg.split('=')[1] : path.join(here, '../../docs')) : null;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const LIVE_MS = 1000;  // a purchase must show within this, without reload

if (!binary) {
  console.error('usage: node viewer_test.mjs GIFTCARD_BINARY [--screenshots[=DIR]]');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`FAIL: no Chromium at ${CHROMIUM}: run \`make browser-deps\` (apt-get install chromium)`);
  process.exit(1);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error('FAIL: playwright-core is not installed: run `make browser-deps` (npm ci in tests/browser)');
  process.exit(1);
}

let passed = 0;
function ok(what) {
  passed++;
  console.log('ok ' + passed + ' - ' + what);
}
class CheckFailed extends Error {}
function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ the CSP
// Every violation the browser reports, from two sides: the page's
// `securitypolicyviolation` events (an init script, installed before any of
// the page's own, hands them to the test) and console errors naming the
// Content Security Policy (Chromium logs each blocked inline script, style,
// handler, eval or load there).
async function watchCsp(context, sink) {
  await context.exposeBinding('__giftcardCspViolation', (source, v) => sink.push(v));
  await context.addInitScript(() => {
    const report = window.__giftcardCspViolation;
    document.addEventListener('securitypolicyviolation', (e) => report({
      from: 'event', directive: e.effectiveDirective || e.violatedDirective, blocked: e.blockedURI,
      source: e.sourceFile, line: e.lineNumber, sample: e.sample, disposition: e.disposition,
    }), true);
  });
  context.on('console', (m) => {
    if (m.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(m.text()))
      sink.push({ from: 'console', text: m.text(), at: m.location() && m.location().url });
  });
}
const showViolations = (vs) => vs.slice(0, 5).map((v) => JSON.stringify(v)).join(' | ') +
  (vs.length > 5 ? ` (and ${vs.length - 5} more)` : '');
// "a b; c d" -> { a: ['b'], c: ['d'] }
function parseCsp(header) {
  const out = {};
  for (const part of String(header || '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out[name.toLowerCase()] = values;
  }
  return out;
}

// ------------------------------------------------------------ the server
const dataDir = mkdtempSync(path.join(tmpdir(), 'giftcard-viewer-'));
const token = randomBytes(18).toString('hex');
let server = null, serverErr = '', serverExit = null;

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(binary, ['serve', '--data', dataDir, '--demo', '--http', '127.0.0.1:0',
                            '--caf', '127.0.0.1:0', '--admin-token', token],
                   { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('no "ready" line from giftcard serve in 90 s')), 90000);
    server.stderr.on('data', (b) => { serverErr += b; if (serverErr.length > 200000) serverErr = serverErr.slice(-100000); });
    server.stdout.on('data', (b) => {
      out += b;
      const m = /^ready http=(\S+) /m.exec(out);
      if (m) { clearTimeout(timer); resolve('http://' + m[1]); }
    });
    server.on('error', (e) => { clearTimeout(timer); reject(e); });
    server.on('exit', (code, sig) => {
      serverExit = { code, sig };
      clearTimeout(timer);
      reject(new Error('giftcard serve exited early (' + (sig || code) + ')'));
    });
  });
}
async function stopServer() {
  if (!server || serverExit) return serverExit;
  const exited = new Promise((r) => server.once('exit', (code, sig) => r({ code, sig })));
  server.kill('SIGTERM');
  const t = setTimeout(() => server.kill('SIGKILL'), 60000);
  serverExit = await exited;
  clearTimeout(t);
  return serverExit;
}

// ------------------------------------------------------------ the API
let base = '';
const codes = new Set();  // every full activation code the test has seen
async function call(method, route, body, headers = {}) {
  const res = await fetch(base + route, {
    method,
    headers: { Authorization: 'Bearer ' + token, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: res.status, json, text };
}
async function purchase(card, user) {
  const r = await call('POST', '/api/purchases', { card_id: card, user_id: user },
                       { 'Idempotency-Key': randomUUID() });
  check(r.status === 201, `POST /api/purchases ${card} for ${user}: expected 201, got ${r.status} ${r.text}`);
  codes.add(r.json.code);
  return r.json;
}
async function credit(user, amount) {
  const r = await call('POST', `/api/wallets/${user}/credits`, { amount }, { 'Idempotency-Key': randomUUID() });
  check(r.status === 201, `credit ${user}: expected 201, got ${r.status} ${r.text}`);
  return r.json;
}
async function collectCodesFromLog() {  // CodesAdded and CodeAssigned carry full codes
  for (let from = 1; ;) {
    const r = await call('GET', `/api/events?from=${from}&limit=1000`);
    check(r.status === 200, 'GET /api/events: ' + r.status);
    for (const e of r.json.events) {
      if (e.data && Array.isArray(e.data.codes)) for (const c of e.data.codes) codes.add(c.code || c);
      if (e.data && typeof e.data.code === 'string') codes.add(e.data.code);
    }
    if (r.json.events.length < 1000) return;
    from = r.json.next;
  }
}
async function head() {
  const r = await call('GET', '/healthz');
  return r.json.position;
}

// ------------------------------------------------------------ the page
let page = null;
async function dataInDom() {  // demo data that must not show without the token
  const html = await page.content();
  return ['steam-50', 'netflix-25', 'spotify-10', 'alice', 'carol', 'Steam Wallet', 'Spotify Premium']
    .filter((s) => html.includes(s));
}
async function noFullCodes(when) {
  const html = await page.content();
  const text = await page.evaluate(() => document.body.innerText);
  check(codes.size > 0, 'no codes collected to look for');
  for (const c of codes) {
    const head = c.slice(0, -4);
    check(!html.includes(c) && !text.includes(c), `${when}: a full code (${c.slice(-4)} at the end) is in the DOM`);
    check(!html.includes(head), `${when}: the hidden part of a code (…${c.slice(-4)}) is in the DOM`);
  }
  ok(`${when}: none of ${codes.size} full codes is in the DOM`);
}
// Waits until fn(arg) is true in the page; fails with `what` and a look at the page.
async function until(what, fn, arg, timeout = 5000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 20 });
  } catch (e) {
    const seen = await page.evaluate(() => ({
      asof: document.getElementById('asof')?.textContent,
      seen: document.getElementById('app')?.dataset.seen,
      state: document.getElementById('app')?.dataset.state,
      conn: document.getElementById('conn')?.textContent,
      tail: [...document.querySelectorAll('#tail li[data-position]')].slice(0, 3).map((l) => l.dataset.position + l.dataset.type),
      cards: [...document.querySelectorAll('tr[data-card]')].map((r) => r.dataset.card + ':' + r.dataset.available),
      wallets: [...document.querySelectorAll('tr[data-user]')].map((r) => r.dataset.user + ':' + r.dataset.balance),
      error: document.getElementById('error')?.textContent,
      login: document.getElementById('login-error')?.textContent,
    })).catch(() => ({}));
    throw new CheckFailed(`${what} (not within ${timeout} ms; the page shows ${JSON.stringify(seen)})`);
  }
}
const cardIs = (id, avail) => until(`card ${id} shows ${avail} available`,
  ([id, avail]) => document.querySelector(`tr[data-card="${id}"]`)?.dataset.available === String(avail), [id, avail]);
const walletText = (user) => page.evaluate((u) =>
  document.querySelector(`tr[data-user="${u}"] td.num`)?.textContent, user);
async function shot(name, clip) {
  if (!shotDir) return;
  mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: path.join(shotDir, name), ...(clip ? { clip } : { fullPage: true }) });
  console.log('screenshot ' + path.join(shotDir, name));
}
async function slideTo(p) {  // with the keyboard, as a person would
  const slider = page.locator('#slider');
  await slider.focus();
  await slider.press('Home');
  for (let i = 0; i < p; i++) await slider.press('ArrowRight');
}

// ------------------------------------------------------------ the checks
async function run() {
  const t0 = Date.now();
  base = await startServer();
  ok(`giftcard serve is up at ${base} (demo catalog, admin token set)`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-dev-shm-usage',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, timezoneId: 'UTC', locale: 'en-US' });
    const cspViolations = [];
    await watchCsp(context, cspViolations);
    page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const foreign = [];  // anything the page asks for outside this server
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(base + '/') && !u.startsWith('data:')) foreign.push(u);
    });
    const assets = {};  // /admin/app.js and /admin/app.css as the page got them
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (u.origin === base && /^\/admin\/app\.(js|css)$/.test(u.pathname))
        assets[u.pathname] = { status: r.status(), headers: r.headers() };
    });
    const stateReads = [];
    page.on('request', (r) => { if (r.url().includes('/api/admin/state')) stateReads.push(Date.now()); });

    // --- no token, wrong token
    const adminRes = await page.goto(base + '/admin');
    await page.locator('#login').waitFor({ state: 'visible', timeout: 10000 });

    // --- the headers of GET /admin: a strict CSP (issue #14)
    const hd = adminRes.headers();
    check(adminRes.status() === 200, 'GET /admin: ' + adminRes.status());
    check(/^text\/html\b/.test(hd['content-type'] || ''), 'GET /admin Content-Type: ' + hd['content-type']);
    const cspHeader = hd['content-security-policy'];
    check(cspHeader, 'GET /admin sends no Content-Security-Policy');
    check(!/unsafe-/i.test(cspHeader), "the CSP allows something 'unsafe-…': " + cspHeader);
    const csp = parseCsp(cspHeader);
    const directive = (name, want) => check(JSON.stringify(csp[name]) === JSON.stringify(want),
      `CSP ${name} should be ${want.join(' ')}, is ${csp[name] ? csp[name].join(' ') : '(missing)'}: ${cspHeader}`);
    directive('default-src', ["'none'"]);
    directive('script-src', ["'self'"]);
    directive('style-src', ["'self'"]);
    directive('connect-src', ["'self'"]);
    directive('frame-ancestors', ["'none'"]);
    directive('base-uri', ["'none'"]);
    directive('form-action', ["'none'"]);
    for (const d of Object.keys(csp))
      check(!csp[d].some((v) => v === '*' || /^(https?:|ws:|wss:)$/i.test(v) || /^'(nonce|sha\d+)-/.test(v)),
            `CSP ${d} is wider than needed: ${csp[d].join(' ')}`);
    check(hd['x-content-type-options'] === 'nosniff', 'X-Content-Type-Options: ' + hd['x-content-type-options']);
    check(hd['referrer-policy'] === 'no-referrer', 'Referrer-Policy: ' + hd['referrer-policy']);
    check(/^deny$/i.test(hd['x-frame-options'] || ''), 'X-Frame-Options: ' + hd['x-frame-options']);
    ok(`GET /admin: CSP "${cspHeader}", nosniff, no-referrer, DENY`);

    // --- the markup holds nothing inline; the script and style are public files
    const markup = await adminRes.text();
    const inline = [];
    for (const m of markup.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi))
      if (!/\bsrc=/.test(m[1]) || m[2].trim()) inline.push('an inline <script>');
    if (/<style\b/i.test(markup)) inline.push('a <style> element');
    if (/\sstyle\s*=/i.test(markup)) inline.push('a style= attribute');
    const handler = /\son[a-z]+\s*=/i.exec(markup);
    if (handler) inline.push('a handler attribute (' + handler[0].trim() + ')');
    if (/javascript:/i.test(markup)) inline.push('a javascript: URL');
    check(inline.length === 0, 'GET /admin holds ' + inline.join(', '));
    check(/<link rel="stylesheet" href="\/admin\/app\.css">/.test(markup) &&
          /<script src="\/admin\/app\.js" defer><\/script>/.test(markup),
          'GET /admin does not load /admin/app.css and /admin/app.js');
    for (const [route, type] of [['/admin/app.js', /^text\/javascript\b/], ['/admin/app.css', /^text\/css\b/]]) {
      const seen = assets[route];
      check(seen && seen.status === 200, `the page got ${route}: ${seen ? seen.status : 'never asked'}`);
      check(type.test(seen.headers['content-type'] || ''), `${route} Content-Type: ${seen.headers['content-type']}`);
      check(seen.headers['x-content-type-options'] === 'nosniff', `${route} X-Content-Type-Options: ${seen.headers['x-content-type-options']}`);
      const plain = await fetch(base + route);  // no token: the files hold no data
      check(plain.status === 200, `${route} without a token: ${plain.status}`);
      const body = await plain.text();
      if (route.endsWith('.js'))
        for (const bad of [/\beval\s*\(/, /new\s+Function\b/, /\.innerHTML\b/, /setAttribute\(\s*['"]style/, /javascript:/,
                           /set(Timeout|Interval)\(\s*['"`]/])
          check(!bad.test(body), `${route} uses ${bad}`);
    }
    ok('the markup has no inline script, style, style= or handler attribute; app.js and app.css are public, typed, nosniff');
    await sleep(300);
    check(await page.locator('#app').isHidden(), 'without a token the data panels are visible');
    let leaked = await dataInDom();
    check(leaked.length === 0, 'without a token the page shows data: ' + leaked.join(', '));
    ok('without a token the page asks for it and shows no data');
    await shot('viewer-login.png', { x: 0, y: 0, width: 1440, height: 460 });

    await page.fill('#token', 'wrong-' + token);
    await page.click('#login-form button[type=submit]');
    await until('a wrong token is refused', () => /rejected/.test(document.getElementById('login-error').textContent));
    leaked = await dataInDom();
    check(leaked.length === 0, 'with a wrong token the page shows data: ' + leaked.join(', '));
    check(await page.locator('#app').isHidden(), 'with a wrong token the data panels are visible');
    check(await page.evaluate(() => sessionStorage.length) === 0, 'a wrong token was kept in sessionStorage');
    ok('with a wrong token the page says so and shows no data');

    // --- the right token: the demo catalog
    await page.fill('#token', token);
    await page.click('#login-form button[type=submit]');
    await until('the demo catalog shows 3 cards', () => document.querySelectorAll('tr[data-card]').length === 3, null, 10000);
    const cards = await page.$$eval('tr[data-card]', (rs) => rs.map((r) => [r.dataset.card, r.dataset.available]));
    check(JSON.stringify(cards) === JSON.stringify([['netflix-25', '500'], ['spotify-10', '500'], ['steam-50', '500']]),
          'demo cards: ' + JSON.stringify(cards));
    await until('totals: 3 cards, 1,500 codes, float 1,520.00', () =>
      document.getElementById('t-cards').textContent === '3' &&
      document.getElementById('t-available').textContent === '1,500' &&
      document.getElementById('t-float').textContent === '1,520.00');
    check(await walletText('alice') === '1,000.00', 'alice shows ' + await walletText('alice'));
    check(await walletText('carol') === '20.00', 'carol shows ' + await walletText('carol'));
    await until('the live tail shows the demo events', () =>
      document.querySelectorAll('#tail li[data-type=CardCreated]').length === 3 &&
      document.querySelectorAll('#tail li[data-type=WalletCredited]').length === 3);
    await until('the event stream is connected', () => document.getElementById('conn').textContent === 'stream connected');
    ok('with the token the page shows the demo catalog (3 cards), totals, wallets and the log');
    const looks = await page.evaluate(() => {
      const cs = (el) => getComputedStyle(el);
      const seg = document.querySelector('tr[data-card="steam-50"] .bar span.available');
      const dot = document.querySelector('tr[data-card="steam-50"] .legend i.available');
      return {
        header: cs(document.querySelector('header')).display,
        search: cs(document.getElementById('wallet-q')).marginBottom,
        grow: seg && cs(seg).flexGrow, count: seg && seg.dataset.count,
        segColor: seg && cs(seg).backgroundColor, dotColor: dot && cs(dot).backgroundColor,
        handlers: [...document.querySelectorAll('*')].filter((el) =>
          [...el.attributes].some((a) => /^on/i.test(a.name))).length,
      };
    });
    check(looks.header === 'flex' && looks.search === '8px', 'app.css does not apply: ' + JSON.stringify(looks));
    check(looks.grow === looks.count, 'the stock bar is not sized by its counts: ' + JSON.stringify(looks));
    check(looks.dotColor === looks.segColor && looks.dotColor !== 'rgba(0, 0, 0, 0)',
          'the legend is not coloured like the bar: ' + JSON.stringify(looks));
    check(looks.handlers === 0, looks.handlers + ' elements carry on...= handler attributes');
    ok(`app.css applies, the stock bars are sized through the CSSOM (flex-grow ${looks.grow}), the legend is coloured, no handler attributes`);
    const demoHead = await head();
    check(demoHead === 9, 'the demo catalog ends at position ' + demoHead + ', expected 9');
    const demoTime = (await call('GET', `/api/events?from=${demoHead}&limit=1`)).json.events[0].recorded_at;

    // A whole second between the demo and the first purchase: the date-time
    // field (second precision) can then name a moment between the two.
    const demoMs = Date.parse(demoTime.replace(/(\.\d{3})\d+/, '$1'));
    const boundary = Math.floor(demoMs / 1000) * 1000 + 1000;
    if (Date.now() < boundary + 100) await sleep(boundary + 100 - Date.now());

    // --- a purchase appears live, within 1 s, without reload
    await page.evaluate(() => { window.__noReload = true; });
    const p1 = await purchase('steam-50', 'alice');
    const tBought = Date.now();
    const last4 = p1.code.slice(-4);
    await until(`the purchase (code …${last4}) is in the live tail and steam-50's bar shows 499 available`,
      ([last4]) => {
        const li = document.querySelector('#tail li[data-type=CodeAssigned]');
        const row = document.querySelector('tr[data-card="steam-50"]');
        const seg = row && row.querySelector('.bar span.available');
        return li && li.textContent.includes('****' + last4) && li.textContent.includes('alice') &&
               row.dataset.available === '499' && row.dataset.assigned === '1' &&
               seg && seg.dataset.count === '499' && row.querySelector('.bar span.assigned')?.dataset.count === '1';
      }, [last4], LIVE_MS);
    const lag = Date.now() - tBought;
    check(await page.evaluate(() => window.__noReload === true), 'the page reloaded');
    ok(`the purchase shows in the live tail and in steam-50's stock bar ${lag} ms after the API answered (limit ${LIVE_MS} ms), no reload`);
    await until('alice shows 950.00 and the purchase is listed', ([last4]) =>
      document.querySelector('tr[data-user="alice"] td.num')?.textContent === '950.00' &&
      [...document.querySelectorAll('#purchases tr')].some((r) => r.textContent.includes('****' + last4)), [last4], 3000);
    ok('alice\'s balance and the recent purchases follow within the same second');
    await noFullCodes('after a live purchase');

    // --- a burst: a new wallet, 455 purchases, low stock, throttled re-reads
    const burst = 455;
    await credit('dave', burst * 999);
    const others = [['erin', 'netflix-25'], ['frank', 'steam-50'], ['grace', 'netflix-25'], ['heidi', 'spotify-10']];
    for (const [u] of others) await credit(u, 20000);
    const readsBefore = stateReads.length;
    const tBurst = Date.now();
    let next = 0;
    const workers = Array.from({ length: 16 }, async () => {
      while (next < burst) { next++; await purchase('spotify-10', 'dave'); }
    });
    await Promise.all(workers);
    for (const [u, c] of others) await purchase(c, u);
    const burstMs = Date.now() - tBurst;
    await cardIs('spotify-10', 500 - burst - 1);
    await until('spotify-10 is highlighted as low stock', () =>
      document.querySelector('tr[data-card="spotify-10"]').classList.contains('low') &&
      /low stock/.test(document.querySelector('tr[data-card="spotify-10"]').textContent));
    await until('dave appears in the wallets panel', () => !!document.querySelector('tr[data-user="dave"]'), null, 3000);
    const reads = stateReads.length - readsBefore;
    const allowed = Math.ceil((Date.now() - tBurst) / 1000) + 2;
    check(reads <= allowed, `${reads} state reads in ${Date.now() - tBurst} ms: more than about one a second`);
    ok(`${burst + others.length} purchases in ${burstMs} ms: spotify-10 low stock, dave listed, ${reads} state re-reads (at most ${allowed})`);
    const liveHead = await head();
    await until('the page follows the head', ([h]) => document.getElementById('slider').max === String(h) &&
      document.getElementById('slider').value === String(h), [liveHead]);
    if (shotDir) await sleep(1800);  // let the tail's "new" highlight fade for the picture
    await shot('viewer-live.png');
    await collectCodesFromLog();
    await noFullCodes('after the burst');

    // --- server-side wallet search
    await page.fill('#wallet-q', 'da');
    await until('searching "da" lists dave only', () => {
      const us = [...document.querySelectorAll('tr[data-user]')].map((r) => r.dataset.user);
      return us.length === 1 && us[0] === 'dave';
    });
    await page.fill('#wallet-q', '');
    await until('clearing the search lists every wallet', () => document.querySelectorAll('tr[data-user]').length === 8);
    ok('the wallet search asks the server and lists what matches');

    // --- time travel: the slider, back to the demo catalog
    await slideTo(demoHead);
    await until(`the slider shows the shop as of position ${demoHead}`, ([p]) =>
      document.body.classList.contains('travel') &&
      document.getElementById('asof').textContent.includes('as of position ' + p + ' of') &&
      document.querySelector('tr[data-card="steam-50"]')?.dataset.available === '500' &&
      document.querySelector('tr[data-card="spotify-10"]')?.dataset.available === '500' &&
      document.querySelector('tr[data-user="alice"]')?.dataset.balance === '100000' &&
      document.querySelector('#tail li[data-position]')?.dataset.position === String(p), [demoHead]);
    check(await walletText('alice') === '1,000.00', 'as of the demo alice shows ' + await walletText('alice'));
    check(await page.evaluate(() => document.querySelector('tr[data-user="dave"]').dataset.existed) === 'false',
          'dave should have no wallet yet as of the demo');
    check(await page.evaluate(() => document.getElementById('t-sold').textContent) === '0', 'codes sold as of the demo');
    check(await page.evaluate(() => document.querySelectorAll('#purchases tr[data-purchase]').length) === 0,
          'purchases listed as of the demo');
    const tailMax = await page.evaluate(() => Math.max(...[...document.querySelectorAll('#tail li[data-position]')].map((l) => +l.dataset.position)));
    check(tailMax === demoHead, 'the log as of the demo ends at ' + tailMax);
    ok(`the slider at ${demoHead} shows the earlier stock (500 each), balances (alice 1,000.00, dave none), no purchases, the log up to ${demoHead}`);

    // An event arriving meanwhile leaves the past alone.
    const pBob = await purchase('netflix-25', 'bob');
    await until('the slider grows with the log', ([h]) => +document.getElementById('slider').max >= h, [pBob.position]);
    await sleep(1200);
    check(await page.evaluate(() => document.querySelector('tr[data-card="netflix-25"]').dataset.available) === '500',
          'a live event changed the time-travel view');
    ok('a purchase made during time travel extends the slider and leaves the past view alone');

    // The position field: just after alice's purchase.
    await page.fill('#pos-input', String(p1.position));
    await page.press('#pos-input', 'Enter');
    await until(`the position field shows the shop as of ${p1.position}`, ([p]) =>
      document.getElementById('asof').textContent.includes('as of position ' + p + ' of') &&
      document.querySelector('tr[data-card="steam-50"]')?.dataset.available === '499' &&
      document.querySelectorAll('#purchases tr[data-purchase]').length === 1, [p1.position]);
    ok(`the position field at ${p1.position} shows steam-50 at 499 and alice's purchase only`);

    // The date-time field: a moment between the demo and the first purchase.
    const between = new Date(boundary).toISOString().slice(0, 19);  // UTC, the page's time zone here
    await page.fill('#time-input', between);
    await until(`the date-time ${between} finds position ${demoHead}`, ([p]) =>
      document.getElementById('asof').textContent.includes('as of position ' + p + ' of') &&
      document.querySelector('tr[data-card="steam-50"]')?.dataset.available === '500', [demoHead]);
    ok(`the date-time field at ${between}Z shows the shop as of position ${demoHead}`);

    // Half-way through the burst, for the picture.
    const mid = Math.floor((demoHead + liveHead) / 2);
    await page.fill('#pos-input', String(mid));
    await page.press('#pos-input', 'Enter');
    await until(`the shop as of ${mid}`, ([p]) => document.getElementById('asof').textContent.includes('as of position ' + p + ' of'), [mid]);
    await noFullCodes('in time travel');
    await page.locator('#pos-input').blur();
    await shot('viewer-time-travel.png');

    // --- back to live
    await page.click('#live-btn');
    await until('Live returns to the head', () =>
      !document.body.classList.contains('travel') &&
      document.querySelector('tr[data-card="netflix-25"]')?.dataset.available === '497' &&
      document.querySelector('tr[data-user="bob"] td.num')?.textContent === '475.00');
    const p2 = await purchase('steam-50', 'bob');
    const tBought2 = Date.now();
    await until('after Live, a new purchase shows within 1 s', ([c]) =>
      document.querySelector('#tail li[data-type=CodeAssigned]')?.textContent.includes('****' + c) &&
      document.querySelector('tr[data-card="steam-50"]')?.dataset.available === '497', [p2.code.slice(-4)], LIVE_MS);
    ok(`Live follows the head again (a new purchase in ${Date.now() - tBought2} ms)`);
    await noFullCodes('back live');

    // --- the token lives in this tab's session; a stale one is asked again
    await page.reload();
    await until('after a reload the saved token still opens the page', () => document.querySelectorAll('tr[data-card]').length === 3, null, 10000);
    await page.evaluate(() => sessionStorage.setItem('giftcard.admin_token', 'stale'));
    await page.reload();
    await until('a stale saved token is asked again', () =>
      !document.getElementById('login').hidden && /rejected/.test(document.getElementById('login-error').textContent), null, 10000);
    leaked = await dataInDom();
    check(leaked.length === 0, 'with a stale token the page shows data: ' + leaked.join(', '));
    ok('the token is kept for the tab; a rejected one (401) is asked for again, with no data shown');

    const fresh = await browser.newContext();  // another tab: sessionStorage is per tab
    const canary = [];
    await watchCsp(fresh, canary);
    const other = await fresh.newPage();
    await other.goto(base + '/admin');
    await other.locator('#login').waitFor({ state: 'visible', timeout: 10000 });
    await sleep(200);
    check(canary.length === 0, 'CSP violations in a fresh tab: ' + showViolations(canary));
    // The canary: inline style and script the policy must refuse, and the
    // collector must see (else "no violations" below would prove nothing).
    await other.evaluate(() => {
      const box = document.createElement('div');
      box.innerHTML = '<b id="canary-style" style="color: rgb(1, 2, 3)">x</b>';
      document.body.append(box);
      const s = document.createElement('script');
      s.textContent = 'window.__canaryRan = true;';
      document.body.append(s);
    });
    await sleep(300);
    const canaryRan = await other.evaluate(() => window.__canaryRan === true);
    const canaryColor = await other.evaluate(() => getComputedStyle(document.getElementById('canary-style')).color);
    check(!canaryRan, 'an inline script ran: the CSP is not enforced');
    check(canaryColor !== 'rgb(1, 2, 3)', 'an inline style attribute applied: the CSP is not enforced');
    const byEvent = canary.filter((v) => v.from === 'event').map((v) => v.directive);
    const byConsole = canary.filter((v) => v.from === 'console').length;
    check(byEvent.some((d) => /^style-src/.test(d)) && byEvent.some((d) => /^script-src/.test(d)) && byConsole >= 2,
          'the CSP collector missed the canary violations: ' + showViolations(canary));
    await fresh.close();
    ok(`the CSP is enforced and the collector sees it: a canary inline style and script were refused (${byEvent.join(', ')}; ${byConsole} console errors)`);

    check(pageErrors.length === 0, 'script errors in the page: ' + pageErrors.join(' | '));
    ok('no script errors in the page');
    check(cspViolations.length === 0, cspViolations.length + ' CSP violations: ' + showViolations(cspViolations));
    check(foreign.length === 0, 'the page loaded from elsewhere: ' + foreign.slice(0, 5).join(', '));
    ok('not one CSP violation in the whole run, and nothing loaded from elsewhere');
  } catch (e) {
    if (page) {
      const p = path.join(tmpdir(), 'giftcard-viewer-failure.png');
      await page.screenshot({ path: p, fullPage: true }).catch(() => {});
      console.error('a screenshot of the page at the failure: ' + p);
    }
    throw e;
  } finally {
    await browser.close();
  }
  const exit = await stopServer();
  check(exit.code === 0, 'giftcard serve did not exit 0 after SIGTERM: ' + JSON.stringify(exit));
  ok('giftcard serve stopped cleanly');
  console.log(`viewer browser test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const guard = setTimeout(() => {
  console.error('FAIL: the viewer test took more than 240 s');
  if (server && !serverExit) server.kill('SIGKILL');
  process.exit(1);
}, 240000);
guard.unref();

try {
  await run();
  console.log(`${passed} passed, 0 failed`);
  process.exitCode = 0;
} catch (e) {
  console.error('FAIL: ' + (e instanceof CheckFailed ? e.message : (e && e.stack) || e));
  if (serverErr) {
    // A sanitizer report matters from its first line; anything else by its end.
    const at = serverErr.search(/ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:/);
    console.error(at >= 0 ? '--- giftcard serve stderr (sanitizer report) ---\n' + serverErr.slice(at, at + 12000)
                          : '--- giftcard serve stderr (tail) ---\n' + serverErr.slice(-4000));
  }
  console.log(`${passed} passed, 1 failed`);
  process.exitCode = 1;
  if (server && !serverExit) await stopServer().catch(() => {});
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
