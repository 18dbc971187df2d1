// modelport's `browser` runtime driver: node run_browser.js CONFIG_JSON
// CONFIG_JSON: {chromium, profile, origin, model, external_data, output_dir}. Launches the system Chromium headless
// with a fresh profile (never a downloaded browser), opens origin/page.html (served by modelport from 127.0.0.1),
// runs every input set in that one page and writes output_dir/sets.json plus one .bin per output.
// A page error, a load failure or a request outside the origin exits 1 with the reason on stderr.
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core'); // found through NODE_PATH
const { message } = require('./exchange.js');

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

async function main([configFile]) {
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  const context = await chromium.launchPersistentContext(config.profile, {
    executablePath: config.chromium, headless: true, args: FLAGS,
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    let failPage;
    const pageFailed = new Promise((_, reject) => { failPage = reject; });
    pageFailed.catch(() => {}); // awaited in the race below; one arriving later must not crash the exit
    page.on('pageerror', (e) => failPage(new Error(`page error: ${message(e)}`)));
    page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`console: ${m.text()}\n`); });
    // Nothing leaves 127.0.0.1: a request elsewhere fails the run.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${config.origin}/`)) return route.continue();
      failPage(new Error(`the page requested ${url}, outside ${config.origin}`));
      return route.abort();
    });
    await page.exposeFunction('modelportWrite', (file, data) => {
      if (!/^\d+\/\d+\.bin$/.test(file)) throw new Error(`refused to write ${file}`);
      const target = path.join(config.output_dir, file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, Buffer.from(data, 'base64'));
    });
    await page.goto(`${config.origin}/page.html`);
    const run = page.evaluate(([m, x]) => window.modelportRun(m, x), [config.model, config.external_data]);
    const out = await Promise.race([run, pageFailed]);
    out.runtime.chromium = context.browser() ? context.browser().version() : 'unknown';
    fs.writeFileSync(path.join(config.output_dir, 'sets.json'), JSON.stringify(out, null, 1));
  } finally {
    await context.close();
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`browser: ${message(e)}\n`);
  process.exit(1);
});
