// "Run on this device" on WebGPU, end to end: headless Chromium with
// WebGPU on (SwiftShader, Chromium's CPU Vulkan, where the machine has no
// GPU), on the page e2e/run.sh serves next to the replica (tiny-llama
// deployed). The model comes from the canisters chunk by chunk with a
// progress bar and runs in frontend/gpu's WGSL forward pass in a Web
// Worker; its greedy answer equals the canisters' (`icllm generate`,
// E2E_EXPECTED). Then the stop button ends a running local generation.
//
// Environment as e2e/chat.test.mjs (E2E_URL, E2E_EXPECTED, E2E_MESSAGE,
// E2E_MAX_NEW_TOKENS, E2E_MODEL_DIR, E2E_SCREENSHOTS, CHROMIUM); Chromium's
// start and the page's steps are e2e/browser.mjs's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  WEBGPU_FLAGS,
  ask,
  askLocally,
  chunks,
  expected,
  manifest,
  modelBytes,
  openBrowser,
  reservation,
  screenshot,
  seenTexts,
  shownProgress,
  signInLocal,
  waitForStatus,
  watchAnswer,
  webGpuAdapter,
} from './browser.mjs';

let browser;
let page;

before(async () => {
  browser = await openBrowser(WEBGPU_FLAGS);
  page = browser.page;
});

after(async () => {
  await browser?.close();
});

test('the browser gives a WebGPU adapter', async () => {
  const gpu = await webGpuAdapter(page);
  assert.match(gpu, /^adapter: /);
  console.log(`navigator.gpu: ${gpu}`);
});

test("on WebGPU, the model downloads with progress and gives the canisters' greedy answer", async () => {
  await signInLocal(page, { fresh: true });
  const answer = await askLocally(page);
  assert.equal(answer, expected);
  assert.equal(await page.getAttribute('#local-mode', 'data-backend'), 'WebGPU');
  const meta = await page.textContent('.message.assistant:last-child .meta');
  const m = /^on this device · WebGPU · ([\d.]+) tokens\/s$/.exec(meta);
  assert.ok(m, meta);
  assert.ok(Number(m[1]) > 0, meta);
  assert.match(await page.textContent('#job-status'), /^completed on this device \(WebGPU\): \d+ tokens, [\d.]+ tokens\/s$/);
  const shown = await shownProgress(page);
  assert.ok(shown.some((p) => /^stage 0, chunk 1 of \d+: downloading: /.test(p.text)), JSON.stringify(shown));
  assert.ok(
    shown.some((p) => p.text.includes(`(0 from the cache, ${chunks} downloaded)`) && p.value === p.max && p.max === modelBytes),
    JSON.stringify(shown),
  );
  assert.ok(shown.some((p) => p.text.startsWith('uploading the weights to the GPU')), JSON.stringify(shown));
  assert.equal(await page.isVisible('#local-progress'), false, 'the bar goes once the model is loaded');
  console.log(`WebGPU answer: ${JSON.stringify(answer)} · ${meta}`);
  await screenshot(page, '10-local-webgpu.png');
});

test('stop ends a running local generation', async () => {
  await page.click('#new-chat');
  await watchAnswer(page);
  // The canisters' stop test's message: its greedy answer fills all the
  // room the context leaves (no end-of-sequence token).
  const longMessage = 'k';
  const room = manifest.config.max_position_embeddings - reservation(longMessage, 0);
  await ask(page, longMessage, room);
  await waitForStatus(page, ['running']);
  await page.waitForFunction(() => new Set(window.__seen.filter((t) => t.length > 0)).size >= 2, null, {
    timeout: 60_000,
    polling: 10,
  });
  await page.click('#stop');
  const final = await waitForStatus(page, ['completed', 'cancelled', 'failed', 'error']);
  const text = await page.textContent('#job-status');
  assert.equal(final, 'cancelled', text);
  const m = /^cancelled on this device \(WebGPU\): (\d+) tokens, [\d.]+ tokens\/s$/.exec(text);
  assert.ok(m, text);
  const generated = Number(m[1]);
  assert.ok(generated >= 2 && generated < room, `stopped after ${generated} of ${room} tokens`);
  const seen = await seenTexts(page);
  assert.equal(await page.textContent('.message.assistant:last-child .text'), seen.at(-1), 'the text stops where it stopped');
  assert.equal(await page.isVisible('#stop'), false, 'no stop button once stopped');
  console.log(`stopped after ${generated} of ${room} tokens, streamed in ${new Set(seen).size} updates`);
  await screenshot(page, '11-local-webgpu-stopped.png');
});
