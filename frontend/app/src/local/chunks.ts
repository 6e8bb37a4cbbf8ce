// The task manager as a chunk source for local mode: `model_manifest` and
// `model_chunk` queries, the weights of the model it serves.

import type { TaskManager } from '../taskManager';
import type { ChunkSource } from './backend';

export function taskManagerChunks(tm: TaskManager, model: string): ChunkSource {
  return {
    model,
    manifest: () => tm.manifest(model),
    stageChunk: (stage, index) => tm.chunk(model, { Stage: stage }, index),
    tokenizerChunk: (index) => tm.chunk(model, { Tokenizer: null }, index),
  };
}
