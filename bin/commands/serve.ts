// cifake serve: the inference service (src/serve) on host:port, with graceful shutdown on SIGTERM/SIGINT.
import { Command } from 'commander';

import { Classifier, createServer, describeCheckpoint } from '../../src';
import { intIn, positive, threadsArg } from '../cli-helpers';


interface ServeFlags {
  model?: string;
  host: string;
  port: number;
  device: string;
  threads?: number;
  maxBodyMb: number;
  maxPixels: number;
  maxQueue: number;
  maxBatch: number;
  maxWaitMs: number;
  timeoutMs: number;
}

export function serveCommand(): Command {
  return new Command('serve')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .description('serve a detector over HTTP: a web page, /classify, /explain, KServe v2 /v2/models/cifake/infer, /metrics')
    .option('-m, --model <runOrCheckpoint>', "run directory, checkpoint, or 'pretrained' (default: the weights shipped in the package)")
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <n>', 'port (0 = any free port)', intIn('--port', 0, 65535), 8080)
    .option('--device <d>', 'cpu | cuda | cuda:N | auto', 'cpu')
    .option('--threads <n>', 'CPU threads', threadsArg)
    .option('--max-body-mb <x>', 'largest request body in MiB', positive('--max-body-mb'), 5)
    .option('--max-pixels <n>', 'largest image (width x height, read from its header before decoding)', intIn('--max-pixels', 1, 2 ** 31), 4096 * 4096)
    .option('--max-queue <n>', 'requests in progress at once; past it 503 + Retry-After', intIn('--max-queue', 1, 1 << 20), 64)
    .option('--max-batch <n>', 'images per coalesced native call', intIn('--max-batch', 1, 4096), 256)
    .option('--max-wait-ms <n>', 'how long a request waits for others to share its batch', intIn('--max-wait-ms', 0, 10_000), 2)
    .option('--timeout-ms <n>', 'inference timeout per request; past it 504', intIn('--timeout-ms', 1, 3_600_000), 30_000)
    .addHelpText('after', '\nExamples:\n  cifake serve                       # the shipped detector on http://127.0.0.1:8080\n  curl --data-binary @photo.jpg http://127.0.0.1:8080/classify')
    .action(async (o: ServeFlags) => {
      const clf = await Classifier.load(o.model, { device: o.device, threads: o.threads, maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs, maxPixels: o.maxPixels });
      const svc = createServer(clf, { maxBodyBytes: Math.round(o.maxBodyMb * 1024 * 1024), maxQueue: o.maxQueue, inferenceTimeoutMs: o.timeoutMs });
      const url = await svc.listen(o.port, o.host);
      const i = clf.info;
      process.stderr.write(`cifake serve: ${i.family} model (${i.parameters} parameters, ${i.device}) from ${describeCheckpoint(i.checkpoint)}\nlistening on ${url}  (page at /, POST /classify, POST /explain, POST /v2/models/cifake/infer, GET /metrics)\n`);
      await new Promise<void>((resolve) => {
        let closing = false;
        const stop = (signal: string) => {
          if (closing) return;
          closing = true;
          process.stderr.write(`${signal}: finishing requests in flight, then exiting\n`);
          void svc.close().then(() => {
            clf.dispose();
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
