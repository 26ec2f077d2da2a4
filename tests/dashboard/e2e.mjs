// End-to-end test of Petrel's web dashboard in headless Chromium, driven by Playwright.
//
//   node e2e.mjs DASHBOARD_URL NAMESRV_ADDR [SCREENSHOT_DIR]
//
// Run by crates/cli/tests/dashboard_e2e.rs against a real `petrel standalone`. Each step asserts
// what the page shows. The script asks its driver for what a page cannot do (produce a backlog,
// run a real consumer) with a line `@@ <request> <args...>` on stdout, and waits for the line
// `ok <request>` on stdin. Screenshots go to SCREENSHOT_DIR (or $PETREL_SCREENSHOT_DIR).
// PETREL_E2E_TOPICS=N (default 10000) is how many topics the driver seeded into the broker's
// metadata before it started; the Topics page must load under 300 ms with them.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const [url, namesrv, shotArg] = process.argv.slice(2);
if (!url || !namesrv) {
  console.error('usage: node e2e.mjs DASHBOARD_URL NAMESRV_ADDR [SCREENSHOT_DIR]');
  process.exit(2);
}
const base = url.replace(/\/$/, '');
const shots = shotArg || process.env.PETREL_SCREENSHOT_DIR || join(process.cwd(), 'screenshots');
const manyTopics = Number(process.env.PETREL_E2E_TOPICS || 10000);
const PAGE_LOAD_BUDGET_MS = 300;
const STEP_TIMEOUT_MS = 15000;
const LAG_TIMEOUT_MS = 90000;
mkdirSync(shots, { recursive: true });

const run = Date.now().toString(36);
const TOPIC = `E2E_Topic_${run}`;
const GROUP = `E2E_Group_${run}`;
const KEY = `e2e-key-${run}`;
const BACKLOG = 300;

// --- the driver handshake ------------------------------------------------------------------
const stdinLines = createInterface({ input: process.stdin });
const waiting = [];
stdinLines.on('line', (line) => {
  const w = waiting.shift();
  if (w) w(line.trim());
});
function ask(request, ...args) {
  console.log(`@@ ${request} ${args.join(' ')}`.trim());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`driver did not answer "${request}"`)), 60000);
    waiting.push((line) => {
      clearTimeout(timer);
      if (line === `ok ${request}`) resolve();
      else reject(new Error(`driver answered "${line}" to "${request}"`));
    });
  });
}

// --- small assertion helpers ---------------------------------------------------------------
let current = 'start';
function step(name) {
  current = name;
  console.log(`step: ${name}`);
}
function check(cond, msg) {
  if (!cond) throw new Error(`${current}: ${msg}`);
}
async function waitFor(what, fn, timeout = STEP_TIMEOUT_MS, every = 200) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`${current}: timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const userDir = mkdtempSync(join(tmpdir(), 'petrel-e2e-chromium-'));
// A fresh profile each run (Playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.PETREL_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1366, height: 860 },
});
let page;
let failed = false;
try {
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // An API answer of 4xx is logged by Chromium as a failed resource; the page shows those in
  // its banner (checked below), so only other console errors count.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
  });
  const tid = (id) => page.getByTestId(id);
  const shot = async (name, fullPage = false) => {
    await page.evaluate(() => document.fonts && document.fonts.ready);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage });
  };
  const noErrorBanner = async () => {
    const b = tid('banner');
    if (await b.isVisible() && (await b.getAttribute('data-kind')) === 'error') {
      throw new Error(`${current}: the page shows an error: ${await tid('banner-text').textContent()}`);
    }
  };
  const lagNow = async () => Number(await tid('group-total-lag').getAttribute('data-value'));

  // 1. Cluster: the one broker of the standalone, its config, the TPS chart.
  step('cluster page lists the broker');
  await page.goto(`${base}/`);
  await tid('broker-row').first().waitFor();
  check(await tid('broker-row').count() === 1, 'a standalone has one broker');
  const brokerRow = tid('broker-row').first();
  check(/MASTER/.test(await brokerRow.textContent()), 'the broker is a MASTER');
  check((await tid('namesrv').textContent()).trim() !== '-', 'the name server address is shown');
  await tid('tps-chart').waitFor();
  await brokerRow.getByTestId('broker-config-button').click();
  await tid('broker-config').waitFor();
  check(await tid('broker-config').locator('tbody tr').count() > 5, 'the broker config has keys');
  await noErrorBanner();
  await shot('cluster');

  // 2. Topics: create one from the page.
  step('create a topic from the page');
  await tid('nav-topics').click();
  await tid('topics-table').waitFor();
  await tid('topic-new').click();
  await tid('topic-name').fill(TOPIC);
  await tid('topic-read-queues').fill('4');
  await tid('topic-write-queues').fill('4');
  await tid('topic-submit').click();
  await page.waitForURL(new RegExp(`#/topics/${TOPIC}$`));
  await waitFor('the topic page to show 4 queues', async () => (await tid('topic-queue-row').count()) === 4);
  check((await tid('topic-title').textContent()) === TOPIC, 'the topic page names the topic');
  await tid('route-queues').waitFor();
  check(/4/.test(await tid('route-queues').locator('tbody tr').first().textContent()), 'the route has 4 queues');

  step('the topic list finds it by search');
  await tid('nav-topics').click();
  await tid('topic-search').fill(TOPIC.toLowerCase());
  await waitFor('the search to narrow the list to the topic', async () =>
    (await tid('topic-row').count()) === 1 && (await tid('topic-row').first().getAttribute('data-topic')) === TOPIC);
  check(/1 in all/.test(await tid('topics-pager-info').textContent()), 'the pager says one topic');

  // 3. Send a message from the page.
  step('send a message from the page');
  await tid('topic-link').first().click();
  await tid('send-body').fill(JSON.stringify({ order: 42, item: 'petrel', note: 'sent from the dashboard' }));
  await tid('send-tags').fill('TagA');
  await tid('send-keys').fill(KEY);
  await tid('send-submit').click();
  await tid('sent-msgid').waitFor();
  const msgId = (await tid('sent-msgid').textContent()).trim();
  check(/^[0-9A-F]{32}$/i.test(msgId), `the page shows a msgId (got "${msgId}")`);
  check(/SEND_OK/.test(await tid('send-status').textContent()), 'the send status is SEND_OK');
  await waitFor('the queues to count the message', async () => (await tid('topic-total-messages').textContent()).trim() === '1');
  await tid('topic-tps-chart').waitFor();
  await noErrorBanner();
  await shot('topic', true);

  // 4. Find it by key.
  step('find the message by key');
  await tid('sent-by-key').click();
  await page.waitForURL(/#\/messages\?mode=key/);
  await waitFor('the message in the by-key results', async () =>
    (await page.locator(`[data-testid=message-row][data-msgid="${msgId}"]`).count()) === 1);
  check((await tid('message-row').first().textContent()).includes(KEY), 'the row shows the key');
  await shot('messages-by-key');

  // 5. Find it by id and see its body and properties.
  step('find the message by id');
  await tid('tab-id').click();
  await tid('msg-id').fill(msgId);
  await tid('msg-topic').fill(TOPIC);
  await tid('msg-search').click();
  await tid('message-msgid').waitFor();
  check((await tid('message-msgid').textContent()) === msgId, 'the message view shows the msgId');
  check((await tid('message-keys').textContent()) === KEY, 'the message view shows the key');
  check((await tid('message-tags').textContent()) === 'TagA', 'the message view shows the tag');
  step('see its body as JSON, text and hex');
  check((await tid('message-body').getAttribute('data-view')) === 'json', 'a JSON body opens pretty-printed');
  check((await tid('message-body').textContent()).includes('"order": 42'), 'the JSON is pretty-printed');
  check(/KEYS/.test(await tid('message-properties').textContent()), 'the properties include KEYS');
  await shot('message', true);
  await tid('body-hex').click();
  check((await tid('message-body').textContent()).startsWith('00000000  7b 22 6f 72'), 'the hex view dumps the bytes');
  await tid('body-text').click();
  check((await tid('message-body').textContent()).includes('"item":"petrel"'), 'the text view shows the raw body');

  // 6. Its trace: stored on the broker.
  step('see the message trace');
  await tid('message-trace').click();
  await tid('trace-timeline').waitFor();
  check(await tid('trace-step').count() >= 1, 'the timeline has a step');
  check((await tid('trace-what').allTextContents()).some((w) => w.startsWith('stored')), 'the message was stored');

  // 7. A consumer group: create it, give it a backlog, watch a real consumer drain it.
  step('create a consumer group from the page');
  await tid('nav-groups').click();
  await tid('groups-table').waitFor();
  await tid('group-new').click();
  await tid('group-name').fill(GROUP);
  await tid('group-submit').click();
  await page.waitForURL(new RegExp(`#/groups/${GROUP}$`));
  await tid('group-total-lag').waitFor();
  await noErrorBanner();

  step('set and lift a rate limit');
  await tid('rate-limit').fill('500');
  await tid('rate-limit-submit').click();
  await waitFor('the rate limit shown', async () => (await tid('group-rate-limit').textContent()) === '500/s');
  await tid('rate-limit').fill('0');
  await tid('rate-limit-submit').click();
  await waitFor('the rate limit lifted', async () => (await tid('group-rate-limit').textContent()) === 'none');

  step('the lag of the group goes down as a consumer runs');
  await ask('backlog', TOPIC, BACKLOG);
  await ask('start-consumer', GROUP, TOPIC);
  const seen = [];
  await waitFor('the lag to be reported', async () => {
    const lag = await lagNow();
    if (seen[seen.length - 1] !== lag) seen.push(lag);
    return lag > 0;
  }, LAG_TIMEOUT_MS, 250);
  await waitFor('the lag to drain to 0', async () => {
    const lag = await lagNow();
    if (seen[seen.length - 1] !== lag) seen.push(lag);
    return lag === 0;
  }, LAG_TIMEOUT_MS, 250);
  console.log(`lag seen on the page: ${seen.join(' -> ')}`);
  check(Math.max(...seen) > 0 && seen[seen.length - 1] === 0, 'the page showed a lag that went down to 0');
  await waitFor('the consumer among the clients', async () => (await tid('group-client-row').count()) === 1);
  check((await tid('group-subs').textContent()).includes(TOPIC), 'the subscription is shown');
  check(await tid('group-queue-row').count() >= 4, 'the queues of the topic are listed');

  // 8. Pause, reset to before the backlog (the lag comes back and stays while paused), resume.
  step('pause the group');
  await tid('group-pause').click();
  await waitFor('the group to show paused', async () => (await tid('group-paused').getAttribute('data-paused')) === 'true');
  step('reset its offset to a time before the messages');
  await tid('reset-topic').selectOption(TOPIC);
  await tid('reset-mode').selectOption('time');
  await tid('reset-time').fill(toLocalInput(Number.parseInt(run, 36) - 60000));
  await tid('reset-submit').click();
  await tid('confirm-ok').click();
  await tid('reset-done').waitFor();
  check(await tid('reset-queues').locator('tbody tr').count() === 4, 'the reset moved 4 queues');
  const total = BACKLOG + 1;
  await waitFor(`the lag back at ${total}`, async () => (await lagNow()) === total, LAG_TIMEOUT_MS);
  await new Promise((r) => setTimeout(r, 3000));
  check(await lagNow() === total, 'a paused group does not consume');
  await noErrorBanner();
  await shot('group', true);
  step('resume the group');
  await tid('group-resume').click();
  await waitFor('the group to show running', async () => (await tid('group-paused').getAttribute('data-paused')) === 'false');
  await waitFor('the lag to drain to 0 again', async () => (await lagNow()) === 0, LAG_TIMEOUT_MS, 250);

  step('the group list shows the group');
  await tid('nav-groups').click();
  await tid('group-search').fill(GROUP);
  await waitFor('the group row', async () => (await tid('group-row').count()) === 1 &&
    /online/.test(await tid('group-row').first().textContent()));
  await shot('groups');

  step('resend the message to the group');
  await page.goto(`${base}/#/message?id=${msgId}&topic=${TOPIC}`);
  await tid('resend-group').fill(GROUP);
  await tid('resend-submit').click();
  await tid('resend-consume-result').waitFor();
  check((await tid('resend-consume-result').textContent()) === 'CR_SUCCESS', 'the consumer consumed it again');
  await noErrorBanner();

  // 9. The trace now shows the delivery to the consumer.
  step('the trace shows the delivery');
  await page.goto(`${base}/#/trace?msgId=${msgId}&topic=${TOPIC}`);
  await tid('trace-timeline').waitFor();
  const whats = await tid('trace-what').allTextContents();
  console.log(`trace steps: ${whats.join(', ')}`);
  check(whats.some((w) => w.startsWith('stored')), 'the trace shows the message stored');
  check(whats.length >= 2, 'the trace shows more than the store');
  check(whats.includes('delivered'), `the trace shows the delivery: ${whats.join(', ')}`);
  await shot('trace');

  // 10. Producers and messages by time.
  step('producers by group');
  const producerGroup = process.env.PETREL_E2E_PRODUCER_GROUP || 'PetrelE2EProducer';
  await page.goto(`${base}/#/producers?group=${producerGroup}`);
  await waitFor('the driver\'s producer connection', async () => (await tid('producer-row').count()) >= 1);
  await shot('producers');
  step('messages by topic and time range');
  await page.goto(`${base}/#/messages?mode=range&topic=${TOPIC}`);
  await tid('messages-table').waitFor();
  check(await tid('message-row').count() === 50, 'the first page has 50 messages');
  check(/of 7 /.test(await tid('messages-pager-info').textContent()), `301 messages make 7 pages (${await tid('messages-pager-info').textContent()})`);
  await shot('messages');

  // 11. Errors show as a banner, not a stack trace.
  step('an API error shows as a banner');
  await page.goto(`${base}/#/message?id=0000000000000000000000000000DEAD&topic=${TOPIC}`);
  await tid('banner').waitFor();
  check((await tid('banner').getAttribute('data-kind')) === 'error', 'the banner is an error');
  const bannerText = await tid('banner-text').textContent();
  console.log(`error banner: ${bannerText}`);
  check(bannerText.length > 0 && !/\bat .*:\d+:\d+|panicked|\{"error"/.test(bannerText), `the banner is a sentence, not a stack trace: ${bannerText}`);
  await shot('error');

  // 12. Delete a topic through the confirm dialog.
  step('delete a topic');
  const doomed = `${TOPIC}_Doomed`;
  await page.goto(`${base}/#/topics`);
  await tid('topic-new').click();
  await tid('topic-name').fill(doomed);
  await tid('topic-submit').click();
  await page.waitForURL(new RegExp(`#/topics/${doomed}$`));
  await tid('topic-queue-row').first().waitFor();
  await page.locator('.titlebar').getByTestId('topic-delete').click();
  check((await tid('confirm-text').textContent()).includes(doomed), 'the dialog names the topic');
  await tid('confirm-ok').click();
  await page.waitForURL(/#\/topics$/);
  await tid('topic-search').fill(doomed);
  await waitFor('the topic gone from the list', async () =>
    (await tid('topics-box').getAttribute('data-loaded')) === 'true' && (await tid('topic-row').count()) === 0);

  // 13. The Topics page with the topics the driver seeded (PETREL_E2E_TOPICS) loads in budget.
  step('the Topics page loads fast with many topics');
  const loads = [];
  for (let i = 0; i < 5; i++) {
    await page.goto('about:blank');
    const t0 = Date.now();
    await page.goto(`${base}/#/topics`);
    await page.locator('[data-testid=topics-box][data-loaded=true]').waitFor();
    const wall = Date.now() - t0;
    // From the navigation's start (performance timeline) to the table in the DOM.
    const mark = await page.evaluate(() => performance.getEntriesByName('topics-rendered')[0].startTime);
    const total = Number(await tid('topics-box').getAttribute('data-total'));
    check(total >= manyTopics, `the list counts at least ${manyTopics} topics (got ${total})`);
    loads.push({ wall, mark: Math.round(mark) });
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const markMedian = median(loads.map((l) => l.mark));
  const wallMedian = median(loads.map((l) => l.wall));
  console.log(`topics page load with ${manyTopics} topics: navigation to table rendered ${loads.map((l) => l.mark).join(', ')} ms (median ${markMedian}); wall clock goto to table ${loads.map((l) => l.wall).join(', ')} ms (median ${wallMedian})`);
  check(markMedian < PAGE_LOAD_BUDGET_MS, `the median load ${markMedian} ms is under ${PAGE_LOAD_BUDGET_MS} ms`);
  await shot('topics', true);
  console.log(`topics listed: ${await tid('topics-pager-info').textContent()}`);
  check(pageErrors.length === 0, `the page logged no errors: ${pageErrors.join(' | ')}`);
  console.log('dashboard e2e: all steps passed');
} catch (e) {
  failed = true;
  console.error(`FAILED at step "${current}": ${e.stack || e.message}`);
  if (page) {
    try {
      await page.screenshot({ path: join(shots, 'failure.png') });
      console.error(`page at failure: ${page.url()}; screenshot ${join(shots, 'failure.png')}`);
      console.error((await page.locator('main').innerText()).slice(0, 3000));
    } catch (_) { /* the browser is gone */ }
  }
} finally {
  await context.close();
  rmSync(userDir, { recursive: true, force: true });
  stdinLines.close();
}
process.exit(failed ? 1 : 0);

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}
