// Cold-start entry: our orders handler as deployed. Its first invocation creates the DynamoDB and SQS clients; they
// are created here at init instead, so all three bundles construct the same clients inside the measured import.
import { sharedDynamoDbClient, sharedSqsClient } from '../../../functions/runtime/clients.ts';

export { handler } from '../../../functions/handlers/orders.ts';

sharedDynamoDbClient();
sharedSqsClient();
