// The console's data, apart from the page (so tests can import it): the CSV export, and the
// overview — figures from the requests of the last 30 days, and the chart of sign-ups per
// day by outcome, inline SVG drawn here, no chart library. The same figures are in a table
// for whoever does not read charts.

const SVG = 'http://www.w3.org/2000/svg';
const DAYS = 30;
/** Outcome groups, bottom to top, with colours of at least 3:1 against white. */
export const OUTCOMES = [
  ['invited', '#0b6b2f', (s) => s === 'Invited'],
  ['pending', '#0a4f96', (s) => s === 'PendingApproval'],
  ['denied', '#a4001d', (s) => s === 'Denied'],
  ['failed', '#7a4b00', (s) => s === 'Failed'],
  ['other', '#5c5c5c', () => true],
];

const outcomeOf = (status) => OUTCOMES.find(([, , test]) => test(status))[0];
const dayOf = (date) => date.toISOString().slice(0, 10);

/** Per day (UTC, oldest first) the count of each outcome; the oldest wait; top domains. */
export function overview(recent, pending, now) {
  const days = [];
  for (let back = DAYS - 1; back >= 0; back -= 1) {
    const day = new Date(now.getTime() - back * 86_400_000);
    days.push({ day: dayOf(day), counts: Object.fromEntries(OUTCOMES.map(([name]) => [name, 0])) });
  }
  const byDay = new Map(days.map((entry) => [entry.day, entry]));
  const domains = new Map();
  for (const item of recent) {
    const entry = byDay.get(item.createdAt.slice(0, 10));
    if (entry) entry.counts[outcomeOf(item.status)] += 1;
    domains.set(item.domain, (domains.get(item.domain) || 0) + 1);
  }
  const oldest = pending.reduce((min, item) => Math.min(min, Date.parse(item.createdAt)), Infinity);
  return {
    days,
    oldestWaitMs: Number.isFinite(oldest) ? now.getTime() - oldest : null,
    topDomains: [...domains].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 5),
  };
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Stacked bars into `chart`, the legend into `legend`, the figures into `table`. */
export function drawChart(days, { chart, legend, table }, tr) {
  const width = 600;
  const height = 200;
  const top = 10;
  const bottom = 24;
  const left = 28;
  const max = Math.max(1, ...days.map((d) => Object.values(d.counts).reduce((a, b) => a + b, 0)));
  const scale = (height - top - bottom) / max;
  const barWidth = (width - left) / days.length;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-labelledby': 'chart-caption',
    class: 'chart-svg',
  });
  root.append(svg('line', { x1: left, x2: width, y1: height - bottom, y2: height - bottom, stroke: '#767676' }));
  root.append(svg('text', { x: left - 4, y: top + 8, 'text-anchor': 'end', 'font-size': 11 }, String(max)));
  root.append(svg('text', { x: left - 4, y: height - bottom, 'text-anchor': 'end', 'font-size': 11 }, '0'));
  days.forEach((entry, index) => {
    let y = height - bottom;
    const x = left + index * barWidth + 1;
    for (const [name, colour] of OUTCOMES) {
      const count = entry.counts[name];
      if (!count) continue;
      const h = count * scale;
      y -= h;
      const bar = svg('rect', { x, y, width: Math.max(1, barWidth - 2), height: h, fill: colour, 'data-outcome': name });
      bar.append(svg('title', {}, `${entry.day} · ${tr(`console.outcome.${name}`)}: ${count}`));
      root.append(bar);
    }
    if ((index % 7 === 0 && index < days.length - 4) || index === days.length - 1) {
      root.append(svg('text', { x: x + barWidth / 2, y: height - 6, 'text-anchor': 'middle', 'font-size': 11 }, entry.day.slice(5)));
    }
  });
  chart.replaceChildren(root);

  legend.replaceChildren(
    ...OUTCOMES.map(([name]) => {
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.dataset.outcome = name;
      item.append(swatch, tr(`console.outcome.${name}`));
      return item;
    }),
  );

  const head = document.createElement('tr');
  for (const text of [tr('console.overview.day'), ...OUTCOMES.map(([name]) => tr(`console.outcome.${name}`))]) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = text;
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(
    ...days
      .filter((entry) => Object.values(entry.counts).some(Boolean))
      .map((entry) => {
        const row = document.createElement('tr');
        const day = document.createElement('th');
        day.scope = 'row';
        day.textContent = entry.day;
        row.append(day);
        for (const [name] of OUTCOMES) {
          const cell = document.createElement('td');
          cell.textContent = String(entry.counts[name]);
          row.append(cell);
        }
        return row;
      }),
  );
}

const CSV_COLUMNS = [
  'requestId', 'status', 'email', 'displayName', 'domain', 'access', 'company', 'justification', 'reason',
  'createdAt', 'decideBy', 'decidedBy', 'decidedAt', 'decisionReason', 'dryRun',
];

/** RFC 4180; a cell a spreadsheet would run as a formula is prefixed with an apostrophe. */
export function toCsv(items) {
  const cell = (value) => {
    let text = value === null || value === undefined ? '' : String(value);
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [CSV_COLUMNS.join(','), ...items.map((item) => CSV_COLUMNS.map((name) => cell(item[name])).join(','))].join('\r\n') + '\r\n';
}
