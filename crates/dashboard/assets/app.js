// Petrel dashboard: a single-page app over the JSON API of crates/dashboard (docs/dashboard.md).
// Plain JavaScript, no framework and no build step: the broker embeds this file as it is.
// Pages are hash routes (#/topics, #/groups/NAME, #/messages?key=K...). Every element a test
// drives has a data-testid. API errors ({"error": ...}) show in the banner, never as a trace.
'use strict';

// ---------------------------------------------------------------------------------------------
// Small helpers: DOM building, formatting, the API.

const PAGE_SIZE = 50;
const GROUP_REFRESH_MS = 2000;
const SEARCH_DEBOUNCE_MS = 200;

// h('div', {class: 'x', testid: 't', onclick: f}, child, 'text', [more]) -> an element.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'testid') el.dataset.testid = v;
    else if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'testid') el.setAttribute('data-testid', v);
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function fmtTime(ms) {
  if (!ms || ms <= 0) return '-';
  const d = new Date(Number(ms));
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function fmtNum(n) {
  if (n === null || n === undefined || n === '') return '-';
  const x = Number(n);
  if (!Number.isFinite(x)) return String(n);
  return Number.isInteger(x) ? x.toLocaleString('en-US') : x.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function fmtRatio(r) {
  if (r === null || r === undefined) return '-';
  return (Number(r) * 100).toFixed(1) + ' %';
}

const PERMS = { 6: 'read + write', 4: 'read only', 2: 'write only', 0: 'none' };
function fmtPerm(p) {
  return PERMS[p] ? `${PERMS[p]} (${p})` : String(p);
}

// datetime-local value <-> epoch ms, in the browser's time zone.
function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}
function fromLocalInput(v) {
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : null;
}

let inFlight = 0;
function setLoading(delta) {
  inFlight += delta;
  document.getElementById('loading').hidden = inFlight <= 0;
}

class ApiError extends Error {}

// fetch + JSON; a non-2xx answer throws ApiError with the server's sentence.
async function api(method, path, body) {
  setLoading(1);
  try {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(`The dashboard cannot be reached (${e.message}).`);
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : {}; } catch (_) { json = null; }
    if (!res.ok) {
      const msg = json && json.error ? json.error : `${method} ${path} answered HTTP ${res.status}` +
        (text && !json ? `: ${text.slice(0, 200)}` : '');
      throw new ApiError(msg);
    }
    if (json === null) throw new ApiError(`${method} ${path} did not answer JSON.`);
    return json;
  } finally {
    setLoading(-1);
  }
}

function showError(e) {
  const msg = e instanceof Error ? e.message : String(e);
  banner(msg, 'error');
}
function showInfo(msg) { banner(msg, 'info'); }

function banner(msg, kind) {
  const b = document.getElementById('banner');
  b.replaceChildren(
    h('span', { testid: 'banner-text' }, msg),
    h('button', { class: 'close', title: 'Dismiss', testid: 'banner-close', onclick: () => { b.hidden = true; } }, '×'));
  b.className = 'banner ' + kind;
  b.dataset.kind = kind;
  b.hidden = false;
}
function clearBanner() { document.getElementById('banner').hidden = true; }

// Runs an async action from a button: disables it meanwhile, reports errors in the banner.
async function act(button, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// A modal "are you sure?"; resolves true on confirm.
function confirmDialog(text, okLabel = 'Delete') {
  return new Promise((resolve) => {
    const close = (v) => { overlay.remove(); resolve(v); };
    const overlay = h('div', { class: 'overlay', testid: 'confirm' },
      h('div', { class: 'dialog' },
        h('p', { testid: 'confirm-text' }, text),
        h('div', { class: 'row end' },
          h('button', { testid: 'confirm-cancel', onclick: () => close(false) }, 'Cancel'),
          h('button', { class: 'danger', testid: 'confirm-ok', onclick: () => close(true) }, okLabel))));
    document.body.append(overlay);
  });
}

const enc = encodeURIComponent;

function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${enc(k)}=${enc(v)}`);
  }
  return parts.length ? '?' + parts.join('&') : '';
}

function table(testid, columns, rows, rowAttrs) {
  return h('table', { testid, class: 'grid' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.title)))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, 'Nothing here.'))
      : rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {},
        columns.map((c) => h('td', { class: (c.mono ? 'mono ' : '') + (c.num ? 'num' : ''), 'data-col': c.key || null },
          c.render ? c.render(r) : r[c.key]))))));
}

function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...body);
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

function link(href, text, attrs) {
  return h('a', Object.assign({ href }, attrs || {}), text);
}

function pager(testid, state, total, onPage) {
  const pages = Math.max(1, Math.ceil(total / state.pageSize));
  return h('div', { class: 'pager', testid },
    h('button', { testid: `${testid}-prev`, disabled: state.page <= 1, onclick: () => onPage(state.page - 1) }, '‹ Prev'),
    h('span', { testid: `${testid}-info` }, `page ${state.page} of ${pages} · ${fmtNum(total)} in all`),
    h('button', { testid: `${testid}-next`, disabled: state.page >= pages, onclick: () => onPage(state.page + 1) }, 'Next ›'));
}

function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// ---------------------------------------------------------------------------------------------
// Line chart: series [{name, points: [[t, v], ...]}] -> inline SVG.

const CHART_COLORS = ['#2f6fdf', '#d9822b', '#2d9d6b', '#b04fc4', '#c94040', '#6b7a8f'];

function lineChart(testid, series, opts = {}) {
  const W = 720, H = 220, L = 56, R = 28, T = 12, B = 28;
  const all = series.flatMap((x) => x.points);
  const wrap = h('div', { class: 'chart', testid });
  if (all.length === 0) {
    wrap.append(h('div', { class: 'empty', testid: `${testid}-empty` }, opts.empty || 'No samples yet.'));
    return wrap;
  }
  let t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  if (t1 === t0) { t0 -= 60000; t1 += 1000; }
  let vmax = Math.max(...all.map((p) => p[1]), 0);
  vmax = vmax <= 0 ? 1 : niceCeil(vmax);
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': opts.label || 'chart' });
  for (let i = 0; i <= 4; i++) {
    const v = vmax * i / 4;
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'gridline' }));
    svg.append(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmtNum(Math.round(v * 1000) / 1000)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (t1 - t0) * i / 4;
    const d = new Date(t);
    const p2 = (n) => String(n).padStart(2, '0');
    const label = `${p2(d.getHours())}:${p2(d.getMinutes())}` + (t1 - t0 < 600000 ? `:${p2(d.getSeconds())}` : '');
    svg.append(s('text', { x: x(t), y: H - 8, 'text-anchor': 'middle', class: 'tick' }, label));
  }
  series.forEach((sr, i) => {
    if (sr.points.length === 0) return;
    const d = sr.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    const color = CHART_COLORS[i % CHART_COLORS.length];
    svg.append(s('path', { d, fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': sr.name }));
    if (sr.points.length === 1) {
      const p = sr.points[0];
      svg.append(s('circle', { cx: x(p[0]), cy: y(p[1]), r: 3, fill: color }));
    }
  });
  wrap.append(svg);
  wrap.append(h('div', { class: 'legend' }, series.map((sr, i) =>
    h('span', {}, h('i', { style: `background:${CHART_COLORS[i % CHART_COLORS.length]}` }), sr.name))));
  return wrap;
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// ---------------------------------------------------------------------------------------------
// Router.

const routes = [];
function route(pattern, render) { routes.push({ pattern, render }); }

let generation = 0;   // bumps on every navigation; a page's late answers check it
let timers = [];      // intervals of the current page, cleared on navigation

function current(gen) { return gen === generation; }

function every(ms, fn) { timers.push(setInterval(fn, ms)); }

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/cluster';
  const [path, query] = raw.split('?');
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  return { path, params };
}

async function navigate() {
  generation += 1;
  const gen = generation;
  timers.forEach(clearInterval);
  timers = [];
  clearBanner();
  const { path, params } = parseHash();
  const page = document.getElementById('page');
  for (const r of routes) {
    const m = path.match(r.pattern);
    if (!m) continue;
    const section = path.split('/')[1];
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.dataset.route === section ||
        (section === 'message' && a.dataset.route === 'messages'));
    }
    page.replaceChildren();
    page.dataset.route = section;
    try {
      await r.render(page, m.slice(1).map(decodeURIComponent), params, gen);
    } catch (e) {
      if (current(gen)) showError(e);
    }
    return;
  }
  page.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, `No page at ${path}.`));
}

function go(hash) {
  if (location.hash === hash) navigate();
  else location.hash = hash;
}

window.addEventListener('hashchange', navigate);
window.addEventListener('DOMContentLoaded', navigate);

// ---------------------------------------------------------------------------------------------
// Cluster.

route(/^\/cluster$/, async (page, _m, params, gen) => {
  const brokersBox = h('div', { testid: 'brokers' }, h('p', { class: 'muted' }, 'Loading brokers…'));
  const configBox = h('div', { testid: 'broker-config-box' });
  const chartBox = h('div', { testid: 'tps-chart-box' }, h('p', { class: 'muted' }, 'Loading chart…'));
  page.append(
    h('div', { class: 'titlebar' }, h('h1', {}, 'Cluster'),
      h('button', { testid: 'cluster-refresh', onclick: () => go('#/cluster') }, 'Refresh')),
    card('Brokers', brokersBox),
    card('Put / get TPS, last hour', chartBox),
    configBox);

  const showConfig = async (addr, btn) => act(btn, async () => {
    const c = await api('GET', `/api/brokers/${enc(addr)}/config`);
    if (!current(gen)) return;
    const filter = h('input', { type: 'search', placeholder: 'filter keys', testid: 'broker-config-filter' });
    const rows = Object.entries(c.config || {}).sort(([a], [b]) => a.localeCompare(b));
    const body = h('div', {});
    const draw = () => {
      const f = filter.value.toLowerCase();
      body.replaceChildren(table('broker-config', [
        { title: 'key', key: 'k', mono: true },
        { title: 'value', key: 'v', mono: true },
      ], rows.filter(([k, v]) => !f || k.toLowerCase().includes(f) || String(v).toLowerCase().includes(f))
        .map(([k, v]) => ({ k, v: String(v) }))));
    };
    filter.addEventListener('input', draw);
    draw();
    configBox.replaceChildren(card(`Config of ${c.addr || addr}`, h('div', { class: 'row' }, filter), body));
  });

  const [cluster, tps] = await Promise.allSettled([api('GET', '/api/cluster'), api('GET', '/api/charts/tps')]);
  if (!current(gen)) return;
  if (cluster.status === 'fulfilled') {
    const c = cluster.value;
    brokersBox.replaceChildren(
      h('p', { class: 'muted' }, 'Name server ', h('span', { class: 'mono', testid: 'namesrv' }, c.namesrv || '-')),
      table('brokers-table', [
        { title: 'cluster', key: 'cluster' },
        { title: 'broker', key: 'brokerName', mono: true },
        { title: 'id', key: 'brokerId', num: true },
        { title: 'role', render: (b) => h('span', { class: 'badge ' + (b.role === 'MASTER' ? 'ok' : '') }, b.role) },
        { title: 'address', key: 'addr', mono: true },
        { title: 'version', key: 'version' },
        { title: 'put TPS', num: true, render: (b) => fmtNum(b.putTps) },
        { title: 'get TPS', num: true, render: (b) => fmtNum(b.getTps) },
        { title: 'put today', num: true, render: (b) => fmtNum(b.msgPutTotalToday) },
        { title: 'get today', num: true, render: (b) => fmtNum(b.msgGetTotalToday) },
        { title: 'disk used', num: true, render: (b) => fmtRatio(b.diskUsedRatio) },
        { title: 'status', render: (b) => (b.error ? h('span', { class: 'badge warn', title: b.error, testid: 'broker-error' }, b.error) : h('span', { class: 'badge ok' }, 'answering')) },
        { title: '', render: (b) => h('button', { class: 'small', testid: 'broker-config-button', onclick: (e) => showConfig(b.addr, e.target) }, 'Config') },
      ], c.brokers || [], (b) => ({ testid: 'broker-row', dataset: { addr: b.addr } })));
    if (params.config) showConfig(params.config);
  } else {
    brokersBox.replaceChildren(h('p', { class: 'muted' }, 'Brokers could not be read.'));
    showError(cluster.reason);
  }
  if (tps.status === 'fulfilled') {
    const series = [];
    for (const sr of tps.value.series || []) {
      series.push({ name: `${sr.brokerName} put`, points: sr.points.map((p) => [p[0], p[1]]) });
      series.push({ name: `${sr.brokerName} get`, points: sr.points.map((p) => [p[0], p[2]]) });
    }
    chartBox.replaceChildren(lineChart('tps-chart', series, {
      label: 'put and get TPS', empty: 'No samples yet: the dashboard samples every 10 s.',
    }));
  } else {
    chartBox.replaceChildren(h('p', { class: 'muted' }, 'The chart could not be read.'));
    if (cluster.status === 'fulfilled') showError(tps.reason);
  }
});

// ---------------------------------------------------------------------------------------------
// Topics.

function topicForm(initial, onDone) {
  const t = initial || {};
  const name = h('input', { testid: 'topic-name', placeholder: 'TopicName', value: t.topic || '', required: true, readonly: !!t.topic });
  const rq = h('input', { testid: 'topic-read-queues', type: 'number', min: 1, max: 1024, value: t.readQueueNums || 8 });
  const wq = h('input', { testid: 'topic-write-queues', type: 'number', min: 1, max: 1024, value: t.writeQueueNums || 8 });
  const perm = h('select', { testid: 'topic-perm' },
    [6, 4, 2].map((p) => h('option', { value: p, selected: (t.perm || 6) === p }, fmtPerm(p))));
  const order = h('input', { testid: 'topic-order', type: 'checkbox', checked: !!t.order });
  const submit = h('button', { class: 'primary', type: 'submit', testid: 'topic-submit' }, t.topic ? 'Update topic' : 'Create topic');
  return h('form', {
    class: 'form', testid: 'topic-form',
    onsubmit: (e) => {
      e.preventDefault();
      act(submit, async () => {
        const body = {
          topic: name.value.trim(), readQueueNums: Number(rq.value), writeQueueNums: Number(wq.value),
          perm: Number(perm.value), order: order.checked,
        };
        if (!body.topic) throw new ApiError('A topic needs a name.');
        const r = await api('POST', '/api/topics', body);
        showInfo(`Topic ${r.topic || body.topic} ${t.topic ? 'updated' : 'created'}.`);
        onDone(r.topic || body.topic);
      });
    },
  }, field('Topic', name), field('Read queues', rq), field('Write queues', wq), field('Permission', perm),
  h('label', { class: 'field check' }, order, h('span', {}, 'Ordered')), submit);
}

route(/^\/topics$/, async (page, _m, params, gen) => {
  const state = { search: params.search || '', page: Number(params.page) || 1, pageSize: PAGE_SIZE, system: params.system === '1' };
  const search = h('input', { type: 'search', testid: 'topic-search', placeholder: 'Search topics', value: state.search });
  const system = h('input', { type: 'checkbox', testid: 'topic-include-system', checked: state.system });
  const listBox = h('div', { testid: 'topics-box' });
  const formBox = h('div', { hidden: true, testid: 'topic-form-box' });
  const newBtn = h('button', { class: 'primary', testid: 'topic-new', onclick: () => { formBox.hidden = !formBox.hidden; } }, 'New topic');
  formBox.append(card('Create a topic', topicForm(null, (t) => go(`#/topics/${enc(t)}`))));
  page.append(
    h('div', { class: 'titlebar' }, h('h1', {}, 'Topics'), newBtn),
    formBox,
    card(null, h('div', { class: 'row' }, search, h('label', { class: 'check' }, system, ' include retry, DLQ and system topics')), listBox));

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    listBox.dataset.loaded = 'false';
    let r;
    try {
      r = await api('GET', '/api/topics' + qs({
        search: state.search, page: state.page, pageSize: state.pageSize, includeSystem: state.system ? 'true' : '',
      }));
    } catch (e) {
      if (current(gen)) { showError(e); listBox.replaceChildren(h('p', { class: 'muted' }, 'Topics could not be read.')); }
      return;
    }
    if (!current(gen) || mine !== seq) return;
    listBox.replaceChildren(
      table('topics-table', [
        { title: 'topic', mono: true, render: (t) => link(`#/topics/${enc(t.topic)}`, t.topic, { testid: 'topic-link' }) },
        { title: 'kind', render: (t) => h('span', { class: 'badge ' + (t.kind === 'normal' ? '' : 'warn') }, t.kind) },
        { title: 'read queues', key: 'readQueueNums', num: true },
        { title: 'write queues', key: 'writeQueueNums', num: true },
        { title: 'perm', render: (t) => fmtPerm(t.perm) },
        { title: 'order', render: (t) => (t.order ? 'yes' : 'no') },
        { title: '', render: (t) => h('button', { class: 'small danger', testid: 'topic-delete', onclick: (e) => deleteTopic(t.topic, e.target, load) }, 'Delete') },
      ], r.items || [], (t) => ({ testid: 'topic-row', dataset: { topic: t.topic } })),
      pager('topics-pager', state, r.total || 0, (p) => { state.page = p; load(); }));
    listBox.dataset.loaded = 'true';
    listBox.dataset.total = String(r.total);
    if (window.performance && performance.mark) performance.mark('topics-rendered');
  };
  const reload = () => { state.page = 1; load(); };
  search.addEventListener('input', debounce(() => { state.search = search.value.trim(); reload(); }, SEARCH_DEBOUNCE_MS));
  system.addEventListener('change', () => { state.system = system.checked; reload(); });
  await load();
});

async function deleteTopic(topic, btn, then) {
  if (!(await confirmDialog(`Delete topic ${topic} on every broker and the name server? Its messages become unreachable.`))) return;
  await act(btn, async () => {
    await api('DELETE', `/api/topics/${enc(topic)}`);
    showInfo(`Topic ${topic} deleted.`);
    then();
  });
}

route(/^\/topics\/(.+)$/, async (page, [topic], _params, gen) => {
  const statusBox = h('div', { testid: 'topic-status-box' }, h('p', { class: 'muted' }, 'Loading queues…'));
  const routeBox = h('div', { testid: 'topic-route-box' }, h('p', { class: 'muted' }, 'Loading route…'));
  const tpsBox = h('div', { testid: 'topic-tps-box' }, h('p', { class: 'muted' }, 'Loading chart…'));
  const editBox = h('div', { testid: 'topic-edit-box', hidden: true });
  const result = h('div', { testid: 'send-result', class: 'result', hidden: true });
  const body = h('textarea', { testid: 'send-body', rows: 4, placeholder: 'Message body' });
  const tags = h('input', { testid: 'send-tags', placeholder: 'TagA' });
  const keys = h('input', { testid: 'send-keys', placeholder: 'key1 key2' });
  const sendBtn = h('button', { class: 'primary', type: 'submit', testid: 'send-submit' }, 'Send');
  const sendForm = h('form', {
    class: 'form stack', testid: 'send-form',
    onsubmit: (e) => {
      e.preventDefault();
      act(sendBtn, async () => {
        const r = await api('POST', `/api/topics/${enc(topic)}/messages`, {
          body: body.value, tags: tags.value.trim() || undefined, keys: keys.value.trim() || undefined,
        });
        result.hidden = false;
        result.replaceChildren(
          h('div', {}, 'Sent: ', h('span', { class: 'badge ok', testid: 'send-status' }, r.status || 'SEND_OK')),
          h('dl', { class: 'kv' },
            h('dt', {}, 'msgId'), h('dd', { class: 'mono', testid: 'sent-msgid' }, r.msgId),
            h('dt', {}, 'offsetMsgId'), h('dd', { class: 'mono', testid: 'sent-offset-msgid' }, r.offsetMsgId || '-'),
            h('dt', {}, 'queue'), h('dd', { class: 'mono' }, `${r.brokerName} #${r.queueId} offset ${r.queueOffset}`)),
          h('div', { class: 'row' },
            link(`#/message${qs({ topic, id: r.msgId })}`, 'Open message', { class: 'button', testid: 'sent-open' }),
            link(`#/trace${qs({ topic, msgId: r.msgId })}`, 'Trace', { class: 'button', testid: 'sent-trace' }),
            keys.value.trim() ? link(`#/messages${qs({ mode: 'key', topic, key: keys.value.trim().split(/\s+/)[0] })}`, 'Find by key', { class: 'button', testid: 'sent-by-key' }) : null));
        loadStatus();
      });
    },
  }, field('Body', body), h('div', { class: 'row' }, field('Tags', tags), field('Keys (space separated)', keys)), h('div', {}, sendBtn));

  page.append(
    h('div', { class: 'titlebar' },
      h('h1', {}, 'Topic ', h('span', { class: 'mono', testid: 'topic-title' }, topic)),
      h('div', { class: 'row' },
        link(`#/messages${qs({ mode: 'range', topic })}`, 'Browse messages', { class: 'button', testid: 'topic-browse' }),
        h('button', { testid: 'topic-edit', onclick: () => { editBox.hidden = !editBox.hidden; } }, 'Edit'),
        h('button', { class: 'danger', testid: 'topic-delete', onclick: (e) => deleteTopic(topic, e.target, () => go('#/topics')) }, 'Delete'))),
    editBox,
    card('Queues', statusBox),
    card('Send a test message', sendForm, result),
    card('Put TPS, last hour', tpsBox),
    card('Route', routeBox));

  const loadTps = async () => {
    let c;
    try { c = await api('GET', `/api/charts/topic-tps${qs({ topic })}`); } catch (e) {
      if (current(gen)) tpsBox.replaceChildren(h('p', { class: 'muted' }, e.message));
      return;
    }
    if (!current(gen)) return;
    tpsBox.replaceChildren(lineChart('topic-tps-chart', [{ name: 'put TPS', points: c.points || [] }], {
      label: 'put TPS', empty: 'No samples yet: the dashboard samples a topic every 10 s once viewed.',
    }));
  };

  const loadStatus = async () => {
    let st;
    try { st = await api('GET', `/api/topics/${enc(topic)}/status`); } catch (e) {
      if (current(gen)) { showError(e); statusBox.replaceChildren(h('p', { class: 'muted' }, 'Queues could not be read.')); }
      return;
    }
    if (!current(gen)) return;
    statusBox.replaceChildren(
      h('p', {}, 'Messages held: ', h('strong', { testid: 'topic-total-messages' }, fmtNum(st.totalMessages))),
      table('topic-queues', [
        { title: 'broker', key: 'brokerName', mono: true },
        { title: 'queue', key: 'queueId', num: true },
        { title: 'min offset', key: 'minOffset', num: true },
        { title: 'max offset', key: 'maxOffset', num: true },
        { title: 'last update', render: (q) => fmtTime(q.lastUpdateTimestamp) },
      ], st.queues || [], (q) => ({ testid: 'topic-queue-row' })));
  };

  const loadConfigAndRoute = async () => {
    let rt;
    try { rt = await api('GET', `/api/topics/${enc(topic)}/route`); } catch (e) {
      if (current(gen)) { routeBox.replaceChildren(h('p', { class: 'muted' }, e.message)); }
      return;
    }
    if (!current(gen)) return;
    const brokers = rt.brokerDatas || [];
    const queues = rt.queueDatas || [];
    routeBox.replaceChildren(
      table('route-brokers', [
        { title: 'cluster', key: 'cluster' },
        { title: 'broker', key: 'brokerName', mono: true },
        { title: 'addresses', mono: true, render: (b) => Object.entries(b.brokerAddrs || {}).map(([id, a]) => `${id}: ${a}`).join(', ') },
      ], brokers),
      table('route-queues', [
        { title: 'broker', key: 'brokerName', mono: true },
        { title: 'read queues', key: 'readQueueNums', num: true },
        { title: 'write queues', key: 'writeQueueNums', num: true },
        { title: 'perm', render: (q) => fmtPerm(q.perm) },
      ], queues),
      h('details', {}, h('summary', {}, 'Route JSON'), h('pre', { class: 'code', testid: 'route-json' }, JSON.stringify(rt, null, 2))));
    // The edit form starts from what the route says.
    const q = queues[0];
    editBox.replaceChildren(card('Update topic', topicForm({
      topic, readQueueNums: q ? q.readQueueNums : 8, writeQueueNums: q ? q.writeQueueNums : 8,
      perm: q ? q.perm : 6, order: false,
    }, () => { editBox.hidden = true; loadConfigAndRoute(); loadStatus(); })));
  };

  await Promise.all([loadStatus(), loadConfigAndRoute(), loadTps()]);
});

// ---------------------------------------------------------------------------------------------
// Consumer groups.

function groupForm(initial, onDone) {
  const g = initial || {};
  const name = h('input', { testid: 'group-name', placeholder: 'GroupName', value: g.group || '', readonly: !!g.group });
  const enable = h('input', { testid: 'group-consume-enable', type: 'checkbox', checked: g.consumeEnable !== false });
  const retry = h('input', { testid: 'group-retry-max', type: 'number', min: -1, value: g.retryMaxTimes ?? 16 });
  const retryQueues = h('input', { testid: 'group-retry-queues', type: 'number', min: 1, value: g.retryQueueNums ?? 1 });
  const submit = h('button', { class: 'primary', type: 'submit', testid: 'group-submit' }, g.group ? 'Update group' : 'Create group');
  return h('form', {
    class: 'form', testid: 'group-form',
    onsubmit: (e) => {
      e.preventDefault();
      act(submit, async () => {
        const body = {
          group: name.value.trim(), consumeEnable: enable.checked,
          retryMaxTimes: Number(retry.value), retryQueueNums: Number(retryQueues.value),
        };
        if (!body.group) throw new ApiError('A group needs a name.');
        const r = await api('POST', '/api/groups', body);
        showInfo(`Group ${r.group || body.group} ${g.group ? 'updated' : 'created'}.`);
        onDone(r.group || body.group);
      });
    },
  }, field('Group', name), field('Max retries', retry), field('Retry queues', retryQueues),
  h('label', { class: 'field check' }, enable, h('span', {}, 'Consume enabled')), submit);
}

route(/^\/groups$/, async (page, _m, params, gen) => {
  const state = { search: params.search || '', page: Number(params.page) || 1, pageSize: PAGE_SIZE };
  const search = h('input', { type: 'search', testid: 'group-search', placeholder: 'Search groups', value: state.search });
  const listBox = h('div', { testid: 'groups-box' });
  const formBox = h('div', { hidden: true, testid: 'group-form-box' });
  formBox.append(card('Create a consumer group', groupForm(null, (g) => go(`#/groups/${enc(g)}`))));
  page.append(
    h('div', { class: 'titlebar' }, h('h1', {}, 'Consumer groups'),
      h('button', { class: 'primary', testid: 'group-new', onclick: () => { formBox.hidden = !formBox.hidden; } }, 'New group')),
    formBox,
    card(null, h('div', { class: 'row' }, search), listBox));
  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    listBox.dataset.loaded = 'false';
    let r;
    try {
      r = await api('GET', '/api/groups' + qs({ search: state.search, page: state.page, pageSize: state.pageSize }));
    } catch (e) {
      if (current(gen)) { showError(e); listBox.replaceChildren(h('p', { class: 'muted' }, 'Groups could not be read.')); }
      return;
    }
    if (!current(gen) || mine !== seq) return;
    listBox.replaceChildren(
      table('groups-table', [
        { title: 'group', mono: true, render: (g) => link(`#/groups/${enc(g.group)}`, g.group, { testid: 'group-link' }) },
        { title: 'state', render: (g) => groupState(g) },
        { title: 'lag', num: true, key: 'lag', render: (g) => fmtNum(g.lag) },
        { title: 'rate limit', num: true, render: (g) => (g.rateLimit ? `${fmtNum(g.rateLimit)}/s` : '-') },
        { title: 'consume', render: (g) => (g.consumeEnable === false ? 'disabled' : 'enabled') },
        { title: 'max retries', num: true, key: 'retryMaxTimes' },
      ], r.items || [], (g) => ({ testid: 'group-row', dataset: { group: g.group } })),
      pager('groups-pager', state, r.total || 0, (p) => { state.page = p; load(); }));
    listBox.dataset.loaded = 'true';
  };
  search.addEventListener('input', debounce(() => { state.search = search.value.trim(); state.page = 1; load(); }, SEARCH_DEBOUNCE_MS));
  await load();
});

function groupState(g) {
  return h('span', { class: 'states' },
    h('span', { class: 'badge ' + (g.online ? 'ok' : '') }, g.online ? 'online' : 'offline'),
    g.paused ? h('span', { class: 'badge warn' }, 'paused') : null);
}

route(/^\/groups\/(.+)$/, async (page, [group], _params, gen) => {
  const summary = h('div', { testid: 'group-summary' }, h('p', { class: 'muted' }, 'Loading…'));
  const queuesBox = h('div', { testid: 'group-queues-box' });
  const clientsBox = h('div', { testid: 'group-clients-box' });
  const subsBox = h('div', { testid: 'group-subs-box' });
  const chartBox = h('div', { testid: 'lag-chart-box' });
  const editBox = h('div', { testid: 'group-edit-box', hidden: true });

  // Reset offset.
  const resetTopic = h('select', { testid: 'reset-topic' });
  const resetMode = h('select', { testid: 'reset-mode' },
    h('option', { value: 'time' }, 'to a time'), h('option', { value: 'now' }, 'to now (skip the backlog)'),
    h('option', { value: 'end' }, 'to the end'), h('option', { value: 'ago' }, 'to some time ago'));
  const resetTime = h('input', { testid: 'reset-time', type: 'datetime-local', step: 1, value: toLocalInput(Date.now() - 3600000) });
  const resetAgo = h('input', { testid: 'reset-ago', placeholder: '10m', value: '10m', hidden: true });
  resetMode.addEventListener('change', () => {
    resetTime.hidden = resetMode.value !== 'time';
    resetAgo.hidden = resetMode.value !== 'ago';
  });
  const resetResult = h('div', { testid: 'reset-result', class: 'result', hidden: true });
  const resetBtn = h('button', { class: 'primary', testid: 'reset-submit', type: 'submit' }, 'Reset offset');
  const resetForm = h('form', {
    class: 'form', testid: 'reset-form',
    onsubmit: async (e) => {
      e.preventDefault();
      let time;
      if (resetMode.value === 'time') {
        time = fromLocalInput(resetTime.value);
        if (time === null) { showError('Pick a time to reset to.'); return; }
      } else if (resetMode.value === 'ago') time = resetAgo.value.trim();
      else time = resetMode.value;
      if (!resetTopic.value) { showError('The group has no topic to reset.'); return; }
      const ok = await confirmDialog(`Reset ${group} on ${resetTopic.value} ${resetMode.value === 'time' ? 'to ' + fmtTime(time) : resetMode.value === 'ago' ? time + ' back' : 'to ' + time}?`, 'Reset');
      if (!ok) return;
      await act(resetBtn, async () => {
        const r = await api('POST', `/api/groups/${enc(group)}/reset`, { topic: resetTopic.value, time });
        resetResult.hidden = false;
        resetResult.replaceChildren(h('p', { testid: 'reset-done' }, `Reset ${(r.queues || []).length} queues.`),
          table('reset-queues', [
            { title: 'broker', key: 'brokerName', mono: true },
            { title: 'queue', key: 'queueId', num: true },
            { title: 'new offset', key: 'offset', num: true },
          ], r.queues || []));
        showInfo(`Offsets of ${group} on ${resetTopic.value} reset.`);
        refresh();
      });
    },
  }, field('Topic', resetTopic), field('Reset', resetMode), field('Time', h('span', {}, resetTime, resetAgo)), resetBtn);

  // Pause / resume / rate limit.
  const pauseBtn = h('button', { testid: 'group-pause', onclick: (e) => act(e.target, async () => {
    const r = await api('POST', `/api/groups/${enc(group)}/pause`);
    showInfo(`Group ${group} paused on ${r.brokers} broker(s).`);
    refresh();
  }) }, 'Pause');
  const resumeBtn = h('button', { testid: 'group-resume', onclick: (e) => act(e.target, async () => {
    const r = await api('POST', `/api/groups/${enc(group)}/resume`);
    showInfo(`Group ${group} resumed on ${r.brokers} broker(s).`);
    refresh();
  }) }, 'Resume');
  const rate = h('input', { testid: 'rate-limit', type: 'number', min: 0, step: 'any', placeholder: 'msgs/s, 0 lifts' });
  const rateBtn = h('button', { testid: 'rate-limit-submit', type: 'submit' }, 'Set rate limit');
  const rateForm = h('form', {
    class: 'form', testid: 'rate-limit-form',
    onsubmit: (e) => {
      e.preventDefault();
      act(rateBtn, async () => {
        const perSecond = Number(rate.value || 0);
        const r = await api('POST', `/api/groups/${enc(group)}/rate-limit`, { perSecond });
        showInfo(perSecond > 0 ? `Group ${group} limited to ${perSecond}/s on ${r.brokers} broker(s).` : `Rate limit of ${group} lifted.`);
        refresh();
      });
    },
  }, field('Rate limit', rate), rateBtn);

  page.append(
    h('div', { class: 'titlebar' },
      h('h1', {}, 'Group ', h('span', { class: 'mono', testid: 'group-title' }, group)),
      h('div', { class: 'row' },
        h('button', { testid: 'group-edit', onclick: () => { editBox.hidden = !editBox.hidden; } }, 'Edit'),
        h('button', { class: 'danger', testid: 'group-delete', onclick: (e) => deleteGroup(group, e.target) }, 'Delete'))),
    editBox,
    card(null, summary),
    card('Operate', h('div', { class: 'row' }, pauseBtn, resumeBtn, rateForm), resetForm, resetResult),
    card('Queues', queuesBox),
    h('div', { class: 'cols' }, card('Clients', clientsBox), card('Subscriptions', subsBox)),
    card('Lag, last hour', chartBox));

  let editFilled = false;
  const refresh = async () => {
    let g;
    try { g = await api('GET', `/api/groups/${enc(group)}`); } catch (e) {
      if (current(gen)) { showError(e); summary.replaceChildren(h('p', { class: 'muted' }, 'The group could not be read.')); }
      return;
    }
    if (!current(gen)) return;
    summary.replaceChildren(h('dl', { class: 'stats' },
      h('div', {}, h('dt', {}, 'total lag'), h('dd', { testid: 'group-total-lag', 'data-value': g.totalLag }, fmtNum(g.totalLag))),
      h('div', {}, h('dt', {}, 'state'), h('dd', { testid: 'group-paused', 'data-paused': String(!!g.paused) }, g.paused ? 'paused' : 'running')),
      h('div', {}, h('dt', {}, 'clients'), h('dd', { testid: 'group-client-count' }, String((g.clients || []).length))),
      h('div', {}, h('dt', {}, 'rate limit'), h('dd', { testid: 'group-rate-limit' }, g.rateLimit ? `${fmtNum(g.rateLimit)}/s` : 'none'))));
    summary.dataset.loaded = 'true';
    queuesBox.replaceChildren(table('group-queues', [
      { title: 'topic', key: 'topic', mono: true },
      { title: 'broker', key: 'brokerName', mono: true },
      { title: 'queue', key: 'queueId', num: true },
      { title: 'broker offset', key: 'brokerOffset', num: true },
      { title: 'consumer offset', key: 'consumerOffset', num: true },
      { title: 'lag', key: 'lag', num: true },
      { title: 'last consumed', render: (q) => fmtTime(q.lastTimestamp) },
    ], g.queues || [], () => ({ testid: 'group-queue-row' })));
    clientsBox.replaceChildren(table('group-clients', [
      { title: 'client id', key: 'clientId', mono: true },
      { title: 'address', key: 'addr', mono: true },
      { title: 'language', key: 'language' },
      { title: 'version', key: 'version' },
    ], g.clients || [], () => ({ testid: 'group-client-row' })));
    subsBox.replaceChildren(table('group-subs', [
      { title: 'topic', key: 'topic', mono: true },
      { title: 'expression', key: 'expression', mono: true },
      { title: 'type', key: 'type' },
    ], g.subscriptions || []));
    // Topics to reset: those subscribed and those with offsets; keep the user's pick.
    const topics = [...new Set([...(g.subscriptions || []).map((x) => x.topic), ...(g.queues || []).map((x) => x.topic)])]
      .filter((t) => !t.startsWith('%RETRY%')).sort();
    const picked = resetTopic.value;
    if (topics.join('\n') !== [...resetTopic.options].map((o) => o.value).join('\n')) {
      resetTopic.replaceChildren(...topics.map((t) => h('option', { value: t, selected: t === picked }, t)));
    }
    if (!editFilled) {
      editFilled = true;
      const c = g.config || {};
      editBox.replaceChildren(card('Update group', groupForm({
        group, consumeEnable: c.consumeEnable, retryMaxTimes: c.retryMaxTimes, retryQueueNums: c.retryQueueNums,
      }, () => { editBox.hidden = true; refresh(); })));
    }
    loadChart();
  };
  const loadChart = async () => {
    let c;
    try { c = await api('GET', `/api/charts/lag${qs({ group })}`); } catch (e) {
      if (current(gen)) chartBox.replaceChildren(h('p', { class: 'muted' }, e.message));
      return;
    }
    if (!current(gen)) return;
    chartBox.replaceChildren(lineChart('lag-chart', [{ name: 'lag', points: c.points || [] }], {
      label: 'lag', empty: 'No samples yet: the dashboard samples a group while its page is viewed.',
    }));
  };
  every(GROUP_REFRESH_MS, refresh);
  await refresh();
});

async function deleteGroup(group, btn) {
  if (!(await confirmDialog(`Delete consumer group ${group} on every broker? Its offsets are lost.`))) return;
  await act(btn, async () => {
    await api('DELETE', `/api/groups/${enc(group)}`);
    showInfo(`Group ${group} deleted.`);
    go('#/groups');
  });
}

// ---------------------------------------------------------------------------------------------
// Producers.

route(/^\/producers$/, async (page, _m, params, gen) => {
  const group = h('input', { testid: 'producer-group', placeholder: 'Producer group', value: params.group || '' });
  const btn = h('button', { class: 'primary', type: 'submit', testid: 'producer-submit' }, 'Show connections');
  const box = h('div', { testid: 'producers-box' });
  page.append(h('div', { class: 'titlebar' }, h('h1', {}, 'Producers')),
    card(null, h('form', {
      class: 'form', onsubmit: (e) => { e.preventDefault(); go(`#/producers${qs({ group: group.value.trim() })}`); },
    }, field('Group', group), btn), box));
  if (!params.group) {
    box.append(h('p', { class: 'muted' }, 'Brokers keep producers by group: name one to see its connections.'));
    return;
  }
  const r = await api('GET', `/api/producers${qs({ group: params.group })}`);
  if (!current(gen)) return;
  box.replaceChildren(table('producers-table', [
    { title: 'client id', key: 'clientId', mono: true },
    { title: 'address', key: 'addr', mono: true },
    { title: 'language', key: 'language' },
    { title: 'version', key: 'version' },
  ], r.connections || [], () => ({ testid: 'producer-row' })));
});

// ---------------------------------------------------------------------------------------------
// Messages.

function messagesTable(items) {
  return table('messages-table', [
    { title: 'msgId', mono: true, render: (m) => link(`#/message${qs({ topic: m.topic, id: m.msgId })}`, m.msgId, { testid: 'message-link' }) },
    { title: 'topic', key: 'topic', mono: true },
    { title: 'tags', key: 'tags' },
    { title: 'keys', key: 'keys', mono: true },
    { title: 'queue', num: true, render: (m) => `${m.queueId} @ ${m.queueOffset}` },
    { title: 'stored', render: (m) => fmtTime(m.storeTimestamp) },
    { title: 'body', render: (m) => h('span', { class: 'clip' }, (m.body || '').slice(0, 80)) },
  ], items, (m) => ({ testid: 'message-row', dataset: { msgid: m.msgId } }));
}

route(/^\/messages$/, async (page, _m, params, gen) => {
  const mode = ['range', 'key', 'id'].includes(params.mode) ? params.mode : 'range';
  const tabs = h('div', { class: 'tabs', testid: 'message-tabs' },
    [['range', 'By topic and time'], ['key', 'By key'], ['id', 'By message id']].map(([m, label]) =>
      link(`#/messages${qs({ mode: m, topic: params.topic })}`, label, { class: m === mode ? 'active' : '', testid: `tab-${m}` })));
  const box = h('div', { testid: 'messages-box' });
  const topic = h('input', { testid: 'msg-topic', placeholder: 'Topic', value: params.topic || '' });
  let form;
  const submit = (extra) => (e) => { e.preventDefault(); go(`#/messages${qs(Object.assign({ mode, topic: topic.value.trim() }, extra()))}`); };
  if (mode === 'range') {
    const now = Date.now();
    const begin = h('input', { testid: 'msg-begin', type: 'datetime-local', step: 1, value: toLocalInput(Number(params.begin) || now - 3600000) });
    const end = h('input', { testid: 'msg-end', type: 'datetime-local', step: 1, value: toLocalInput(Number(params.end) || now + 60000) });
    form = h('form', { class: 'form', onsubmit: submit(() => ({ begin: fromLocalInput(begin.value), end: fromLocalInput(end.value), page: 1 })) },
      field('Topic', topic), field('From', begin), field('To', end),
      h('button', { class: 'primary', type: 'submit', testid: 'msg-search' }, 'Search'));
  } else if (mode === 'key') {
    const key = h('input', { testid: 'msg-key', placeholder: 'Key', value: params.key || '' });
    form = h('form', { class: 'form', onsubmit: submit(() => ({ key: key.value.trim() })) },
      field('Topic', topic), field('Key', key), h('button', { class: 'primary', type: 'submit', testid: 'msg-search' }, 'Search'));
  } else {
    const id = h('input', { testid: 'msg-id', class: 'wide', placeholder: 'msgId or offsetMsgId', value: params.id || '' });
    form = h('form', { class: 'form', onsubmit: submit(() => ({ id: id.value.trim() })) },
      field('Message id', id), field('Topic (for a client msgId)', topic),
      h('button', { class: 'primary', type: 'submit', testid: 'msg-search' }, 'Search'));
  }
  page.append(h('div', { class: 'titlebar' }, h('h1', {}, 'Messages')), tabs, card(null, form), box);

  let r;
  if (mode === 'range' && params.topic) {
    const state = { page: Number(params.page) || 1, pageSize: PAGE_SIZE };
    r = await api('GET', '/api/messages' + qs({ topic: params.topic, begin: params.begin, end: params.end, page: state.page, pageSize: state.pageSize }));
    if (!current(gen)) return;
    box.replaceChildren(card(null, messagesTable(r.items || []),
      pager('messages-pager', state, r.total || 0, (p) => go(`#/messages${qs(Object.assign({}, params, { page: p }))}`))));
  } else if (mode === 'key' && params.topic && params.key) {
    r = await api('GET', '/api/messages/by-key' + qs({ topic: params.topic, key: params.key }));
    if (!current(gen)) return;
    box.replaceChildren(card(`${(r.items || []).length} message(s) with key ${params.key}`, messagesTable(r.items || [])));
  } else if (mode === 'id' && params.id) {
    r = await api('GET', '/api/messages/by-id' + qs({ id: params.id, topic: params.topic }));
    if (!current(gen)) return;
    const items = r.items || [];
    if (items.length === 1) { renderMessage(box, items[0], gen); return; }
    box.replaceChildren(card(`${items.length} message(s)`, messagesTable(items)));
  } else {
    box.append(h('p', { class: 'muted' }, mode === 'id' ? 'Give a message id.' : 'Give a topic' + (mode === 'key' ? ' and a key.' : ' and a time range.')));
  }
  box.dataset.loaded = 'true';
});

route(/^\/message$/, async (page, _m, params, gen) => {
  page.append(h('div', { class: 'titlebar' }, h('h1', {}, 'Message'),
    link(`#/messages${qs({ mode: 'id', id: params.id, topic: params.topic })}`, 'Search', { class: 'button' })));
  const box = h('div', { testid: 'message-box' }, h('p', { class: 'muted' }, 'Loading message…'));
  page.append(box);
  const r = await api('GET', '/api/messages/by-id' + qs({ id: params.id, topic: params.topic }));
  if (!current(gen)) return;
  const items = r.items || [];
  if (items.length === 0) { box.replaceChildren(h('p', { class: 'muted', testid: 'message-missing' }, `No message ${params.id}.`)); return; }
  renderMessage(box, items[0], gen);
});

function base64ToBytes(b64) {
  const bin = atob(b64 || '');
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hexDump(bytes) {
  const lines = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.slice(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n') || '(empty)';
}

function renderMessage(box, m, gen) {
  const bytes = base64ToBytes(m.bodyBase64);
  let json = null;
  try { json = JSON.stringify(JSON.parse(m.body), null, 2); } catch (_) { json = null; }
  const views = { text: m.body || '', json, hex: hexDump(bytes) };
  const pre = h('pre', { class: 'code body', testid: 'message-body' });
  const viewTabs = h('div', { class: 'tabs small' });
  const show = (v) => {
    pre.textContent = views[v];
    pre.dataset.view = v;
    for (const a of viewTabs.children) a.classList.toggle('active', a.dataset.view === v);
  };
  for (const v of ['text', 'json', 'hex']) {
    if (v === 'json' && json === null) continue;
    viewTabs.append(h('a', { href: 'javascript:void 0', dataset: { view: v }, testid: `body-${v}`, onclick: () => show(v) },
      v === 'json' ? 'JSON' : v === 'hex' ? 'Hex' : 'Text'));
  }
  show(json !== null ? 'json' : 'text');

  const group = h('input', { testid: 'resend-group', placeholder: 'Consumer group' });
  const resendBtn = h('button', { type: 'submit', testid: 'resend-submit' }, 'Resend');
  const resendResult = h('div', { testid: 'resend-result', class: 'result', hidden: true });
  const resendForm = h('form', {
    class: 'form', testid: 'resend-form',
    onsubmit: (e) => {
      e.preventDefault();
      act(resendBtn, async () => {
        if (!group.value.trim()) throw new ApiError('Name the group that should consume the message again.');
        const r = await api('POST', '/api/messages/resend', { topic: m.topic, msgId: m.msgId, group: group.value.trim() });
        resendResult.hidden = false;
        const res = r.result || {};
        resendResult.replaceChildren(
          typeof res === 'object' && res.consumeResult
            ? h('p', {}, 'Consumed again: ', h('span', { class: 'badge ' + (res.consumeResult === 'CR_SUCCESS' ? 'ok' : 'warn'), testid: 'resend-consume-result' }, res.consumeResult),
              res.spentTimeMills !== undefined ? h('span', { class: 'muted' }, ` in ${res.spentTimeMills} ms`) : null,
              res.remark ? h('span', { class: 'muted' }, ` · ${res.remark}`) : null)
            : null,
          h('pre', { class: 'code' }, typeof res === 'string' ? res : JSON.stringify(res, null, 2)));
      });
    },
  }, field('Consume again by group', group), resendBtn);

  const kv = (k, v, testid) => [h('dt', {}, k), h('dd', { class: 'mono', testid }, v === undefined || v === null || v === '' ? '-' : String(v))];
  box.replaceChildren(
    card(null,
      h('div', { class: 'row end' },
        link(`#/trace${qs({ topic: m.topic, msgId: m.msgId })}`, 'Trace this message', { class: 'button', testid: 'message-trace' })),
      h('dl', { class: 'kv', testid: 'message-meta' },
        kv('msgId', m.msgId, 'message-msgid'), kv('offsetMsgId', m.offsetMsgId), kv('topic', m.topic, 'message-topic'),
        kv('tags', m.tags, 'message-tags'), kv('keys', m.keys, 'message-keys'),
        kv('queue', `${m.queueId} @ offset ${m.queueOffset}`),
        kv('born', `${fmtTime(m.bornTimestamp)} from ${m.bornHost}`), kv('stored', `${fmtTime(m.storeTimestamp)} on ${m.storeHost}`),
        kv('reconsume times', m.reconsumeTimes), kv('body bytes', m.bodyBytes))),
    card('Body', viewTabs, pre),
    card('Properties', table('message-properties', [
      { title: 'name', key: 'k', mono: true }, { title: 'value', key: 'v', mono: true },
    ], Object.entries(m.properties || {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => ({ k, v })))),
    card('Resend', resendForm, resendResult));
  box.dataset.loaded = 'true';
}

// ---------------------------------------------------------------------------------------------
// Trace.

route(/^\/trace$/, async (page, _m, params, gen) => {
  const id = h('input', { testid: 'trace-msgid', class: 'wide', placeholder: 'msgId', value: params.msgId || '' });
  const topic = h('input', { testid: 'trace-topic', placeholder: 'Topic', value: params.topic || '' });
  const box = h('div', { testid: 'trace-box' });
  page.append(h('div', { class: 'titlebar' }, h('h1', {}, 'Trace')),
    card(null, h('form', {
      class: 'form', onsubmit: (e) => { e.preventDefault(); go(`#/trace${qs({ msgId: id.value.trim(), topic: topic.value.trim() })}`); },
    }, field('Message id', id), field('Topic', topic), h('button', { class: 'primary', type: 'submit', testid: 'trace-submit' }, 'Trace'))),
    box);
  if (!params.msgId) { box.append(h('p', { class: 'muted' }, 'Give a message id to see where it went.')); return; }
  box.append(h('p', { class: 'muted' }, 'Tracing…'));
  const t = await api('GET', '/api/trace' + qs({ msgId: params.msgId, topic: params.topic }));
  if (!current(gen)) return;
  const steps = t.timeline || [];
  const t0 = steps.find((x) => x.timeMs > 0);
  box.replaceChildren(card(`${steps.length} step(s)`,
    h('p', {}, link(`#/message${qs({ topic: params.topic, id: params.msgId })}`, 'Open the message', { testid: 'trace-open-message' })),
    steps.length === 0
      ? h('p', { class: 'muted', testid: 'trace-empty' }, 'Nothing recorded for this message.')
      : h('ol', { class: 'timeline', testid: 'trace-timeline' }, steps.map((x) =>
        h('li', { class: 'step ' + x.source, testid: 'trace-step', dataset: { what: x.what, source: x.source } },
          h('div', { class: 'when' }, h('span', { class: 'mono' }, fmtTime(x.timeMs)),
            t0 && x.timeMs > 0 ? h('span', { class: 'muted' }, ` +${x.timeMs - t0.timeMs} ms`) : null),
          h('div', { class: 'what' }, h('span', { class: 'badge ' + (x.source === 'client' ? 'info' : '') }, x.source), ' ',
            h('strong', { testid: 'trace-what' }, x.what)),
          h('div', { class: 'detail mono' }, x.detail))))));
  box.dataset.loaded = 'true';
});
