// `cifake serve` as a library: mount the service in your own app.
//   const clf = await Classifier.load();            // the shipped detector
//   const svc = createServer(clf, { maxQueue: 64 });
//   console.log(await svc.listen(8080));
export { createServer, DEFAULT_MAX_BODY_BYTES, type CifakeServer, type ServeOptions } from './server';
export { summarizeMap } from './map-summary';
export { ServeMetrics } from './metrics';
