// The chat UI end to end: headless Chromium (Debian's, driven by
// playwright-core) on the page that `icllm replica serve --frontend`
// serves next to the replica, with tiny-llama deployed in the canisters
// (e2e/run.sh prepares all that and passes it in the environment).
//
//   E2E_URL         the served replica (and page)
//   E2E_ICLLM       the icllm binary; E2E_IDENTITY the controller's PEM,
//   E2E_TASK_MANAGER the task manager's id
//   E2E_EXPECTED    file holding `icllm generate`'s greedy answer to E2E_MESSAGE
//   E2E_LOCAL_BUILT 1 when the app was built with a local backend package
//                   (frontend/engine_web/pkg or frontend/gpu/pkg), else 0
//   E2E_MESSAGE, E2E_MAX_NEW_TOKENS, E2E_MODEL_DIR, E2E_SCREENSHOTS, CHROMIUM
//
// Chromium's start and the page's steps are e2e/browser.mjs's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  WEBGPU_FLAGS,
  ask,
  env,
  expected,
  manifest,
  maxNewTokens,
  message,
  openBrowser,
  reservation,
  screenshot,
  seenTexts,
  url,
  waitForStatus as waitFor,
  watchAnswer,
} from './browser.mjs';

const icllm = env('E2E_ICLLM');
const net = ['--network', url, '--identity', env('E2E_IDENTITY'), '--canister', `task_manager=${env('E2E_TASK_MANAGER')}`];
// Whether a local backend package was there when the app was built (run.sh says).
const localBuilt = env('E2E_LOCAL_BUILT') === '1';
const model = manifest.name;

let browser;
let page;

before(async () => {
  browser = await openBrowser(WEBGPU_FLAGS);
  page = browser.page;
});

after(async () => {
  await browser?.close();
});

const waitForStatus = (words, timeout = 120_000) => waitFor(page, words, timeout);

test('the page names the network and the task manager from config.json', async () => {
  await page.waitForSelector('#sign-in-device:not([hidden])');
  const network = await page.textContent('#network');
  assert.match(network, /^local replica · task manager [a-z0-9-]+$/);
  assert.equal(await page.isVisible('#sign-in-ii'), false, 'no Internet Identity on a local replica');
  await screenshot(page, '1-signed-out.png');
});

test('sign in with the device key and register', async () => {
  await page.click('#sign-in-device');
  await page.waitForSelector('#register:not([hidden])');
  const principal = (await page.textContent('#principal')).trim();
  assert.match(principal, /^[a-z0-9]{5}(-[a-z0-9]{5})*-[a-z0-9]{3}$/);
  assert.equal(await page.textContent('#tokens'), 'not registered yet');
  await page.click('#register');
  await page.waitForSelector('#register[hidden]', { state: 'attached' });
  assert.match(await page.textContent('#tokens'), /^\d+ of \d+ tokens available/);
  assert.equal(await page.isVisible('#sign-in-device'), false, 'signed in: no sign-in button');
  // The key stays in this browser: a reload signs in as the same principal.
  await page.reload();
  await page.waitForSelector('#signed-in:not([hidden])');
  await page.waitForFunction(() => document.getElementById('principal').textContent !== '');
  assert.equal((await page.textContent('#principal')).trim(), principal);
  await page.waitForFunction(() => /tokens available/.test(document.getElementById('tokens').textContent));
  await screenshot(page, '2-signed-in.png');
});

test('the model picker lists the deployed model', async () => {
  await page.waitForFunction((m) => [...document.querySelectorAll('#model option')].some((o) => o.value === m), model);
  assert.equal(await page.inputValue('#model'), model);
  assert.equal(await page.textContent(`#model option[value="${model}"]`), model, 'deployed');
});

test('chat through the canisters streams the greedy answer icllm gets', async () => {
  // Every text the answer shows on its way, from the page itself.
  await watchAnswer(page);
  await ask(page, message, maxNewTokens);
  assert.equal(await waitForStatus(['completed', 'cancelled', 'failed', 'error']), 'completed');
  const answer = await page.textContent('.message.assistant:last-child .text');
  assert.equal(answer, expected);
  // Each poll appends only the new text: every step extends the last.
  const seen = await seenTexts(page);
  console.log(`answer (${maxNewTokens} tokens max) arrived in ${new Set(seen).size} updates: ${JSON.stringify(answer)}`);
  assert.match(await page.textContent('#job-status'), /completed \((MaxNewTokens|Eos)\), \d+ prompt \+ \d+ generated tokens/);
  assert.equal(await page.isVisible('#error'), false);
  await screenshot(page, '3-chat-canisters.png');
});

test('"Run on this device" is offered exactly when the build has the local backend', async () => {
  if (localBuilt) {
    assert.equal(await page.isDisabled('#local-mode'), false);
    assert.equal(await page.textContent('#local-note'), 'Downloads the model from the canisters and runs it here.');
    await screenshot(page, '4-local-mode-available.png');
  } else {
    assert.equal(await page.isDisabled('#local-mode'), true);
    assert.equal(
      await page.textContent('#local-note'),
      'Running on this device is not available in this build: the app was built without a local backend (frontend/engine_web/pkg for the CPU, frontend/gpu/pkg for WebGPU).',
    );
    await screenshot(page, '4-local-mode-unavailable.png');
  }
});

test('stop ends a running job: its status is cancelled', async () => {
  await page.click('#new-chat');
  await page.evaluate(() => {
    window.__seen = [];
  });
  // A message whose greedy answer fills the room the context leaves
  // (129 tokens, no end-of-sequence token: checked with `icllm generate
  // --model models/tiny-llama --chat k`), long enough to be stopped.
  const longMessage = 'k';
  const room = manifest.config.max_position_embeddings - reservation(longMessage, 0);
  await ask(page, longMessage, room);
  await waitForStatus(['running'], 120_000);
  // It streams: the text grows poll by poll, each update extending the last.
  await page.waitForFunction(() => new Set(window.__seen.filter((t) => t.length > 0)).size >= 2, null, {
    timeout: 60_000,
    polling: 20,
  });
  await page.click('#stop');
  const final = await waitForStatus(['completed', 'cancelled', 'failed', 'error']);
  const text = await page.textContent('#job-status');
  assert.equal(final, 'cancelled', text);
  const generated = Number(/\+ (\d+) generated tokens/.exec(text)[1]);
  assert.ok(generated < room, `stopped after ${generated} of ${room} tokens`);
  const seen = await seenTexts(page);
  console.log(`stopped after ${generated} of ${room} tokens, streamed in ${new Set(seen).size} updates`);
  await screenshot(page, '5-stopped.png');
});

test('an empty bucket shows the rate-limit message with the retry time', async () => {
  const principal = (await page.textContent('#principal')).trim();
  const needed = reservation(message, maxNewTokens);
  // A bucket just big enough for one request, refilling 1 token a second:
  // the first request spends its real prompt and answer, the second finds
  // too few tokens left.
  execFileSync(icllm, [...net, 'set-quota', '--user', principal, '--capacity', String(needed + 5), '--refill-per-sec', '1'], {
    stdio: 'inherit',
  });
  await page.click('#new-chat');
  await ask(page, message, maxNewTokens);
  assert.equal(await waitForStatus(['completed', 'cancelled', 'failed', 'error']), 'completed');
  await page.click('#new-chat');
  await ask(page, message, maxNewTokens);
  await page.waitForSelector('#error:not([hidden])');
  const error = await page.textContent('#error');
  const m = /^You have used your tokens for now: this request needs (\d+) and (\d+) are left\. Try again in (\d+) seconds?\.$/.exec(error);
  assert.ok(m, error);
  assert.equal(Number(m[1]), needed);
  assert.ok(Number(m[2]) < needed);
  assert.ok(Number(m[3]) >= 1 && Number(m[3]) <= needed, error);
  // The message was not sent: it is back in the box, to send later.
  assert.equal(await page.inputValue('#prompt'), message);
  await screenshot(page, '6-rate-limited.png');
});

test('on mainnet the page offers Internet Identity, not a device key', async () => {
  // Nothing is called before sign-in: the page only reads its configuration.
  await page.goto(`${url}?network=ic&canister=ryjl3-tyaaa-aaaaa-aaaba-cai`);
  await page.waitForSelector('#sign-in-ii:not([hidden])');
  assert.equal(await page.textContent('#network'), 'mainnet · task manager ryjl3-tyaaa-aaaaa-aaaba-cai');
  assert.equal(await page.isVisible('#sign-in-device'), false);
  assert.equal(await page.isVisible('#signed-in'), false, 'the device key is not used on mainnet');
  await screenshot(page, '7-mainnet-sign-in.png');
});
