// The explorer dashboard (bin/noesis/src/dashboard/index.html, served by the node at GET /)
// in a real browser: Debian's chromium driven by playwright-core. It waits until the
// validator's view (#miners) shows at least two accepted miners and the metagraph
// (#metagraph) at least three uids, asks a question in the chat box, and expects an answer
// whose receipt the gateway accepted. A full-page screenshot goes to
// ${NOESIS_ARTIFACTS:-tests/compat/artifacts}/dashboard.png, pass or fail.
//
// Needs NOESIS_DASHBOARD_URL (the node's http://host:port/ with a validator, miners and a
// gateway running) and chromium (CHROMIUM_PATH, or /usr/bin/chromium); skipped otherwise.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const URL_UNDER_TEST = process.env.NOESIS_DASHBOARD_URL;
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'].find((p) => p && existsSync(p));
const ARTIFACTS = process.env.NOESIS_ARTIFACTS
  ? resolve(process.env.NOESIS_ARTIFACTS)
  : fileURLToPath(new URL('../artifacts/', import.meta.url));

const MINERS_TIMEOUT_MS = 180_000;
const CHAT_TIMEOUT_MS = 120_000;
const QUESTION = 'In one sentence, what is a blockchain?';

const skip = !URL_UNDER_TEST
  ? 'NOESIS_DASHBOARD_URL is not set (the URL of a node serving the dashboard)'
  : !CHROMIUM
    ? 'no chromium executable (set CHROMIUM_PATH or install /usr/bin/chromium)'
    : false;

test('dashboard: accepted miners, the metagraph, and a chat answer with an accepted receipt',
  { skip, timeout: MINERS_TIMEOUT_MS + CHAT_TIMEOUT_MS + 60_000 }, async (t) => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const problems = [];
    let page;
    try {
      page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
      page.on('console', (m) => {
        // The browser logs every 4xx/5xx answer as "Failed to load resource"; those are
        // expected (no validator yet, a gateway error) and shown by the page itself.
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
      });
      await page.goto(URL_UNDER_TEST);

      await page.waitForFunction(
        () => document.querySelectorAll('#miners tbody tr[data-verdict="accepted"]').length >= 2,
        null, { timeout: MINERS_TIMEOUT_MS, polling: 500 },
      ).catch(async (e) => {
        throw new Error(`fewer than 2 accepted miners in #miners after ${MINERS_TIMEOUT_MS / 1000} s: `
          + `${JSON.stringify(await page.locator('#miners tbody').innerText())} (${e.message})`);
      });
      await page.waitForFunction(
        () => document.querySelectorAll('#metagraph tbody tr[data-uid]').length >= 3,
        null, { timeout: 30_000, polling: 500 },
      );
      const uids = await page.$$eval('#metagraph tbody tr[data-uid]',
        (rows) => rows.map((r) => `${r.dataset.netuid}/${r.dataset.uid}`));
      assert.ok(new Set(uids).size >= 3, `the metagraph lists at least 3 uids: ${uids.join(', ')}`);
      t.diagnostic(`metagraph uids (netuid/uid): ${uids.join(', ')}`);

      await page.waitForSelector('#chat-send:not([disabled])', { timeout: 30_000 });
      await page.fill('#chat-input', QUESTION);
      await page.click('#chat-send');
      await page.waitForFunction(
        () => document.querySelector('#chat-answer')?.textContent.trim() !== '',
        null, { timeout: CHAT_TIMEOUT_MS, polling: 250 },
      );
      const answer = (await page.textContent('#chat-answer')).trim();
      const failed = await page.$eval('#chat-answer', (e) => e.classList.contains('error'));
      assert.ok(!failed, `the gateway answered with an error: ${answer} (console: ${problems.join(' | ')})`);
      assert.ok(answer.length > 0, 'a non-empty answer');
      const verdict = (await page.textContent('#chat-verdict')).trim();
      assert.match(verdict, /^accepted/, 'the verdict says accepted');
      assert.ok(await page.$eval('#chat-verdict', (e) => e.classList.contains('accepted')),
        'the verdict element has class accepted');
      t.diagnostic(`answer: ${answer}`);
      t.diagnostic(`verdict: ${verdict}`);
      assert.deepEqual(problems, [], 'no script errors in the page');
    } finally {
      if (page) {
        mkdirSync(ARTIFACTS, { recursive: true });
        const file = join(ARTIFACTS, 'dashboard.png');
        await page.screenshot({ path: file, fullPage: true }).then(
          () => t.diagnostic(`screenshot: ${file}`),
          (e) => t.diagnostic(`no screenshot: ${e.message}`),
        );
      }
      await browser.close();
    }
  });
