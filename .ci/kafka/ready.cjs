// Exits 0 when the Kafka broker at argv[2] (host:port) answers a metadata request, 1 otherwise.
// Run from the repository root so that it loads the repository's kafkajs.
const { Kafka, logLevel } = require('kafkajs');

const admin = new Kafka({
  clientId: 'havoc-ready',
  brokers: [process.argv[2] ?? '127.0.0.1:9092'],
  connectionTimeout: 1000,
  requestTimeout: 2000,
  retry: { retries: 0 },
  logLevel: logLevel.NOTHING,
}).admin();

admin
  .connect()
  .then(() => admin.fetchTopicMetadata({ topics: [] }))
  .then(() => admin.disconnect())
  .then(
    () => process.exit(0),
    () => process.exit(1),
  );
