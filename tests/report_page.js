// Opens report pages in the system Chromium (headless, through playwright-core) and says what they did:
//   node report_page.js CONFIG_JSON
// CONFIG_JSON: {chromium, origin, pages: [{path, screenshot}], result}. Every request is recorded, and any
// request other than the page's own URL is aborted (and recorded as blocked). For each page: its requests,
// console errors, page errors, every chart (each top-level <svg> and <img>) with its rendered size (for an
// <img>: naturalWidth, 0 when it did not decode), the parity-matrix cells, and a full-page PNG screenshot.
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core'); // found through NODE_PATH

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

function facts() {
  const charts = [...document.querySelectorAll('svg, img')].filter((e) => !e.parentElement.closest('svg'));
  return {
    title: document.title,
    verdict: (document.querySelector('.verdict') || {}).textContent || null,
    charts: charts.map((e) => {
      const box = e.getBoundingClientRect();
      const img = e.tagName.toLowerCase() === 'img';
      return {
        tag: e.tagName.toLowerCase(),
        kind: e.getAttribute('data-chart'),
        width: box.width,
        height: box.height,
        shapes: img ? null : e.querySelectorAll('rect, line, path, circle, polyline').length,
        naturalWidth: img ? e.naturalWidth : null,
      };
    }),
    cells: [...document.querySelectorAll('[data-candidate][data-output]')].map((e) => [
      e.getAttribute('data-candidate'), e.getAttribute('data-output')]),
    resources: performance.getEntriesByType('resource').map((r) => r.name),
  };
}

async function openPage(context, origin, spec) {
  const url = `${origin}${spec.path}`;
  const seen = { url, requests: [], blocked: [], consoleErrors: [], pageErrors: [] };
  const page = await context.newPage();
  page.on('request', (r) => seen.requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') seen.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  await page.route('**/*', (route) => {
    const asked = route.request().url();
    if (asked === url) return route.continue();
    seen.blocked.push(asked);
    return route.abort();
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForTimeout(200); // anything the page might fetch late would show up here
  Object.assign(seen, await page.evaluate(facts));
  await page.screenshot({ path: spec.screenshot, fullPage: true });
  await page.close();
  return seen;
}

async function main([configFile]) {
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  const browser = await chromium.launch({ executablePath: config.chromium, headless: true, args: FLAGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const pages = [];
    for (const spec of config.pages) pages.push(await openPage(context, config.origin, spec));
    fs.writeFileSync(config.result, JSON.stringify({ chromium: browser.version(), pages }, null, 1));
  } finally {
    await browser.close();
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`report_page: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
