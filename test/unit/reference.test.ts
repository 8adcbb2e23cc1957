import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError } from '../../src/domain/errors.js';
import { ImageTarget } from '../../src/domain/image/image-target.js';
import { Reference } from '../../src/domain/image/reference.js';

const HEX = 'a'.repeat(64);

describe('Reference.parse', () => {
  const cases: [string, string, string, string][] = [
    // input, name, registryHost, toString
    ['busybox', 'docker.io/library/busybox', 'registry-1.docker.io', 'docker.io/library/busybox:latest'],
    ['docker://busybox:1.36', 'docker.io/library/busybox', 'registry-1.docker.io', 'docker.io/library/busybox:1.36'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox', 'registry-1.docker.io', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app', 'registry-1.docker.io', 'docker.io/user/app:latest'],
    ['localhost/app', 'localhost/app', 'localhost', 'localhost/app:latest'],
    ['localhost:5000/a/b/c:v1', 'localhost:5000/a/b/c', 'localhost:5000', 'localhost:5000/a/b/c:v1'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app', '127.0.0.1:5000', '127.0.0.1:5000/app:latest'],
    ['quay.io/a_b/c-d.e__f', 'quay.io/a_b/c-d.e__f', 'quay.io', 'quay.io/a_b/c-d.e__f:latest'],
    [`ghcr.io/x/y@sha256:${HEX}`, 'ghcr.io/x/y', 'ghcr.io', `ghcr.io/x/y@sha256:${HEX}`],
    [`ghcr.io/x/y:t@sha256:${HEX}`, 'ghcr.io/x/y', 'ghcr.io', `ghcr.io/x/y:t@sha256:${HEX}`],
  ];
  for (const [input, name, host, str] of cases) {
    it(`normalizes ${input}`, () => {
      const r = Reference.parse(input);
      assert.equal(r.name, name);
      assert.equal(r.registryHost, host);
      assert.equal(r.toString(), str);
    });
  }

  it('asks for the digest when both tag and digest are given', () => {
    assert.equal(Reference.parse(`a/b:t@sha256:${HEX}`).manifestRef, `sha256:${HEX}`);
    assert.equal(Reference.parse('a/b:t').manifestRef, 't');
  });

  const bad = ['', 'UPPER/case', 'Busybox', 'a//b', 'a/b:', 'a/b:-tag', `a/b@sha256:${'a'.repeat(63)}`, 'a/b@md5:abc', HEX,
    'exa mple.com/a', 'a/b:' + 't'.repeat(129), '-host.com/a', 'a/-b', 'a/b__', `x.io/${'a'.repeat(260)}`];
  for (const input of bad) {
    it(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      assert.throws(() => Reference.parse(input), (e: unknown) => e instanceof ImageTsError && e.code === 'INVALID_REFERENCE');
    });
  }

  it('names the lowercase rule', () => {
    assert.throws(() => Reference.parse('Busybox'), /must be lowercase/);
  });
});

describe('ImageTarget.parse', () => {
  it('reads oci:DIR and oci:DIR:REF', () => {
    assert.deepEqual(ImageTarget.parse('oci:/tmp/lay'), { kind: 'oci-layout', dir: '/tmp/lay', ref: undefined });
    assert.deepEqual(ImageTarget.parse('oci:/tmp/lay:v1'), { kind: 'oci-layout', dir: '/tmp/lay', ref: 'v1' });
    assert.deepEqual(ImageTarget.parse('oci:rel/dir:tag'), { kind: 'oci-layout', dir: 'rel/dir', ref: 'tag' });
  });
  it('rejects an empty directory or ref', () => {
    assert.throws(() => ImageTarget.parse('oci:'), /oci: needs a directory/);
    assert.throws(() => ImageTarget.parse('oci:/x:'), /empty oci layout ref/);
  });
  it('reads everything else as a docker reference', () => {
    const t = ImageTarget.parse('busybox');
    assert.equal(t.kind, 'registry');
    assert.equal(ImageTarget.canonicalName(t), 'docker.io/library/busybox:latest');
  });
});
