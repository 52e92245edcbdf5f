/**
 * The classifier bot: answers image posts in the room they were posted to, under a reserved
 * nick. It depends on the image posts' lifecycle (image-posts.ts), which hands it every post,
 * and on the classifier pool, whose workers do every decode and every inference in other processes: submit() only
 * hands bytes over and returns, so the hub never waits on a model.
 */
import path from 'node:path';
import type { ImagePost } from '../hub/hub.js';
import type { ImageClassifierSink, ImagePosts } from './image-posts.js';
import type { BotStatus, LabelsEvent } from '../protocol/events.js';
import { ClassifierError } from '../classifier/errors.js';
import type { ClassifierPool, ClassifyResult } from '../classifier/pool.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';

export interface BotOptions {
  nick: string;
  /** Labels per answer. */
  top: number;
  /** Why the bot is off, and how to turn it on; said in answers when there is no pool. */
  offReason: string;
  logger: Logger;
}

export const BOT_DEFAULTS: BotOptions = {
  nick: 'classifier',
  top: 3,
  offReason: 'no image model is installed. Turn the bot on with: roomcast models pull (then restart the server)',
  logger: silentLogger,
};

type Answer = Pick<LabelsEvent, 'labels' | 'model' | 'timings' | 'error' | 'preview'>;

/**
 * Classifier workers elsewhere (a cluster's shared job queue): the bot hands them every post
 * instead of a local pool, and reports their state. Rejections are ClassifierErrors.
 */
export interface ClassifierElsewhere {
  classify(bytes: Uint8Array, opts: { name: string; top: number; image: number }): Promise<Required<Pick<LabelsEvent, 'labels' | 'timings'>> & Pick<LabelsEvent, 'model' | 'preview'>>;
  status(nick: string): BotStatus;
}

export class ClassifierBot implements ImageClassifierSink {
  readonly opts: BotOptions;
  readonly nick: string;
  readonly stats = { answered: 0, failed: 0 };

  constructor(
    private readonly posts: ImagePosts,
    private readonly pool: ClassifierPool | null,
    opts: Partial<BotOptions> = {},
    /** When set, posts go there rather than to `pool` (which then serves the queue, if any). */
    private readonly elsewhere: ClassifierElsewhere | null = null,
  ) {
    this.opts = { ...BOT_DEFAULTS, ...opts };
    this.nick = this.opts.nick;
    posts.attach(this);
    const log = this.opts.logger;
    if (elsewhere) {
      log.info('classifier bot: image posts go to the cluster\'s classifier workers');
    } else if (pool) {
      log.info(`classifier bot loading ${path.basename(pool.modelPath)}`);
      pool.on('state', (state: string, reason: string) =>
        (state === 'down' ? log.warn : log.info)(`classifier bot ${state}${reason ? `: ${reason}` : ''}`),
      );
    } else {
      log.warn(`classifier bot off: ${this.opts.offReason}`);
    }
  }

  submit(post: ImagePost): void {
    if (this.elsewhere) {
      this.elsewhere.classify(post.bytes, { name: post.name, top: this.opts.top, image: post.image }).then(
        (answer) => {
          this.stats.answered++;
          this.answer(post, answer);
        },
        (err: unknown) => this.failed(post, err),
      );
      return;
    }
    if (!this.pool) {
      this.answer(post, { error: { code: 'CLASSIFIER_OFF', message: `the classifier bot is off: ${this.opts.offReason}` } });
      return;
    }
    this.pool.classify(post.bytes, { name: post.name, top: this.opts.top }).then(
      (r: ClassifyResult) => {
        this.stats.answered++;
        this.answer(post, {
          labels: r.labels,
          model: this.modelName(),
          timings: r.timings,
          ...(r.preview ? { preview: r.preview } : {}),
        });
      },
      (err: unknown) => this.failed(post, err),
    );
  }

  private failed(post: ImagePost, err: unknown): void {
    this.stats.failed++;
    const e =
      err instanceof ClassifierError
        ? { code: err.code, message: err.message }
        : { code: 'INTERNAL', message: 'the classifier failed unexpectedly; the server carries on' };
    if (!(err instanceof ClassifierError)) this.opts.logger.error(`classifier: ${String((err as Error)?.stack ?? err)}`);
    this.answer(post, { error: e });
  }

  status(): BotStatus {
    if (this.elsewhere) return this.elsewhere.status(this.nick);
    if (!this.pool) return { nick: this.nick, state: 'off', reason: this.opts.offReason };
    const st = this.pool.stats();
    return {
      nick: this.nick,
      state: st.state,
      reason: st.reason,
      model: this.modelName(),
      workers: st.workers.filter((w) => w.state === 'idle' || w.state === 'busy').length,
      queue: st.queueDepth + st.inFlight,
      maxQueue: this.pool.maxQueue,
    };
  }

  private modelName(): string | undefined {
    const file = this.pool?.modelInfo?.model;
    return file ? path.basename(file).replace(/\.onnx$/, '') : undefined;
  }

  /**
   * Posts the answer in the image's room as it comes: a worker answers its whole batch in one
   * message, so a batch's answers go out in one turn and reach each member in one write (the
   * transports coalesce a turn's output), rather than a write per answer (docs/performance.md).
   */
  private answer(post: ImagePost, body: Answer): void {
    this.posts.answer(post, this.nick, body);
  }

}
