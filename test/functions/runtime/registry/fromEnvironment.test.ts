// The credentials a deployment's registry secret holds. Reading the secret itself needs Secrets Manager, which has no
// local stand-in here; the round-trip tests cover the registry URL from the environment against a real registry.
import { credentialsFrom } from '../../../../functions/runtime/registry/fromEnvironment.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:registry-AbCdEf';

test('a registry secret holds basic credentials or a bearer token, and says which it must be when it holds neither', () => {
  expect(credentialsFrom(ARN, '{"username":"u","password":"p"}')).toEqual({ username: 'u', password: 'p' });
  expect(credentialsFrom(ARN, '{"token":"t"}')).toEqual({ token: 't' });
  for (const bad of ['{"user":"u"}', 'not json', undefined]) {
    expect(() => credentialsFrom(ARN, bad)).toThrow(
      `schema registry secret ${ARN} must be JSON: {"username","password"} for basic auth or {"token"} for bearer`,
    );
  }
});
