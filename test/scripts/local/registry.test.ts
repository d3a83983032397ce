import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { localPaths } from '../../../scripts/local/config.ts';
import {
  ensureRegistry,
  findJdk,
  jdkCandidates,
  localRegistryUrl,
  REGISTRY_VERSION,
  registryJavaArgs,
  registryPorts,
} from '../../../scripts/local/registry.ts';
import { MissingToolError } from '../../../scripts/local/tools.ts';

describe('local schema registry (pure parts)', () => {
  test('ports default to 8081 and 9081 and move with LOCAL_REGISTRY_PORT / LOCAL_REGISTRY_MANAGEMENT_PORT', () => {
    expect(registryPorts({})).toEqual({ http: 8081, management: 9081 });
    expect(registryPorts({ LOCAL_REGISTRY_PORT: '18081', LOCAL_REGISTRY_MANAGEMENT_PORT: '19081' })).toEqual({
      http: 18081,
      management: 19081,
    });
    expect(() => registryPorts({ LOCAL_REGISTRY_PORT: 'x' })).toThrow(/LOCAL_REGISTRY_PORT="x" is not a TCP port/);
    expect(() => registryPorts({ LOCAL_REGISTRY_PORT: '9081' })).toThrow(/both resolve to port 9081/);
    expect(localRegistryUrl({ http: 8081, management: 9081 })).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
  });

  test('binds HTTP and the management interface to 127.0.0.1, never 0.0.0.0:9000', () => {
    const args = registryJavaArgs({ http: 18081, management: 19081 });
    expect(args).toEqual(
      expect.arrayContaining([
        '-Dquarkus.http.host=127.0.0.1',
        '-Dquarkus.http.port=18081',
        '-Dquarkus.management.host=127.0.0.1',
        '-Dquarkus.management.port=19081',
      ]),
    );
    expect(args.slice(-2)).toEqual(['-jar', 'quarkus-run.jar']);
    expect(args.join(' ')).not.toMatch(/0\.0\.0\.0|9000/);
  });

  test('the pom pins the version the code reports, as a tar.gz with the `all` classifier', () => {
    const pom = fs.readFileSync(localPaths().pom('registry'), 'utf8');
    expect(pom).toContain(`<apicurio.version>${REGISTRY_VERSION}</apicurio.version>`);
    expect(pom).toContain('<artifactId>apicurio-registry-app</artifactId>');
    expect(pom).toContain('<type>tar.gz</type>');
    expect(pom).toContain('<classifier>all</classifier>');
  });

  test('JDK candidates: JAVA_HOME first, then the JVM directories newest first', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jvms-'));
    try {
      for (const name of ['java-17-openjdk-amd64', 'temurin-25-jdk-amd64', 'temurin-21-jdk']) {
        fs.mkdirSync(path.join(dir, name));
      }
      expect(jdkCandidates({ JAVA_HOME: '/opt/my-jdk' }, [dir, '/does/not/exist'])).toEqual([
        '/opt/my-jdk',
        path.join(dir, 'temurin-25-jdk-amd64'),
        path.join(dir, 'temurin-21-jdk'),
        path.join(dir, 'java-17-openjdk-amd64'),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no JDK new enough names what it found and what to install', async () => {
    const error = (await findJdk(99, { JAVA_HOME: '/does/not/exist' }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(MissingToolError);
    expect(error.message).toMatch(/needs Java 99 or newer; found .*Install a JDK 21\+.*SCHEMA_REGISTRY_URL/s);
  });

  test('SCHEMA_REGISTRY_URL overrides: nothing is started', async () => {
    expect(await ensureRegistry({ env: { SCHEMA_REGISTRY_URL: 'https://sr.example.com/' } })).toEqual({
      url: 'https://sr.example.com',
      source: 'env',
    });
  });
});
