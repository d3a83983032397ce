// Every local service listens on 127.0.0.1 only, DynamoDB Local included (it has no bind option of its own; its
// launcher binds it). Read off the sockets the services of this test run really hold.
import { execFileSync } from 'node:child_process';

const portOf = (endpoint: string) => Number(new URL(endpoint.includes('://') ? endpoint : `tcp://${endpoint}`).port);

test('Kafka, DynamoDB Local and ElasticMQ listen on the loopback address, not on every interface', () => {
  const ports = [
    portOf((process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')[0] as string),
    portOf(process.env.AWS_ENDPOINT_URL_DYNAMODB ?? 'http://127.0.0.1:8000'),
    portOf(process.env.AWS_ENDPOINT_URL_SQS ?? 'http://127.0.0.1:9324'),
  ];
  const listeners = execFileSync('ss', ['-ltnH'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[3])
    .filter((local): local is string => local !== undefined);
  for (const port of ports) {
    const addresses = listeners.filter((local) => local.endsWith(`:${port}`));
    expect({ port, listening: addresses.length > 0 }).toEqual({ port, listening: true });
    for (const address of addresses) {
      expect({ port, address, loopback: /^(127\.|\[::ffff:127\.|\[::1\])/.test(address) }).toEqual({
        port,
        address,
        loopback: true,
      });
    }
  }
});
