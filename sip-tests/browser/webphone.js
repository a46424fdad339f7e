// Drives the webphone example (examples/webphone, served by its own web app) in Debian's
// headless Chromium through its buttons, for sip-tests/browser.rs:
//   node webphone.js SITE_URL IDENTITY
// The page's own events (`phone.on`) come out on stdout, one JSON line each:
//   {"registered":200} or {"failed":...}      the REGISTER's outcome
//   {"presence":"available"|"busy"|"offline"} the switch's presence, as the page shows it
//   {"incoming":"<From>"}                     a call rings the page
//   {"confirmed":true}                        a call (either way) is up
//   {"ended":"<cause>"} / {"call_failed":"<cause>","status":N}
//   {"muted":true|false}
//   {"unregistered":true}                     after "quit", once the un-REGISTER is answered
// plus {"stats":{...}} (after "stats": the call's audio counters) and {"shown":{...}} (after
// "show": the badges and call state as displayed). Commands on stdin: "call TARGET",
// "answer", "dtmf DIGITS" (keypad clicks: RFC 4733 in the media), "mute", "hangup",
// "stats", "show", "forge-fingerprint" (the next answer's SDP carries a DTLS fingerprint
// that is not the page's certificate's: a man in the middle as the switch sees it),
// "quit" (goes offline).
'use strict';
const readline = require('readline');
const puppeteer = require('puppeteer-core');

// reference/browser-testing.md §2: what headless Chromium needs as root on loopback.
const FLAGS = ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection', '--disable-gpu', '--disable-dev-shm-usage'];

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

(async () => {
  const [site, identity] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/lib/chromium/chromium',
    headless: true, acceptInsecureCerts: true, args: FLAGS,
  });
  // A hung page must not hang the test run.
  const deadline = setTimeout(() => { say({ failed: 'timeout' }); process.exit(3); }, 180000);
  try {
    const page = await browser.newPage();
    page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
    page.on('pageerror', (e) => say({ failed: `page error: ${e.message}` }));
    await page.exposeFunction('report', (o) => say(o));
    await page.goto(`${site}/`);
    await page.waitForFunction(() => window.phone && typeof JsSIP !== 'undefined');
    await page.evaluate(() => window.phone.on((e) => window.report(e)));
    await page.$eval('#identity', (el, v) => { el.value = v; }, identity);
    await page.click('#online');
    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      const [cmd, arg] = line.trim().split(/\s+/, 2);
      if (cmd === 'quit') break;
      if (cmd === 'call') {
        await page.$eval('#target', (el, v) => { el.value = v; }, arg);
        await page.click('#call');
      }
      if (cmd === 'answer') await page.click('#answer');
      if (cmd === 'mute') await page.click('#mute');
      if (cmd === 'hangup') await page.click('#hangup');
      if (cmd === 'dtmf') {
        for (const key of arg) {
          const buttons = await page.$$('#keypad button');
          for (const b of buttons) {
            if (await b.evaluate((el) => el.textContent) === key) await b.click();
          }
          // RTCDTMFSender queues tones; one click per tone length keeps them apart.
          await new Promise((r) => setTimeout(r, 300));
        }
      }
      if (cmd === 'forge-fingerprint') {
        await page.evaluate(() => window.phone.session.on('sdp', (e) => {
          if (e.originator === 'local') {
            e.sdp = e.sdp.replace(/a=fingerprint:sha-256 [0-9A-Fa-f:]+/,
              'a=fingerprint:sha-256 ' + Array(32).fill('AB').join(':'));
          }
        }));
      }
      if (cmd === 'stats') say({ stats: await page.evaluate(() => window.phone.stats()) });
      if (cmd === 'show') {
        say({ shown: await page.evaluate(() => ({
          registration: document.getElementById('registration').textContent,
          presence: document.getElementById('presence').textContent,
          call: document.getElementById('callstate').textContent,
          mute: document.getElementById('mute').textContent,
        })) });
      }
    }
    await page.click('#offline');
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    clearTimeout(deadline);
    await browser.close();
  }
})().catch((e) => { say({ failed: String(e) }); process.exit(2); });
