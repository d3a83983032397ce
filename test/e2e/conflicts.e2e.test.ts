// Idempotency conflicts end to end: payments traffic through Kafka and the local bridge into DynamoDB Local, with
// some txIds sent again with another amount. Byte-for-byte copies stay duplicates; the reused txIds are dead-lettered
// as conflicts naming the record that holds the txId, and the ledger and balances never see them.
import { expectConsistent, Run, sharedEndpoints, waitDrained } from './harness.ts';

let run: Run | undefined;
afterAll(async () => {
  await run?.cleanup();
});

test('a txId sent again with another amount is a conflict, never applied; the same content is a duplicate', async () => {
  run = new Run(sharedEndpoints(), { routes: ['payments'], seed: 31 });
  await run.createResources();
  await run.produce(400);
  await run.produceConflicts(8);
  const bridge = run.startBridge();
  await waitDrained(run, 120_000);
  expect((await bridge.stop()).code).toBe(0);

  // Nothing missing, the DLQ holds exactly the poison and the conflicts (each with its own kind), and the ledger and
  // balances equal the legitimate payments alone.
  await expectConsistent(run);
  const conflicts = (await run.deadLetters('payments')).filter((l) => l.errorKind === 'conflict');
  expect(conflicts).toHaveLength(8);
  for (const letter of conflicts) {
    expect(letter.errorMessage).toMatch(
      /was first seen at .*-payments-\d+@\d+ with different amount; this record is never applied/,
    );
  }
  const duplicates = run.produced.payments.filter((r) => r.kind === 'duplicate').length;
  expect(duplicates).toBeGreaterThan(0);
  expect(bridge.progress.get('payments')?.duplicates ?? 0).toBeGreaterThanOrEqual(duplicates);
});
