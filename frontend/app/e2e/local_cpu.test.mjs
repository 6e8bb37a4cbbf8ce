// "Run on this device" on the CPU path, end to end: headless Chromium
// started with WebGPU disabled, on the page e2e/run.sh serves next to the
// replica (tiny-llama deployed). The model comes from the canisters chunk
// by chunk with a progress bar, runs in the tract engine's Web Worker
// (frontend/engine_web), and its greedy answer equals the canisters'
// (`icllm generate`, E2E_EXPECTED). Then: a second load comes from the
// cache, and a full storage quota falls back to memory with a plain message.
//
// Environment as e2e/chat.test.mjs (E2E_URL, E2E_EXPECTED, E2E_MESSAGE,
// E2E_MAX_NEW_TOKENS, E2E_MODEL_DIR, E2E_SCREENSHOTS, CHROMIUM).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set: run e2e/run.sh`);
  return v;
};
const url = env('E2E_URL');
const message = env('E2E_MESSAGE');
const maxNewTokens = Number(env('E2E_MAX_NEW_TOKENS'));
const expected = readFileSync(env('E2E_EXPECTED'), 'utf8');
const modelDir = env('E2E_MODEL_DIR');
const shots = env('E2E_SCREENSHOTS');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8'));
const modelBytes = manifest.tokenizer.size + manifest.stages.reduce((n, s) => n + s.size, 0);
const chunks = manifest.stages.reduce((n, s) => n + s.chunks.length, 0);

let context;
let page;
let userDataDir;

before(async () => {
  mkdirSync(shots, { recursive: true });
  userDataDir = mkdtempSync(join(tmpdir(), 'icllm-e2e-cpu-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: false, // the flag below: Chromium's own headless mode
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // No WebGPU: the page must take the CPU path.
      '--disable-features=WebGPU',
      '--disable-gpu',
    ],
    viewport: { width: 1100, height: 800 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[page] ${m.text()}`);
  });
  await page.goto(url);
});

after(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

async function waitForStatus(words, timeout = 180_000) {
  await page.waitForFunction(
    (w) => w.includes(document.getElementById('job-status').dataset.status),
    words,
    { timeout, polling: 50 },
  );
  return page.locator('#job-status').getAttribute('data-status');
}

/** Records every text the progress line shows, and the bar's values. */
async function watchProgress() {
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.getElementById('local-progress-bar');
    new MutationObserver(() => {
      window.__progress.push({
        text: document.getElementById('local-progress-text').textContent,
        value: bar.value,
        max: bar.max,
        visible: !document.getElementById('local-progress').hidden,
      });
    }).observe(document.getElementById('local-progress'), {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
}

/** Signs in (a fresh device key, registered; or the key this browser
 *  keeps, after a reload) and turns local mode on. */
async function signInLocal({ fresh }) {
  if (fresh) {
    await page.click('#sign-in-device');
    await page.waitForSelector('#register:not([hidden])');
    await page.click('#register');
  }
  await page.waitForSelector('#signed-in:not([hidden])');
  await page.waitForFunction(() => /tokens available/.test(document.getElementById('tokens').textContent));
  await page.waitForFunction((m) => document.getElementById('model').value === m, manifest.name);
  await page.waitForSelector('#local-mode:not([disabled])');
  await page.check('#local-mode');
}

/** Asks the test's question greedily on this device; returns the answer. */
async function askLocally() {
  await watchProgress();
  await page.fill('#max-new-tokens', String(maxNewTokens));
  await page.fill('#temperature', '0');
  await page.fill('#prompt', message);
  await page.click('#send');
  const status = await waitForStatus(['completed', 'cancelled', 'failed', 'error']);
  const error = (await page.isVisible('#error')) ? await page.textContent('#error') : '';
  assert.equal(status, 'completed', error);
  return page.textContent('.message.assistant:last-child .text');
}

test('the browser has no WebGPU', async () => {
  const gpu = await page.evaluate(async () => {
    if (!('gpu' in navigator) || !navigator.gpu) return 'absent';
    return (await navigator.gpu.requestAdapter()) === null ? 'no adapter' : 'adapter';
  });
  assert.notEqual(gpu, 'adapter');
  console.log(`navigator.gpu: ${gpu}`);
});

test('on the CPU, the model downloads with progress and gives the canisters\' greedy answer', async () => {
  await signInLocal({ fresh: true });
  const answer = await askLocally();
  assert.equal(answer, expected);
  assert.equal(await page.getAttribute('#local-mode', 'data-backend'), 'CPU (wasm)');
  const meta = await page.textContent('.message.assistant:last-child .meta');
  const m = /^on this device · CPU \(wasm\) · ([\d.]+) tokens\/s$/.exec(meta);
  assert.ok(m, meta);
  assert.ok(Number(m[1]) > 0, meta);
  assert.match(await page.textContent('#job-status'), /^completed on this device \(CPU \(wasm\)\): \d+ tokens, [\d.]+ tokens\/s$/);
  const progress = await page.evaluate(() => window.__progress);
  const shown = progress.filter((p) => p.visible);
  assert.ok(shown.length > 0, 'the progress bar was shown');
  assert.ok(shown.some((p) => /^stage 0, chunk 1 of \d+: downloading: /.test(p.text)), JSON.stringify(shown));
  assert.ok(
    shown.some((p) => p.text.includes(`(0 from the cache, ${chunks} downloaded)`) && p.value === p.max && p.max === modelBytes),
    JSON.stringify(shown),
  );
  assert.equal(await page.isVisible('#local-progress'), false, 'the bar goes once the model is loaded');
  assert.equal(await page.getAttribute('#local-note', 'data-notice'), null, 'the weights were cached');
  console.log(`CPU answer: ${JSON.stringify(answer)} · ${meta}`);
  await page.screenshot({ path: join(shots, '8-local-cpu.png') });
});

test('after a reload the weights come from the cache, checked, and answer the same', async () => {
  await page.reload();
  await signInLocal({ fresh: false });
  const answer = await askLocally();
  assert.equal(answer, expected);
  const shown = (await page.evaluate(() => window.__progress)).filter((p) => p.visible);
  assert.ok(shown.some((p) => p.text.includes(`(${chunks} from the cache, 0 downloaded)`)), JSON.stringify(shown));
  assert.ok(!shown.some((p) => p.text.includes('downloading')), JSON.stringify(shown));
});

test('a full storage quota keeps the model in memory, with a plain message', async () => {
  await page.evaluate(() => caches.delete('icllm-model-chunks-v1'));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: 1024 });
  try {
    await page.reload();
    await signInLocal({ fresh: false });
    const answer = await askLocally();
    assert.equal(answer, expected);
    assert.equal(await page.getAttribute('#local-note', 'data-notice'), 'true');
    assert.equal(
      await page.textContent('#local-note'),
      "This browser's storage is full, so the model is not saved on this device: it is kept in memory for this visit and will be downloaded again next time.",
    );
    await page.screenshot({ path: join(shots, '9-local-cpu-quota-full.png') });
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin });
  }
});
