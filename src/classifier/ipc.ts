/**
 * Messages between the pool (parent) and a worker process over the child_process IPC channel
 * (serialization 'advanced': the structured clone algorithm), plus a second pipe, the worker's
 * fd 4, for image bytes. A batch message gives each job's size; its bytes follow on the pipe,
 * job after job, in the order of the batches. Written from the hub's own Buffers, they are
 * never copied there: through the IPC channel each image would first be copied into a
 * serializer buffer that grows by doubling, about a megabyte of short-lived memory per batch.
 */
import type { ClassifierErrorCode } from './errors.js';
import type { ImageOutcome, ModelInfo, ThreadOptions } from './image-classifier.js';
import type { PreprocessOptions } from './preprocess.js';

export interface WorkerOptions {
  threads?: ThreadOptions;
  preprocess?: Partial<PreprocessOptions>;
  /** Labels returned per image when a job does not say. */
  top?: number;
}

/** The worker's fd for image bytes (0-2 stdio, 3 the IPC channel). */
export const IMAGE_FD = 4;

export interface JobMessage {
  id: number;
  /** Bytes of this image on the image pipe. */
  size: number;
  name: string;
  top: number;
}

export type ToWorker =
  | { type: 'load'; model: string; labels: string; options: WorkerOptions }
  | { type: 'batch'; batch: number; jobs: JobMessage[] };

/** One image's outcome (image-classifier.ts), addressed to its job in its batch. */
export type JobReply = { type: 'result'; batch: number; id: number } & ImageOutcome;

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'fatal'; code: ClassifierErrorCode; message: string }
  | JobReply
  /** Every job of the batch has been answered: the worker is idle again. */
  | { type: 'done'; batch: number };
