// The chat UI: configuration → sign-in → register → model picker → chat
// through the task manager (streamed tokens, stop), or on this device when
// the local backend was built.

import './style.css';
import { ConfigError, loadConfig, type AppConfig } from './config';
import {
  deviceKeySession,
  hasDeviceKey,
  restoreInternetIdentity,
  signInWithInternetIdentity,
  type Session,
} from './auth';
import { describeError } from './errors';
import {
  TaskManager,
  finishReason,
  statusWord,
  type ChatMessage,
  type JobInfo,
  type Settings,
} from './taskManager';
import { NOT_BUILT, createLocalBackend, localBackendBuilt, type LocalBackend } from './local';
import { taskManagerChunks } from './local/chunks';

function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const ui = {
  network: el('network'),
  signedOut: el('signed-out'),
  signedIn: el('signed-in'),
  signInDevice: el<HTMLButtonElement>('sign-in-device'),
  signInII: el<HTMLButtonElement>('sign-in-ii'),
  signInNote: el('sign-in-note'),
  principal: el('principal'),
  tokens: el('tokens'),
  register: el<HTMLButtonElement>('register'),
  signOut: el<HTMLButtonElement>('sign-out'),
  model: el<HTMLSelectElement>('model'),
  maxNewTokens: el<HTMLInputElement>('max-new-tokens'),
  temperature: el<HTMLInputElement>('temperature'),
  topP: el<HTMLInputElement>('top-p'),
  localMode: el<HTMLInputElement>('local-mode'),
  localNote: el('local-note'),
  localProgress: el('local-progress'),
  localProgressBar: el<HTMLProgressElement>('local-progress-bar'),
  localProgressText: el('local-progress-text'),
  newChat: el<HTMLButtonElement>('new-chat'),
  conversation: el('conversation'),
  error: el('error'),
  composer: el<HTMLFormElement>('composer'),
  prompt: el<HTMLTextAreaElement>('prompt'),
  send: el<HTMLButtonElement>('send'),
  stop: el<HTMLButtonElement>('stop'),
  jobStatus: el('job-status'),
};

interface State {
  config: AppConfig | null;
  session: Session | null;
  tm: TaskManager | null;
  registered: boolean;
  history: ChatMessage[];
  /** The job being streamed (canister mode). */
  job: bigint | null;
  /** Aborts a local generation. */
  localAbort: AbortController | null;
  local: LocalBackend | null;
  localModel: string | null;
  busy: boolean;
}

const state: State = {
  config: null,
  session: null,
  tm: null,
  registered: false,
  history: [],
  job: null,
  localAbort: null,
  local: null,
  localModel: null,
  busy: false,
};

function showError(message: string | null): void {
  ui.error.textContent = message ?? '';
  ui.error.hidden = message === null;
}

function setJobStatus(word: string, text: string): void {
  ui.jobStatus.dataset.status = word;
  ui.jobStatus.textContent = text;
}

function refreshControls(): void {
  const ready = state.tm !== null && state.registered;
  ui.send.disabled = !ready || state.busy || ui.model.value === '';
  ui.stop.hidden = !state.busy;
  ui.register.hidden = state.tm === null || state.registered;
  ui.model.disabled = state.busy;
  ui.localMode.disabled = !localBackendBuilt() || state.busy || !ready;
}

function addMessage(role: 'user' | 'assistant', text: string): HTMLElement {
  const box = document.createElement('div');
  box.className = `message ${role}`;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  box.append(body);
  ui.conversation.append(box);
  return box;
}

function setMeta(box: HTMLElement, text: string): void {
  let meta = box.querySelector<HTMLElement>('.meta');
  if (!meta) {
    meta = document.createElement('span');
    meta.className = 'meta';
    box.append(meta);
  }
  meta.textContent = text;
}

function settings(): Settings {
  const maxNewTokens = Number.parseInt(ui.maxNewTokens.value, 10);
  const temperature = Number.parseFloat(ui.temperature.value);
  const topP = Number.parseFloat(ui.topP.value);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new Error('"Max new tokens" must be a whole number of at least 1.');
  }
  if (!(temperature >= 0)) throw new Error('"Temperature" must be 0 (greedy) or more.');
  if (!(topP > 0 && topP <= 1)) throw new Error('"Top-p" must be above 0 and at most 1.');
  return { maxNewTokens, temperature, topP };
}

async function refreshProfile(): Promise<void> {
  if (!state.tm) return;
  const profile = await state.tm.whoami();
  state.registered = profile !== null;
  ui.tokens.textContent = profile
    ? `${profile.tokens_available} of ${profile.quota.capacity} tokens available (refills ${profile.quota.refill_per_sec}/s)`
    : 'not registered yet';
  refreshControls();
}

async function loadModels(): Promise<void> {
  if (!state.tm) return;
  const models = await state.tm.models();
  const previous = ui.model.value;
  ui.model.replaceChildren();
  for (const { info, deployed } of models) {
    const option = document.createElement('option');
    option.value = info.name;
    option.textContent = deployed ? info.name : `${info.name} (not deployed)`;
    ui.model.append(option);
  }
  if (models.some((m) => m.info.name === previous)) ui.model.value = previous;
  if (models.length === 0) {
    const option = document.createElement('option');
    option.value = '';
    option.textContent = 'no model uploaded yet';
    ui.model.append(option);
  }
  refreshControls();
}

async function startSession(session: Session): Promise<void> {
  if (!state.config) return;
  state.session = session;
  state.tm = await TaskManager.connect(state.config, session.identity);
  ui.principal.textContent = session.identity.getPrincipal().toText();
  ui.signedOut.hidden = true;
  ui.signedIn.hidden = false;
  await refreshProfile();
  await loadModels();
}

async function signOut(): Promise<void> {
  if (state.busy) return;
  await state.session?.signOut();
  state.session = null;
  state.tm = null;
  state.registered = false;
  ui.signedIn.hidden = true;
  ui.signedOut.hidden = false;
  ui.principal.textContent = '';
  refreshControls();
}

/** One turn through the task manager: generate, stream, settle. */
async function chatThroughCanisters(tm: TaskManager, model: string, s: Settings, reply: HTMLElement): Promise<string> {
  const text = reply.querySelector<HTMLElement>('.text')!;
  setJobStatus('submitting', 'Sending…');
  const job = await tm.generate(model, state.history, s);
  state.job = job;
  reply.dataset.job = job.toString();
  setJobStatus('queued', `Answer ${job}: waiting for a worker…`);
  const started = performance.now();
  const info: JobInfo = await tm.stream(job, (piece, now) => {
    text.textContent += piece;
    setJobStatus('running', `Answer ${job}: ${now.generated_tokens} tokens…`);
  });
  const word = statusWord(info);
  // From the job's submission to its end, as the user waited for it.
  const seconds = (performance.now() - started) / 1000;
  const rate = info.generated_tokens > 0 && seconds > 0 ? ` in ${seconds.toFixed(1)} s` : '';
  const reason = finishReason(info);
  const summary =
    word === 'failed' && 'Failed' in info.status
      ? `failed: ${info.status.Failed.reason}`
      : `${word}${reason && word === 'completed' ? ` (${reason})` : ''}, ${info.prompt_tokens} prompt + ${info.generated_tokens} generated tokens${rate}`;
  setMeta(reply, `through the canisters · answer ${job}`);
  setJobStatus(word, `Answer ${job} ${summary}`);
  if (word === 'failed') showError(`The answer failed: ${'Failed' in info.status ? info.status.Failed.reason : ''}.`);
  return text.textContent ?? '';
}

/** One turn on this device. */
async function chatOnDevice(tm: TaskManager, model: string, s: Settings, reply: HTMLElement): Promise<string> {
  const text = reply.querySelector<HTMLElement>('.text')!;
  if (!state.local) state.local = await createLocalBackend();
  const local = state.local;
  ui.localMode.dataset.backend = local.backendName;
  if (state.localModel !== model) {
    ui.localProgress.hidden = false;
    try {
      await local.loadModel(taskManagerChunks(tm, model), (p) => {
        ui.localProgressBar.max = Math.max(1, p.totalBytes);
        ui.localProgressBar.value = p.loadedBytes;
        ui.localProgressText.textContent = `${p.phase}: ${(p.loadedBytes / 2 ** 20).toFixed(1)} of ${(p.totalBytes / 2 ** 20).toFixed(1)} MiB`;
        // The weights could not be saved here (full quota): say so, plainly.
        if (p.notice) {
          ui.localNote.textContent = p.notice;
          ui.localNote.dataset.notice = 'true';
        }
      });
    } finally {
      ui.localProgress.hidden = true;
    }
    state.localModel = model;
  }
  const abort = new AbortController();
  state.localAbort = abort;
  setJobStatus('running', `Generating on this device (${local.backendName})…`);
  const turns = state.history.map((m) => ({
    role: ('User' in m.role ? 'user' : 'Assistant' in m.role ? 'assistant' : 'system') as 'user' | 'assistant' | 'system',
    content: m.content,
  }));
  const result = await local.generate(
    turns,
    { maxNewTokens: s.maxNewTokens, temperature: s.temperature, topP: s.topP },
    (piece) => {
      text.textContent += piece;
    },
    abort.signal,
  );
  const word = result.finishReason === 'cancelled' ? 'cancelled' : 'completed';
  setMeta(reply, `on this device · ${local.backendName} · ${result.tokensPerSecond.toFixed(1)} tokens/s`);
  setJobStatus(word, `${word} on this device (${local.backendName}): ${result.generatedTokens} tokens, ${result.tokensPerSecond.toFixed(1)} tokens/s`);
  return result.text;
}

async function send(event: Event): Promise<void> {
  event.preventDefault();
  const tm = state.tm;
  const message = ui.prompt.value.trim();
  if (!tm || state.busy || message === '') return;
  const model = ui.model.value;
  let s: Settings;
  try {
    s = settings();
  } catch (err) {
    showError(describeError(err));
    return;
  }
  showError(null);
  state.busy = true;
  refreshControls();
  state.history.push({ role: { User: null }, content: message });
  addMessage('user', message);
  const reply = addMessage('assistant', '');
  ui.prompt.value = '';
  try {
    const answer = ui.localMode.checked
      ? await chatOnDevice(tm, model, s, reply)
      : await chatThroughCanisters(tm, model, s, reply);
    state.history.push({ role: { Assistant: null }, content: answer });
  } catch (err) {
    // Not answered: the message leaves the history (it can be sent again).
    state.history.pop();
    reply.remove();
    ui.prompt.value = message;
    showError(describeError(err));
    setJobStatus('error', '');
  } finally {
    state.busy = false;
    state.job = null;
    state.localAbort = null;
    refreshControls();
    refreshProfile().catch(() => {});
  }
}

async function stop(): Promise<void> {
  if (state.localAbort) {
    state.localAbort.abort();
    return;
  }
  const tm = state.tm;
  const job = state.job;
  if (!tm || job === null) return;
  ui.stop.disabled = true;
  setJobStatus('stopping', `Stopping answer ${job}…`);
  try {
    await tm.cancel(job);
  } catch (err) {
    showError(describeError(err));
  } finally {
    ui.stop.disabled = false;
  }
}

function newChat(): void {
  if (state.busy) return;
  state.history = [];
  ui.conversation.replaceChildren();
  showError(null);
  setJobStatus('', '');
}

async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    showError(describeError(err));
  }
}

async function main(): Promise<void> {
  refreshControls();
  if (localBackendBuilt()) {
    ui.localNote.textContent = 'Downloads the model from the canisters and runs it here.';
  } else {
    ui.localNote.textContent = NOT_BUILT;
    ui.localNote.dataset.unavailable = 'true';
  }
  let config: AppConfig;
  try {
    config = await loadConfig();
  } catch (err) {
    showError(err instanceof ConfigError ? err.message : describeError(err));
    return;
  }
  state.config = config;
  ui.network.textContent = `${config.network === 'ic' ? 'mainnet' : 'local replica'} · task manager ${config.taskManager}`;

  ui.signInDevice.hidden = config.network === 'ic';
  ui.signInII.hidden = config.identityProvider === null;
  ui.signInNote.textContent =
    config.network === 'ic'
      ? 'Sign in with Internet Identity to chat.'
      : 'This network has no Internet Identity: a key made and kept in this browser signs your calls.';

  ui.signInDevice.addEventListener('click', () => guarded(() => startSession(deviceKeySession())));
  ui.signInII.addEventListener('click', () =>
    guarded(async () => startSession(await signInWithInternetIdentity(config.identityProvider!))),
  );
  ui.signOut.addEventListener('click', () => guarded(signOut));
  ui.register.addEventListener('click', () =>
    guarded(async () => {
      await state.tm?.register();
      await refreshProfile();
    }),
  );
  ui.model.addEventListener('change', refreshControls);
  ui.composer.addEventListener('submit', (e) => void send(e));
  ui.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.stop.addEventListener('click', () => void stop());
  ui.newChat.addEventListener('click', newChat);
  ui.localMode.addEventListener('change', () => {
    ui.localNote.textContent = ui.localMode.checked
      ? 'The model runs on this device (downloaded from the canisters on the first message).'
      : 'Downloads the model from the canisters and runs it here.';
  });

  // A returning visitor keeps their key or Internet Identity session.
  await guarded(async () => {
    if (config.identityProvider) {
      const restored = await restoreInternetIdentity(config.identityProvider);
      if (restored) return startSession(restored);
    }
    if (config.network !== 'ic' && hasDeviceKey()) await startSession(deviceKeySession());
  });
}

void main();
