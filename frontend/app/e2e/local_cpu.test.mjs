// "Run on this device" on the CPU path, end to end: headless Chromium
// started with WebGPU disabled, on the page e2e/run.sh serves next to the
// replica (tiny-llama deployed). The model comes from the canisters chunk
// by chunk with a progress bar, runs in the tract engine's Web Worker
// (frontend/engine_web), and its greedy answer equals the canisters'
// (`icllm generate`, E2E_EXPECTED). Then: a second load comes from the
// cache, and a full storage quota falls back to memory with a plain message.
//
// Environment as e2e/chat.test.mjs (E2E_URL, E2E_EXPECTED, E2E_MESSAGE,
// E2E_MAX_NEW_TOKENS, E2E_MODEL_DIR, E2E_SCREENSHOTS, CHROMIUM); Chromium's
// start and the page's steps are e2e/browser.mjs's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  NO_WEBGPU_FLAGS,
  askLocally,
  chunks,
  expected,
  modelBytes,
  openBrowser,
  screenshot,
  shownProgress,
  signInLocal,
  url,
  webGpuAdapter,
} from './browser.mjs';

let browser;
let page;

before(async () => {
  browser = await openBrowser(NO_WEBGPU_FLAGS);
  page = browser.page;
});

after(async () => {
  await browser?.close();
});

test('the browser has no WebGPU', async () => {
  const gpu = await webGpuAdapter(page);
  assert.ok(gpu === 'absent' || gpu === 'no adapter', gpu);
  console.log(`navigator.gpu: ${gpu}`);
});

test('on the CPU, the model downloads with progress and gives the canisters\' greedy answer', async () => {
  await signInLocal(page, { fresh: true });
  const answer = await askLocally(page);
  assert.equal(answer, expected);
  assert.equal(await page.getAttribute('#local-mode', 'data-backend'), 'CPU (wasm)');
  const meta = await page.textContent('.message.assistant:last-child .meta');
  const m = /^on this device · CPU \(wasm\) · ([\d.]+) tokens\/s$/.exec(meta);
  assert.ok(m, meta);
  assert.ok(Number(m[1]) > 0, meta);
  assert.match(await page.textContent('#job-status'), /^completed on this device \(CPU \(wasm\)\): \d+ tokens, [\d.]+ tokens\/s$/);
  const shown = await shownProgress(page);
  assert.ok(shown.length > 0, 'the progress bar was shown');
  assert.ok(shown.some((p) => /^stage 0, chunk 1 of \d+: downloading: /.test(p.text)), JSON.stringify(shown));
  assert.ok(
    shown.some((p) => p.text.includes(`(0 from the cache, ${chunks} downloaded)`) && p.value === p.max && p.max === modelBytes),
    JSON.stringify(shown),
  );
  assert.equal(await page.isVisible('#local-progress'), false, 'the bar goes once the model is loaded');
  assert.equal(await page.getAttribute('#local-note', 'data-notice'), null, 'the weights were cached');
  console.log(`CPU answer: ${JSON.stringify(answer)} · ${meta}`);
  await screenshot(page, '8-local-cpu.png');
});

test('after a reload the weights come from the cache, checked, and answer the same', async () => {
  await page.reload();
  await signInLocal(page, { fresh: false });
  const answer = await askLocally(page);
  assert.equal(answer, expected);
  const shown = await shownProgress(page);
  assert.ok(shown.some((p) => p.text.includes(`(${chunks} from the cache, 0 downloaded)`)), JSON.stringify(shown));
  assert.ok(!shown.some((p) => p.text.includes('downloading')), JSON.stringify(shown));
});

test('a full storage quota keeps the model in memory, with a plain message', async () => {
  await page.evaluate(() => caches.delete('icllm-model-chunks-v1'));
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: 1024 });
  try {
    await page.reload();
    await signInLocal(page, { fresh: false });
    const answer = await askLocally(page);
    assert.equal(answer, expected);
    assert.equal(await page.getAttribute('#local-note', 'data-notice'), 'true');
    assert.equal(
      await page.textContent('#local-note'),
      "This browser's storage is full, so the model is not saved on this device: it is kept in memory for this visit and will be downloaded again next time.",
    );
    await screenshot(page, '9-local-cpu-quota-full.png');
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin });
  }
});
