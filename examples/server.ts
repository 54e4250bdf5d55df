// Mounting the inference service in your own app (what `cifake serve` does; see src/serve).
//
//   npx tsx examples/server.ts [runDir|checkpoint]       # default: the detector shipped in the package
//   curl --data-binary @photo.jpg http://127.0.0.1:8080/classify
// In an app, import from 'cifake-torch' instead of '../src'.
import { Classifier, createServer } from '../src';

async function main(): Promise<void> {
  const clf = await Classifier.load(process.argv[2], { maxPixels: 4096 * 4096 });
  const svc = createServer(clf, { maxQueue: 64 });
  console.log(`listening on ${await svc.listen(Number(process.env.PORT ?? 8080))}`);
  process.once('SIGTERM', () => void svc.close().then(() => clf.dispose()));
  process.once('SIGINT', () => void svc.close().then(() => clf.dispose()));
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
