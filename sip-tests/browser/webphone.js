// A JsSIP softphone in headless Chromium (Debian's), driven line by line for
// sip-tests/browser.rs:
//   node webphone.js WS_URL IDENTITY TOKEN REALM
// prints one JSON line per event on stdout: {"registered":200} or {"failed":...},
// {"incoming":"<From>"} for each call (rejected with 486: this page has no media yet),
// and after a "quit" line on stdin, {"unregistered":true} once the un-REGISTER is answered.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const puppeteer = require('puppeteer-core');

// reference/browser-testing.md §2: what headless Chromium needs as root on loopback.
const FLAGS = ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection', '--disable-gpu', '--disable-dev-shm-usage'];

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// The page comes from a loopback origin, as a webphone served next to the switch would:
// Chrome blocks a page with no such origin (about:blank) from reaching loopback
// (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS).
function servePage() {
  const bundle = fs.readFileSync(path.join(__dirname, 'build', 'jssip.min.js'));
  const html = '<!doctype html><title>webphone</title><script src="/jssip.min.js"></script>';
  const server = http.createServer((req, res) => {
    if (req.url === '/jssip.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(bundle);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

(async () => {
  const [wsUrl, user, jwt, realm] = process.argv.slice(2);
  const server = await servePage();
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium',
    headless: true, acceptInsecureCerts: true, args: FLAGS,
  });
  const deadline = setTimeout(() => { say({ failed: 'timeout' }); process.exit(3); }, 60000);
  try {
    const page = await browser.newPage();
    page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
    await page.exposeFunction('report', (o) => say(o));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => typeof JsSIP !== 'undefined');
    await page.evaluate((o) => {
      const ua = window.ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(o.wsUrl)],
        uri: `sip:${o.user}@${o.realm}`,
        register: false, session_timers: false, user_agent: 'JsSIP webphone test',
        authorization_jwt: `Bearer ${o.jwt}`,
      });
      ua.on('connected', () => ua.register());
      ua.on('registered', (e) => window.report({ registered: e.response.status_code }));
      ua.on('unregistered', () => window.report({ unregistered: true }));
      ua.on('registrationFailed', (e) => window.report({
        failed: e.cause, status: e.response && e.response.status_code }));
      ua.on('newRTCSession', (e) => {
        if (e.originator !== 'remote') return;
        window.report({ incoming: e.request.getHeader('From') });
        e.session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      });
      ua.start();
    }, { wsUrl, user, jwt, realm });
    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (line.trim() === 'quit') break;
    }
    await page.evaluate(() => window.ua.unregister());
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    clearTimeout(deadline);
    await browser.close();
    server.close();
  }
})().catch((e) => { say({ failed: String(e) }); process.exit(2); });
