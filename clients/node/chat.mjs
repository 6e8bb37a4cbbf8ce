// A user of the task manager with the official JavaScript agent, as a web
// page or a Node service would be: a fresh Ed25519 identity, the root key
// fetched from the (local) network, query signatures verified (the agent's
// default), candid from bindings generated off the checked-in .did.
//
//   node chat.mjs <url> <task manager id> <model> <question> [max new tokens]
//
// Registers, submits `generate`, polls `job` with `from_token` (only new text
// each time) until the job ends, prints the answer as it streams, and exits
// non-zero on any error or when the job does not complete.

import { Actor, HttpAgent } from '@icp-sdk/core/agent';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { idlFactory } from './bindings/task_manager.did.js';

const [url, canisterId, model, question, maxTokens = '24'] = process.argv.slice(2);
if (!question) {
  console.error('usage: node chat.mjs <url> <task manager id> <model> <question> [max new tokens]');
  process.exit(2);
}

const fail = (what, err) => {
  console.error(`${what}: ${typeof err === 'string' ? err : JSON.stringify(err, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
  process.exit(1);
};

const identity = Ed25519KeyIdentity.generate();
const agent = await HttpAgent.create({ host: url, identity, shouldFetchRootKey: true });
const tm = Actor.createActor(idlFactory, { agent, canisterId });
console.log(`principal ${identity.getPrincipal().toText()}`);

const registered = await tm.register();
if ('Err' in registered) fail('register', registered.Err);
console.log(`registered; bucket ${registered.Ok.quota.capacity} tokens`);

const submitted = await tm.generate({
  model,
  prompt: { Chat: [{ role: { User: null }, content: question }] },
  max_new_tokens: Number(maxTokens),
  stop_sequences: [],
  sampling: { top_k: [], top_p: [], temperature: [], repetition_penalty: [] },
  seed: [],
});
if ('Err' in submitted) fail('generate', submitted.Err);
const job = submitted.Ok;
console.log(`job ${job}`);

let tokens = 0;
let text = '';
for (let polls = 0; ; polls++) {
  if (polls > 6000) fail('job', 'did not finish after 6000 polls');
  const answer = await tm.job({ job, from_token: [tokens] });
  if ('Err' in answer) fail('job', answer.Err);
  const info = answer.Ok;
  if (info.text.length > 0) {
    process.stdout.write(info.text);
    text += info.text;
  }
  tokens = info.generated_tokens;
  const status = Object.keys(info.status)[0];
  if (status === 'Completed') break;
  if (status === 'Failed' || status === 'Cancelled') fail('job', info.status);
  await new Promise((r) => setTimeout(r, 200));
}
process.stdout.write('\n');
console.log(`ANSWER ${JSON.stringify(text)}`);
