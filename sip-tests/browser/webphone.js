// A JsSIP softphone in headless Chromium (Debian's), driven line by line for
// sip-tests/browser.rs:
//   node webphone.js WS_URL IDENTITY TOKEN REALM
// prints one JSON line per event on stdout:
//   {"registered":200} or {"failed":...}      the REGISTER's outcome
//   {"incoming":"<From>"}                     a call arrived; the page answers it (audio on)
//   {"confirmed":true}                        a call (either way) is up
//   {"ended":"<cause>"} / {"call_failed":"<cause>"}
//   {"stats":{...}}                           after "stats": the call's audio counters
//   {"unregistered":true}                     after "quit", once the un-REGISTER is answered
// and reads commands on stdin: "call URI", "dtmf DIGITS" (RFC 4733 in the media, through
// RTCDTMFSender), "stats", "hangup", "quit".
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

// The page: JsSIP, an <audio> element the remote stream plays in (Chrome decodes a
// remote track only when it is played: reference §3), and the functions the driver calls.
const PAGE = `<!doctype html><title>webphone</title><script src="/jssip.min.js"></script>
<audio id="remote" autoplay></audio>
<script>
function hookPc(pc) {
  window.pc = pc;
  pc.addEventListener('track', (t) => {
    const a = document.getElementById('remote');
    a.srcObject = t.streams[0] || new MediaStream([t.track]);
    a.play().catch(() => {});
  });
}
function watch(s) {
  window.session = s;
  s.on('peerconnection', (p) => hookPc(p.peerconnection));
  s.on('confirmed', () => window.report({ confirmed: true }));
  s.on('ended', (e) => window.report({ ended: e.cause }));
  s.on('failed', (e) => window.report({ call_failed: e.cause, status: e.message && e.message.status_code }));
}
const OPTIONS = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };
window.startUA = (o) => {
  const ua = window.ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(o.wsUrl)],
    uri: 'sip:' + o.user + '@' + o.realm,
    register: false, session_timers: false, user_agent: 'JsSIP webphone test',
    authorization_jwt: 'Bearer ' + o.jwt,
  });
  ua.on('connected', () => ua.register());
  ua.on('registered', (e) => window.report({ registered: e.response.status_code }));
  ua.on('unregistered', () => window.report({ unregistered: true }));
  ua.on('registrationFailed', (e) => window.report({
    failed: e.cause, status: e.response && e.response.status_code }));
  ua.on('newRTCSession', (e) => {
    if (e.originator !== 'remote') return;
    watch(e.session);
    window.report({ incoming: e.request.getHeader('From') });
    e.session.answer(OPTIONS);
  });
  ua.start();
};
window.call = (target) => {
  const s = window.ua.call(target, OPTIONS);
  watch(s);
  if (s.connection) hookPc(s.connection);
};
window.audioStats = async () => {
  const o = { inPackets: 0, inEnergy: 0, outPackets: 0 };
  if (!window.pc) return o;
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      o.inPackets = s.packetsReceived; o.inEnergy = s.totalAudioEnergy || 0;
    }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') o.outPackets = s.packetsSent;
    if (s.type === 'transport') { o.dtls = s.dtlsState; o.srtpCipher = s.srtpCipher; }
  });
  return o;
};
</script>`;

// The page comes from a loopback origin, as a webphone served next to the switch would:
// Chrome blocks a page with no such origin (about:blank) from reaching loopback
// (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS).
function servePage() {
  const bundle = fs.readFileSync(path.join(__dirname, 'build', 'jssip.min.js'));
  const server = http.createServer((req, res) => {
    if (req.url === '/jssip.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(bundle);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(PAGE);
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
  // A hung page must not hang the test run.
  const deadline = setTimeout(() => { say({ failed: 'timeout' }); process.exit(3); }, 180000);
  try {
    const page = await browser.newPage();
    page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
    await page.exposeFunction('report', (o) => say(o));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => typeof JsSIP !== 'undefined');
    await page.evaluate((o) => window.startUA(o), { wsUrl, user, jwt, realm });
    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      const [cmd, arg] = line.trim().split(/\s+/, 2);
      if (cmd === 'quit') break;
      if (cmd === 'call') await page.evaluate((t) => window.call(t), arg);
      if (cmd === 'dtmf') {
        await page.evaluate((d) => window.session.sendDTMF(d,
          { transportType: 'RFC2833', duration: 160, interToneGap: 120 }), arg);
      }
      if (cmd === 'hangup') await page.evaluate(() => window.session.terminate());
      if (cmd === 'stats') say({ stats: await page.evaluate(() => window.audioStats()) });
    }
    await page.evaluate(() => window.ua.unregister());
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    clearTimeout(deadline);
    await browser.close();
    server.close();
  }
})().catch((e) => { say({ failed: String(e) }); process.exit(2); });
