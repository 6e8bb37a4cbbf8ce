// The task manager through the official agent: typed calls whose refusals
// become PlainError, and a job stream (`generate`, then `job` polled with
// `from_token`, each answer carrying only the new text).

import { Actor, HttpAgent, type ActorSubclass, type Identity } from '@icp-sdk/core/agent';
import { idlFactory } from './bindings/task_manager.did.js';
import type {
  _SERVICE,
  ChatMessage,
  GenerateRequest,
  JobInfo,
  ModelFile,
  ModelInfo,
  PipelineInfo,
  UserError,
  UserProfile,
} from './bindings/task_manager.did';
import type { AppConfig } from './config';
import { PlainError, describeUserError } from './errors';

export type { ChatMessage, JobInfo, ModelInfo, UserProfile };

type Result<T> = { Ok: T } | { Err: UserError };

function unwrap<T>(r: Result<T>): T {
  if ('Err' in r) throw new PlainError(describeUserError(r.Err), r.Err);
  return r.Ok;
}

/** How to sample; `temperature` 0 is greedy (the canister's default). */
export interface Settings {
  maxNewTokens: number;
  temperature: number;
  topP: number;
}

/** Where a job is, as one word. */
export type StatusWord = 'queued' | 'running' | 'completed' | 'cancelled' | 'failed';

export function statusWord(info: JobInfo): StatusWord {
  const s = info.status;
  if ('Queued' in s) return 'queued';
  if ('Running' in s) return 'running';
  if ('Cancelled' in s) return 'cancelled';
  if ('Failed' in s) return 'failed';
  // Cancelled while running: it completed with the reason Cancelled.
  if ('Cancelled' in s.Completed.finish_reason) return 'cancelled';
  return 'completed';
}

export function finishReason(info: JobInfo): string | null {
  if (!('Completed' in info.status)) return null;
  return Object.keys(info.status.Completed.finish_reason)[0] ?? null;
}

export class TaskManager {
  private constructor(
    readonly actor: ActorSubclass<_SERVICE>,
    readonly agent: HttpAgent,
  ) {}

  /** An agent for `identity` on the configured network; the root key is
   *  fetched only off mainnet (where it is not built in). */
  static async connect(config: AppConfig, identity: Identity): Promise<TaskManager> {
    const agent = await HttpAgent.create({
      host: config.host,
      identity,
      ...(config.rootKey ? { rootKey: config.rootKey } : {}),
      shouldFetchRootKey: config.network !== 'ic' && !config.rootKey,
    });
    const actor = Actor.createActor<_SERVICE>(idlFactory, {
      agent,
      canisterId: config.taskManager,
    });
    return new TaskManager(actor, agent);
  }

  /** The caller's profile, or null when they have not registered. */
  async whoami(): Promise<UserProfile | null> {
    const r = await this.actor.whoami();
    if ('Err' in r && 'NotRegistered' in r.Err) return null;
    return unwrap(r);
  }

  async register(): Promise<UserProfile> {
    return unwrap(await this.actor.register());
  }

  /** Every model with all its chunks, and whether a healthy pipeline serves it. */
  async models(): Promise<{ info: ModelInfo; deployed: boolean }[]> {
    const models: ModelInfo[] = [];
    for (let start = 0n; ; ) {
      const page = unwrap(await this.actor.models({ start, length: 100 }));
      models.push(...page.models);
      start += BigInt(page.models.length);
      if (page.models.length === 0 || start >= page.total) break;
    }
    const pipelines: PipelineInfo[] = [];
    for (let start = 0n; ; ) {
      const page = unwrap(await this.actor.pipelines({ start, length: 100 }));
      pipelines.push(...page.pipelines);
      start += BigInt(page.pipelines.length);
      if (page.pipelines.length === 0 || start >= page.total) break;
    }
    return models
      .filter((m) => m.chunks_present === m.chunks_total)
      .map((info) => ({
        info,
        deployed: pipelines.some((p) => p.model === info.name && p.healthy),
      }));
  }

  async generate(model: string, messages: ChatMessage[], settings: Settings): Promise<bigint> {
    const greedy = settings.temperature <= 0;
    const request: GenerateRequest = {
      model,
      prompt: { Chat: messages },
      max_new_tokens: settings.maxNewTokens,
      stop_sequences: [],
      sampling: {
        temperature: greedy ? [] : [settings.temperature],
        top_p: greedy || settings.topP >= 1 ? [] : [settings.topP],
        top_k: [],
        repetition_penalty: [],
      },
      seed: [],
    };
    return unwrap(await this.actor.generate(request));
  }

  async job(job: bigint, fromToken: number | null): Promise<JobInfo> {
    return unwrap(await this.actor.job({ job, from_token: fromToken === null ? [] : [fromToken] }));
  }

  async cancel(job: bigint): Promise<JobInfo> {
    return unwrap(await this.actor.cancel(job));
  }

  /** The bytes of a model's manifest (for local mode). */
  async manifest(model: string): Promise<Uint8Array> {
    return unwrap(await this.actor.model_manifest(model)) as Uint8Array;
  }

  /** One chunk of a model's file (for local mode). */
  async chunk(model: string, file: ModelFile, index: number): Promise<Uint8Array> {
    return unwrap(await this.actor.model_chunk({ model, file, index })) as Uint8Array;
  }

  /**
   * Polls `job` until it ends, calling `onText` with each piece of new
   * text; `from_token` makes every answer carry only what is new. Returns
   * the last answer (read once more from the start when it ended, so its
   * status and counts are final).
   */
  async stream(
    job: bigint,
    onText: (text: string, info: JobInfo) => void,
    intervalMs = 150,
  ): Promise<JobInfo> {
    let tokens = 0;
    for (;;) {
      const info = await this.job(job, tokens);
      if (info.text.length > 0) onText(info.text, info);
      tokens = info.generated_tokens;
      const word = statusWord(info);
      if (word !== 'queued' && word !== 'running') return info;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
