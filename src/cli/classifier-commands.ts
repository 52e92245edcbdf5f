/**
 * The image-classifier subcommands (`classify`, `models list`, `models pull`), kept out of
 * main.ts so that file only has to register them.
 */
import { Command } from 'commander';
import { count } from './numbers.js';
import { runClassify } from './classify.js';
import { runModelsList, runModelsPull } from './models.js';


const DIR_HELP = 'models directory (default: $ROOMCAST_MODELS, else models/ in the roomcast install)';

export function registerClassifierCommands(program: Command): void {
  program
    .command('classify')
    .description('label images with the image classifier (the chat bot\'s pipeline, run locally)')
    .argument('<files...>', 'image files (JPEG, PNG, WebP, GIF, AVIF, TIFF)')
    .option('--model <file>', 'ONNX model to use instead of the installed one (needs --labels)')
    .option('--labels <file>', 'labels for --model: synset.txt format or one label per line')
    .option('--dir <dir>', DIR_HELP)
    .option('--top <n>', 'labels to show per image', count(1), 3)
    .option('--json', 'print JSON instead of a table')
    .action(async (files: string[], opts: { model?: string; labels?: string; dir?: string; top: number; json?: boolean }) => {
      process.exitCode = await runClassify({ files, model: opts.model, labels: opts.labels, dir: opts.dir, top: opts.top, json: opts.json === true });
    });

  const models = program.command('models').description('list and install image-classifier models');
  models
    .command('list')
    .description('known models and which are installed (checks their sha256)')
    .option('--dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (opts: { dir?: string; json?: boolean }) => {
      process.exitCode = await runModelsList(opts);
    });
  models
    .command('pull')
    .description('download a model and its labels, verify their sha256, install them')
    .argument('[name]', 'model name from `roomcast models list` (default: the default model)')
    .option('--dir <dir>', DIR_HELP)
    .option('--base-url <url>', 'download from this mirror instead (base URL + the file name)')
    .action(async (name: string | undefined, opts: { dir?: string; baseUrl?: string }) => {
      process.exitCode = await runModelsPull(name, opts);
    });
}
