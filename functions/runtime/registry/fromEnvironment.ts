// A route's registry as its deployment describes it (infra: `route.registry`): the function's environment names
// the registry, and its role may read exactly that. The AWS SDK clients load on first use, so a route pays for
// them only when it decodes its first framed record.
import { BridgeError } from '../errors.ts';
import { ConfluentRegistryClient, type ConfluentRegistryOptions } from './ConfluentRegistryClient.ts';
import type { GlueSchemaSource } from './decoders.ts';
import { RegistryUnavailableError } from './errors.ts';

type Credentials = { username: string; password: string } | { token: string };

/** `{"username","password"}` (basic) or `{"token"}` (bearer), as `route.registry.auth` says. */
export const credentialsFrom = (secretArn: string, text: string | undefined): Credentials => {
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text ?? '') as Record<string, unknown>;
  } catch {
    // Reported below with what the secret should hold.
  }
  if (typeof parsed.username === 'string' && typeof parsed.password === 'string')
    return { username: parsed.username, password: parsed.password };
  if (typeof parsed.token === 'string') return { token: parsed.token };
  throw new BridgeError(
    `schema registry secret ${secretArn} must be JSON: {"username","password"} for basic auth or {"token"} for bearer`,
  );
};

/**
 * The Confluent-compatible registry at `SCHEMA_REGISTRY_URL`, with the credentials of the secret
 * `SCHEMA_REGISTRY_SECRET_ARN` when it is set, read once per container (a failed read is tried again next time).
 */
export const registryFromEnvironment = (
  options: Omit<ConfluentRegistryOptions, 'url' | 'auth'> = {},
): ConfluentRegistryClient => {
  const secretArn = process.env.SCHEMA_REGISTRY_SECRET_ARN;
  let credentials: Promise<Credentials> | undefined;
  const read = async (arn: string): Promise<Credentials> => {
    const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    try {
      const secret = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
      return credentialsFrom(arn, secret.SecretString);
    } catch (error) {
      if (error instanceof BridgeError) throw error;
      throw new RegistryUnavailableError(
        `cannot read the schema registry secret ${arn}: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    }
  };
  return new ConfluentRegistryClient({
    ...options,
    ...(secretArn && {
      auth: {
        credentials: () => {
          credentials ??= read(secretArn).catch((error: unknown) => {
            credentials = undefined;
            throw error;
          });
          return credentials;
        },
      },
    }),
  });
};

/** Glue's `GetSchemaVersion` for the `glue` decoder (IAM `glue:GetSchemaVersion`, which the stack grants). */
export const glueSchemasFromEnvironment = (): GlueSchemaSource => {
  let glue: Promise<typeof import('@aws-sdk/client-glue') & { client: import('@aws-sdk/client-glue').GlueClient }>;
  const sdk = () => {
    glue ??= import('@aws-sdk/client-glue').then((module) => ({ ...module, client: new module.GlueClient({}) }));
    return glue;
  };
  return {
    async getSchemaVersion(schemaVersionId) {
      const { client, GetSchemaVersionCommand } = await sdk();
      const answer = await client.send(new GetSchemaVersionCommand({ SchemaVersionId: schemaVersionId }));
      if (!answer.DataFormat || !answer.SchemaDefinition) {
        throw new RegistryUnavailableError(`Glue returned schema version ${schemaVersionId} without its definition`);
      }
      return { dataFormat: answer.DataFormat as 'AVRO' | 'JSON' | 'PROTOBUF', definition: answer.SchemaDefinition };
    },
  };
};
