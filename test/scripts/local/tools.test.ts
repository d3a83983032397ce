import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isResolved, javaExecutable, pomDigest } from '../../../scripts/local/tools.ts';

test('a lib dir counts as resolved only for the pom it was resolved from', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-tools-'));
  try {
    const pom = path.join(dir, 'pom.xml');
    const lib = path.join(dir, 'lib');
    fs.writeFileSync(pom, '<project>1</project>');
    expect(isResolved(lib, pom)).toBe(false);
    fs.mkdirSync(lib);
    fs.writeFileSync(path.join(lib, '.resolved'), `${pomDigest('<project>1</project>')}\n`);
    expect(isResolved(lib, pom)).toBe(true);
    fs.writeFileSync(pom, '<project>2</project>'); // a version bump re-resolves
    expect(isResolved(lib, pom)).toBe(false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('java comes from JAVA_HOME when set, else PATH', () => {
  expect(javaExecutable({ JAVA_HOME: '/opt/jdk' })).toBe(path.join('/opt/jdk', 'bin', 'java'));
  expect(javaExecutable({})).toBe('java');
});
