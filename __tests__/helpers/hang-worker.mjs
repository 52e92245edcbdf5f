/**
 * A classifier worker that hangs for good on an image holding the marker near its start, as a
 * decoder stuck in native code would: the real worker (dist/classifier/worker.js) with its
 * classifier wrapped. Tests give it to a pool as workerScript (helpers/classifier.ts:
 * HANG_WORKER) to exercise hang detection with a real hung process. Run `npm run build` first.
 */
import { ImageClassifier } from '../../dist/classifier/image-classifier.js';

/** helpers/classifier.ts's HANG. */
const MARKER = Buffer.from('HANG-FOR-TESTING', 'ascii');

const load = ImageClassifier.load;
ImageClassifier.load = async function (options) {
  const classifier = await load.call(this, options);
  const classify = classifier.classify.bind(classifier);
  classifier.classify = (images, top) => {
    // Near the start rather than at it: the chat server takes only bytes that begin with an
    // image's signature, so a test posting through it puts one before the marker.
    if (images.some((i) => i.bytes.subarray(0, 16 + MARKER.length).includes(MARKER))) {
      // Blocks this thread without burning a core, and without ever answering IPC.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
    return classify(images, top);
  };
  return classifier;
};

await import('../../dist/classifier/worker.js');
