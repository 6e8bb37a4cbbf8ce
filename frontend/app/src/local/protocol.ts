// Messages between the page and the CPU worker (cpu.worker.ts).
//
// Loading: `load` (the manifest), then every piece in order
// (`tokenizer-chunk`, `stage-chunk`), then `finish`; the worker answers
// `progress` while tract loads, then `loaded` or `error`. Generating:
// `generate` with an id; the worker streams `token`s and ends with `done`
// or `error`; `cancel` with that id stops it before its next token.

import type { ChatTurn, LocalGeneration, LocalSettings } from './backend';

export type ToWorker =
  | { type: 'load'; manifest: Uint8Array }
  | { type: 'tokenizer-chunk'; index: number; bytes: Uint8Array }
  | { type: 'stage-chunk'; stage: number; index: number; bytes: Uint8Array }
  | { type: 'finish' }
  | { type: 'generate'; id: number; messages: ChatTurn[]; settings: LocalSettings }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'progress'; phase: string }
  | { type: 'loaded'; name: string }
  | { type: 'token'; id: number; text: string }
  | { type: 'done'; id: number; result: LocalGeneration }
  | { type: 'error'; id: number | null; message: string };

/** The exports of frontend/engine_web/pkg/engine_web.js the worker uses. */
export interface EngineWebModule {
  default: (init?: { module_or_path: string | URL }) => Promise<unknown>;
  WebModelLoader: new (manifest: Uint8Array) => {
    readonly name: string;
    addTokenizerChunk(index: number, bytes: Uint8Array): void;
    addStageChunk(stage: number, index: number, bytes: Uint8Array): void;
    finish(): EngineWebModel;
    free(): void;
  };
}

export interface EngineWebModel {
  readonly name: string;
  start(messages: string, maxNewTokens: number, temperature: number, topP: number, seed?: Uint8Array): EngineWebRun;
  free(): void;
}

export interface EngineWebRun {
  step(): string | undefined;
  cancel(): void;
  readonly finishReason: string | undefined;
  readonly text: string;
  readonly promptTokens: number;
  readonly generatedTokens: number;
  free(): void;
}
