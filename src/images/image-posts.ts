/**
 * The life of an image post, in one place: the hub checks it and shows it to the room, then
 * this keeps its bytes (for GET /api/images/{id}), opens its task (GET /api/tasks/{id}), hands
 * it to the classifier bot, and closes the task with the bot's answer. Every transport posts
 * through here once (the hub's `image` command and the HTTP API alike), so a post with no bot
 * fails its task at once, whichever way it came.
 *
 * It depends on the hub; the hub knows it only as an ImagePort.
 */
import type { Hub, ImagePort, ImagePost } from '../hub/hub.js';
import type { Room } from '../hub/room.js';
import type { Session } from '../hub/session.js';
import type { BotStatus, ImageEvent, LabelsEvent, RequestId } from '../protocol/events.js';
import type { ImageKeeper } from './image-store.js';
import type { TaskStore } from './task-store.js';

/** Who classifies posts: the bot, which answers later through ImagePosts.answer(). */
export interface ImageClassifierSink {
  submit(post: ImagePost): void;
  status(): BotStatus;
}

export const NO_BOT = { code: 'CLASSIFIER_OFF', message: 'this server runs no classifier bot' } as const;

export class ImagePosts implements ImagePort {
  private classifier: ImageClassifierSink | null = null;

  constructor(
    private readonly hub: Hub,
    readonly images: ImageKeeper,
    readonly tasks: TaskStore,
  ) {
    hub.images = this;
  }

  /** The bot that classifies from now on. */
  attach(classifier: ImageClassifierSink): void {
    this.classifier = classifier;
  }

  post(room: Room, nick: string, name: string, bytes: Buffer, from?: Session, id?: RequestId): ImageEvent {
    const { event, post, emitted } = this.hub.postImage(room, nick, name, bytes, from, id);
    this.images.put(post);
    this.tasks.posted(post, event);
    if (emitted instanceof Promise) emitted.then((e) => this.tasks.numbered(e.image, e.seq), () => {});
    // The poster has had its ack (postImage sends it), so an answer that comes at once, from a
    // bot that is off, follows it, and an HTTP poster's reply already says how the task ended.
    if (this.classifier === null) this.tasks.fail(event.image, NO_BOT);
    else this.classifier.submit(post);
    return event;
  }

  /** Posts the bot's answer in the image's room and closes its task, even if the room has gone. */
  answer(post: ImagePost, nick: string, body: Pick<LabelsEvent, 'labels' | 'model' | 'timings' | 'error' | 'preview'>): void {
    const make = (seq: number, time: number): LabelsEvent => ({ type: 'labels', room: post.room, seq, nick, image: post.image, name: post.name, time, ...body });
    let answer: LabelsEvent | null = null;
    // A room everyone has left is gone, but the task still learns the outcome (with no seq).
    if (!this.hub.postAs(post.room, (seq, time) => (answer = make(seq, time)))) answer = make(0, this.hub.opts.now());
    this.tasks.answered(answer!);
  }

  botStatus(): BotStatus | null {
    return this.classifier?.status() ?? null;
  }
}
