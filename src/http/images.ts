/**
 * Images over HTTP: POST /api/rooms/{room}/images posts one to a room (the classifier bot
 * answers there, and GET /api/tasks/{id} tells the poster too), GET /api/images/{id} serves
 * the bytes of a recent post for the web page to show.
 *
 * The body is the image itself (Content-Type image/*, name and nick in the query), or a
 * multipart/form-data form with the file in the field "image" (and optional fields "nick" and
 * "name"), as a browser form or `curl -F image=@photo.jpg` sends it. Multipart is parsed by
 * busboy: a streaming parser with per-part limits, so a form is never held whole before it is
 * known to be within them.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { checkLength, limitBody, readBody } from './body.js';
import { checkOrigin, checkRoomOpen, existingRoom, posterNick, type WebContext } from './context.js';
import { httpError, HttpError } from './errors.js';
import { sendJson } from './respond.js';
import type { Route } from './router.js';

/** Room for the form's other fields and part headers beside the image. */
export const FORM_OVERHEAD = 64 * 1024;

interface Upload {
  bytes: Buffer;
  name?: string;
  nick?: string;
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

export function imageRoutes(ctx: WebContext): Route[] {
  const maxImage = ctx.connection.maxImageBytes;
  return [
    {
      name: 'POST /api/rooms/{room}/images',
      methods: ['POST'],
      pattern: /^\/api\/rooms\/([^/]+)\/images$/,
      async handle({ req, res, params, query, account, credential }) {
        checkOrigin(ctx, req);
        await checkRoomOpen(ctx, existingRoom(ctx, params[0]).name, credential);
        const type = mediaType(req);
        let upload: Upload;
        if (type === 'multipart/form-data') {
          upload = await readForm(req, maxImage);
        } else if (type.startsWith('image/')) {
          // The nick is checked before the body is read: a refusal should not cost an upload.
          posterNick(ctx, query.get('nick'), account);
          upload = { bytes: await readBody(req, maxImage) };
        } else {
          throw httpError(
            'UNSUPPORTED_MEDIA_TYPE',
            'Send the image as the body with its type (Content-Type: image/jpeg, say), or as the field "image" of a multipart/form-data form.',
          );
        }
        if (upload.bytes.length === 0) throw httpError('NO_IMAGE', 'the image is empty');
        const nick = posterNick(ctx, upload.nick ?? query.get('nick'), account);
        const name = upload.name || query.get('name') || 'image';
        const room = existingRoom(ctx, params[0]);
        // Whatever the Content-Type said, bytes that are no image are refused here (415
        // NOT_AN_IMAGE, thrown by the hub) before the room hears of them.
        const event = ctx.posts.post(room, nick, name, upload.bytes);
        const task = ctx.tasks.get(String(event.image));
        const id = String(event.image);
        sendJson(
          req,
          res,
          202,
          { id, status: task?.status ?? 'pending', room: room.name, seq: event.seq, image: event.image, name: event.name, nick },
          { Location: `/api/tasks/${id}` },
        );
      },
    },
    {
      name: 'GET /api/images/{id}',
      methods: ['GET'],
      pattern: /^\/api\/images\/([^/]+)$/,
      async handle({ req, res, params }) {
        const id = /^[1-9]\d{0,15}$/.test(params[0]) ? Number(params[0]) : NaN;
        const img = await ctx.images.get(id);
        if (!img) throw httpError('NO_SUCH_IMAGE', params[0].slice(0, 40));
        const filename = img.name.replace(/[^\w.\- ]/g, '_');
        res.writeHead(200, {
          // A format no browser shows is offered as a download, never sniffed into something else.
          'Content-Type': img.type ?? 'application/octet-stream',
          'Content-Disposition': `${img.type ? 'inline' : 'attachment'}; filename="${filename}"`,
          'Content-Length': String(img.bytes.length),
          // An id is never reused for other bytes.
          'Cache-Control': 'private, max-age=86400, immutable',
        });
        res.end(req.method === 'HEAD' ? undefined : img.bytes);
      },
    },
  ];
}

/** The form's "image" file and its "nick" and "name" fields, within the limits. */
function readForm(req: IncomingMessage, maxImage: number): Promise<Upload> {
  checkLength(req, maxImage + FORM_OVERHEAD);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: HttpError): void => {
      if (settled) return;
      settled = true;
      req.unpipe();
      req.pause();
      reject(err);
    };
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        limits: { fileSize: maxImage, files: 1, fields: 8, fieldSize: 1024, parts: 16, headerPairs: 32 },
      });
    } catch (err) {
      fail(httpError('BAD_MULTIPART', (err as Error).message));
      return;
    }
    const fields: Record<string, string> = {};
    let chunks: Buffer[] | null = null;
    let filename: string | undefined;
    bb.on('file', (field, stream, info) => {
      if (field !== 'image' || chunks !== null) {
        stream.resume(); // not ours: skipped, not kept
        return;
      }
      chunks = [];
      filename = info.filename;
      stream.on('data', (chunk: Buffer) => chunks!.push(chunk));
      stream.on('limit', () => fail(httpError('BODY_TOO_LARGE', maxImage)));
    });
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(httpError('BAD_MULTIPART', `the field "${name.slice(0, 40)}" is too long`));
      else if (name === 'nick' || name === 'name') fields[name] = value;
    });
    bb.on('partsLimit', () => fail(httpError('BAD_MULTIPART', 'too many parts')));
    bb.on('fieldsLimit', () => fail(httpError('BAD_MULTIPART', 'too many fields')));
    bb.on('error', (err: Error) => fail(httpError('BAD_MULTIPART', err.message)));
    bb.on('close', () => {
      if (settled) return;
      settled = true;
      if (chunks === null) {
        reject(httpError('NO_IMAGE', 'the form has no file in the field "image"'));
        return;
      }
      resolve({ bytes: Buffer.concat(chunks), name: fields.name || filename, nick: fields.nick });
    });
    limitBody(req, maxImage + FORM_OVERHEAD, () => fail(httpError('BODY_TOO_LARGE', maxImage)));
    req.pipe(bb);
  });
}
