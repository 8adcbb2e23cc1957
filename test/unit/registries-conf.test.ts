import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadRegistriesConf } from '../../src/adapters/outbound/registry/registries-conf-file.js';
import { ImageTsError } from '../../src/domain/errors.js';
import { Reference } from '../../src/domain/image/reference.js';
import {
  RegistriesConf,
  expandShortName,
  findRegistry,
  isShortName,
  pullSources,
} from '../../src/domain/registry/registries-conf.js';

const D = `sha256:${'d'.repeat(64)}`;

const conf = (obj: unknown): RegistriesConf => RegistriesConf.fromObject(obj, 'test.conf');
const isCode = (code: string, re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof ImageTsError, `not an ImageTsError: ${String(e)}`);
  assert.equal(e.code, code);
  assert.match(e.message, re);
  assert.ok(!e.message.includes('\n'), 'one-line message');
  return true;
};
/** `ref insecure? mirror?` per source, e.g. `m.example.net/img:tag +insecure +mirror`. */
const describeSources = (c: RegistriesConf, input: string): string[] =>
  pullSources(c, Reference.parse(input)).map(
    (s) => `${s.reference.toString()}${s.insecure ? ' +insecure' : ''}${s.mirror ? ' +mirror' : ''}`,
  );

describe('RegistriesConf.fromObject validation', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not a table', [], /must be a table/],
    ['[registry] instead of [[registry]]', { registry: { location: 'a.io' } }, /"registry" must be an array of tables/],
    ['https:// location', { registry: [{ location: 'https://a.io' }] }, /key "location": URI schemes are not supported/],
    ['http:// prefix', { registry: [{ prefix: 'http://a.io', location: 'b.io' }] }, /key "prefix": URI schemes are not supported/],
    ['no prefix and no location', { registry: [{ insecure: true }] }, /"prefix" and "location" cannot both be empty/],
    ['empty location without wildcard', { registry: [{ prefix: 'a.io/x', location: '' }] }, /key "location" cannot be empty/],
    ['wildcard with a path', { registry: [{ prefix: '*.a.io/x' }] }, /wildcard prefix must be "\*\.domain"/],
    ['wildcard with a port', { registry: [{ prefix: '*.a.io:5000' }] }, /wildcard prefix must be "\*\.domain"/],
    ['double wildcard', { registry: [{ prefix: '*.*.a.io' }] }, /wildcard prefix must be/],
    ['star in the middle', { registry: [{ prefix: 'a.*.io', location: 'b.io' }] }, /"\*" is only allowed as the leading/],
    ['uppercase path', { registry: [{ prefix: 'a.io/Foo', location: 'b.io' }] }, /key "prefix": bad repository path component "Foo"/],
    ['bad host', { registry: [{ location: 'a_b.io/x' }] }, /bad registry host/],
    ['tag in location only', { registry: [{ prefix: 'a.io/x', location: 'b.io/y:v1' }] }, /key "location": a tag or digest here needs a prefix/],
    ['bad digest in prefix', { registry: [{ prefix: 'a.io/x@sha256:abc', location: 'b.io/y' }] }, /bad digest/],
    ['pull-from-mirror on the primary', { registry: [{ location: 'a.io', 'pull-from-mirror': 'all' }] }, /only allowed in \[\[registry\.mirror\]\]/],
    [
      'pull-from-mirror with mirror-by-digest-only',
      { registry: [{ location: 'a.io', 'mirror-by-digest-only': true, mirror: [{ location: 'm.io', 'pull-from-mirror': 'tag-only' }] }] },
      /"pull-from-mirror" cannot be used together with "mirror-by-digest-only"/,
    ],
    ['unknown pull-from-mirror', { registry: [{ location: 'a.io', mirror: [{ location: 'm.io', 'pull-from-mirror': 'never' }] }] }, /"pull-from-mirror" must be one of/],
    ['empty mirror location', { registry: [{ location: 'a.io', mirror: [{ insecure: true }] }] }, /\[\[registry\.mirror\]\] #1 key "location" cannot be empty/],
    ['mirror with scheme', { registry: [{ location: 'a.io', mirror: [{ location: 'http://m.io' }] }] }, /URI schemes/],
    ['[registry.mirror] not an array', { registry: [{ location: 'a.io', mirror: { location: 'm.io' } }] }, /key "mirror" must be an array of tables/],
    ['insecure not a boolean', { registry: [{ location: 'a.io', insecure: 'yes' }] }, /key "insecure" must be a boolean, got "yes"/],
    ['blocked not a boolean', { registry: [{ location: 'a.io', blocked: 1 }] }, /key "blocked" must be a boolean/],
    [
      'same location, conflicting insecure',
      { registry: [{ prefix: 'a.io/x', location: 'b.io' }, { prefix: 'a.io/y', location: 'b.io', insecure: true }] },
      /"b\.io" is defined more than once with conflicting "insecure"/,
    ],
    [
      'same location, conflicting blocked',
      { registry: [{ prefix: 'a.io/x', location: 'b.io', blocked: true }, { prefix: 'a.io/y', location: 'b.io' }] },
      /conflicting "blocked"/,
    ],
    ['duplicate prefix', { registry: [{ location: 'a.io' }, { prefix: 'a.io', location: 'b.io' }] }, /prefix "a\.io" is defined more than once/],
    ['search registry with a path', { 'unqualified-search-registries': ['quay.io/ns'] }, /unqualified-search-registries: "quay\.io\/ns" is not a registry host/],
    ['search registries not a list', { 'unqualified-search-registries': 'docker.io' }, /"unqualified-search-registries" must be an array of strings/],
    ['bad short-name-mode', { 'short-name-mode': 'strict' }, /short-name-mode must be one of "enforcing", "permissive", "disabled", got "strict"/],
    ['alias key with a registry', { aliases: { 'quay.io/x': 'quay.io/x' } }, /\[aliases\] "quay\.io\/x": an alias must be a short name/],
    ['alias key with a tag', { aliases: { 'x:1': 'quay.io/x' } }, /an alias must be a short name without registry, tag or digest/],
    ['alias value not qualified', { aliases: { x: 'x/y' } }, /the value must be a fully qualified repository/],
    ['alias value with a tag', { aliases: { x: 'quay.io/x:1' } }, /the value must be a fully qualified repository/],
    ['alias value not a string', { aliases: { x: 1 } }, /\[aliases\] "x" must be a string/],
    ['alias defined twice', { aliases: { busybox: 'quay.io/a', 'library/busybox': 'quay.io/b' } }, /\[aliases\] "library\/busybox" is defined more than once/],
    ['v1 mixed with v2', { registries: { search: { registries: ['a.io'] } }, registry: [{ location: 'b.io' }] }, /mixing v1/],
    ['v1 entry with scheme', { registries: { block: { registries: ['https://a.io'] } } }, /URI schemes/],
  ];
  for (const [what, obj, re] of bad) {
    it(`rejects: ${what}`, () => {
      assert.throws(() => conf(obj), isCode('CONFIG_FILE_INVALID', re));
    });
  }

  it('names the source in the message', () => {
    assert.throws(() => RegistriesConf.fromObject({ 'short-name-mode': 1 }, '/etc/containers/registries.conf'), /\/etc\/containers\/registries\.conf: short-name-mode/);
  });

  it('applies defaults and tidies locations', () => {
    const c = conf({
      registry: [
        { location: 'a.io/x/' },
        { prefix: 'b.io/', location: 'c.io//' },
        { prefix: '*.w.io' },
        { location: 'm.io', mirror: [{ location: 'mm.io/' }] },
      ],
    });
    assert.deepEqual(
      c.registries.map((r) => [r.prefix, r.location]),
      [['a.io/x', 'a.io/x'], ['b.io', 'c.io'], ['*.w.io', ''], ['m.io', 'm.io']],
    );
    assert.deepEqual(c.registries[3]!.mirrors, [{ location: 'mm.io', insecure: false, pullFromMirror: 'all' }]);
    assert.equal(c.shortNameMode, 'permissive');
    assert.deepEqual(c.unqualifiedSearchRegistries, ['docker.io']);
    assert.deepEqual(c.warnings, []);
    assert.equal(RegistriesConf.empty().registries.length, 0);
  });

  it('collects unknown keys as warnings instead of failing', () => {
    const c = conf({
      'unqualified-search-registries': ['quay.io'],
      'some-future-key': true,
      'additional-layer-store-auth-helper': 'x',
      registry: [{ location: 'a.io', colour: 'red', mirror: [{ location: 'm.io', weight: 3 }] }],
    });
    assert.equal(c.warnings.length, 3);
    assert.match(c.warnings[0]!, /unknown key "some-future-key" ignored/);
    assert.match(c.warnings[1]!, /\[\[registry\]\] prefix "a\.io" \[\[registry\.mirror\]\] #1: unknown key "weight"/);
    assert.match(c.warnings[2]!, /\[\[registry\]\] prefix "a\.io": unknown key "colour"/);
  });

  it('warns about index.docker.io prefixes, which never match', () => {
    assert.match(conf({ registry: [{ prefix: 'index.docker.io/library/x', location: 'a.io/x' }] }).warnings[0]!, /never matches/);
  });

  it('accepts same location twice with the same settings, and tag / digest prefixes', () => {
    const c = conf({
      registry: [
        { prefix: 'a.io/x', location: 'b.io', insecure: true },
        { prefix: 'a.io/y', location: 'b.io', insecure: true },
        { prefix: 'a.io/z:v1', location: 'b.io/z:v2' },
        { prefix: `a.io/z@${D}`, location: 'b.io/z' },
      ],
    });
    assert.equal(c.registries.length, 4);
  });

  it('converts the v1 format', () => {
    const c = conf({
      registries: {
        search: { registries: ['quay.io', 'docker.io'] },
        insecure: { registries: ['local.io:5000', 'both.io'] },
        block: { registries: ['bad.io', 'both.io'] },
      },
    });
    assert.deepEqual(c.unqualifiedSearchRegistries, ['quay.io', 'docker.io']);
    assert.deepEqual(
      c.registries.map((r) => [r.location, r.insecure, r.blocked]),
      [['local.io:5000', true, false], ['both.io', true, true], ['bad.io', false, true]],
    );
  });

  it('reads aliases in familiar form', () => {
    const c = conf({ aliases: { 'library/busybox': 'quay.io/bb/busybox', 'user/app': 'docker.io/user/app', ubi: 'docker.io/ubi' } });
    assert.deepEqual([...c.aliases], [['busybox', 'quay.io/bb/busybox'], ['user/app', 'docker.io/user/app'], ['ubi', 'docker.io/library/ubi']]);
  });
});

describe('pullSources', () => {
  const cases: [string, unknown, string, string[]][] = [
    // what, config, reference, expected sources
    ['no entry: the reference itself', { registry: [{ location: 'other.io' }] }, 'example.com/img:1', ['example.com/img:1']],
    ['empty configuration', {}, 'busybox', ['docker.io/library/busybox:latest']],
    [
      'rewrite example from §5',
      { registry: [{ prefix: 'example.com/foo', location: 'int.example.com/bar' }] },
      'example.com/foo/img:tag',
      ['int.example.com/bar/img:tag'],
    ],
    [
      'prefix equal to the whole name',
      { registry: [{ prefix: 'example.com/foo', location: 'int.example.com/bar' }] },
      'example.com/foo:tag',
      ['int.example.com/bar:tag'],
    ],
    [
      'anchored: example.com/foo does not match example.com/foobar/x',
      { registry: [{ prefix: 'example.com/foo', location: 'int.example.com/bar', blocked: true }] },
      'example.com/foobar/x:1',
      ['example.com/foobar/x:1'],
    ],
    [
      'anchored: host prefix does not match another port or a longer host',
      { registry: [{ prefix: 'example.com', location: 'int.example.com' }] },
      'example.com:5000/x:1',
      ['example.com:5000/x:1'],
    ],
    [
      'anchored: host prefix is not a substring match',
      { registry: [{ prefix: 'example.com', location: 'int.example.com' }] },
      'notexample.com/x:1',
      ['notexample.com/x:1'],
    ],
    ['host prefix matches all repositories', { registry: [{ prefix: 'example.com', location: 'int.example.com' }] }, 'example.com/a/b:1', ['int.example.com/a/b:1']],
    ['host compare ignores case', { registry: [{ prefix: 'example.com', location: 'int.example.com' }] }, 'EXAMPLE.com/a:1', ['int.example.com/a:1']],
    [
      'digest kept',
      { registry: [{ prefix: 'example.com/foo', location: 'int.example.com/bar' }] },
      `example.com/foo/img@${D}`,
      [`int.example.com/bar/img@${D}`],
    ],
    [
      'tag and digest kept',
      { registry: [{ prefix: 'example.com/foo', location: 'int.example.com/bar' }] },
      `example.com/foo/img:t@${D}`,
      [`int.example.com/bar/img:t@${D}`],
    ],
    [
      'longest prefix wins',
      {
        registry: [
          { prefix: 'example.com', location: 'one.io' },
          { prefix: 'example.com/a/b', location: 'three.io/z' },
          { prefix: 'example.com/a', location: 'two.io' },
        ],
      },
      'example.com/a/b/c:1',
      ['three.io/z/c:1'],
    ],
    [
      'longest matching prefix, not longest prefix',
      { registry: [{ prefix: 'example.com', location: 'one.io' }, { prefix: 'example.com/a/bc', location: 'three.io' }] },
      'example.com/a/b:1',
      ['one.io/a/b:1'],
    ],
    ['wildcard matches a subdomain', { registry: [{ prefix: '*.example.com', insecure: true }] }, 'reg.example.com/x:1', ['reg.example.com/x:1 +insecure']],
    ['wildcard matches a deeper subdomain with a port', { registry: [{ prefix: '*.example.com', insecure: true }] }, 'a.b.example.com:5000/x:1', ['a.b.example.com:5000/x:1 +insecure']],
    ['wildcard does not match the domain itself', { registry: [{ prefix: '*.example.com', insecure: true }] }, 'example.com/x:1', ['example.com/x:1']],
    ['wildcard does not match a look-alike', { registry: [{ prefix: '*.example.com', insecure: true }] }, 'evilexample.com/x:1', ['evilexample.com/x:1']],
    ['wildcard with a location rewrites the host', { registry: [{ prefix: '*.example.com', location: 'cache.io/ex' }] }, 'reg.example.com:5000/x:1', ['cache.io/ex/x:1']],
    [
      'exact host beats the wildcard',
      { registry: [{ prefix: '*.example.com', blocked: true }, { prefix: 'reg.example.com', location: 'reg.example.com', insecure: true }] },
      'reg.example.com/x:1',
      ['reg.example.com/x:1 +insecure'],
    ],
    [
      'narrower wildcard beats the wider one',
      { registry: [{ prefix: '*.example.com', blocked: true }, { prefix: '*.in.example.com' }] },
      'reg.in.example.com/x:1',
      ['reg.in.example.com/x:1'],
    ],
    [
      'path prefix beats the wildcard',
      { registry: [{ prefix: '*.example.com', blocked: true }, { location: 'r.example.com/ok' }] },
      'r.example.com/ok/x:1',
      ['r.example.com/ok/x:1'],
    ],
    ['tag prefix matches that tag only', { registry: [{ prefix: 'example.com/foo:v1', location: 'int.example.com/foo:v2' }] }, 'example.com/foo:v1', ['int.example.com/foo:v2']],
    ['tag prefix is anchored', { registry: [{ prefix: 'example.com/foo:v1', location: 'int.example.com/foo:v2' }] }, 'example.com/foo:v10', ['example.com/foo:v10']],
    [
      'tag prefix beats the name prefix',
      { registry: [{ prefix: 'example.com/foo', location: 'a.io/foo' }, { prefix: 'example.com/foo:v1', location: 'b.io/foo:v1' }] },
      'example.com/foo:v1',
      ['b.io/foo:v1'],
    ],
    ['digest prefix', { registry: [{ prefix: `example.com/foo@${D}`, location: 'b.io/foo' }] }, `example.com/foo@${D}`, [`b.io/foo@${D}`]],
    ['tag prefix onto a bare location keeps the tag', { registry: [{ prefix: 'example.com/foo:v1', location: 'b.io/foo' }] }, 'example.com/foo:v1', ['b.io/foo:v1']],
    [
      'mirrors first, then the primary, insecure per endpoint',
      { registry: [{ prefix: 'example.com', location: 'example.com', mirror: [{ location: 'm1.io', insecure: true }, { location: 'm2.io/cache' }] }] },
      'example.com/a/b:1',
      ['m1.io/a/b:1 +insecure +mirror', 'm2.io/cache/a/b:1 +mirror', 'example.com/a/b:1'],
    ],
    [
      'mirrors of a remapped prefix',
      { registry: [{ prefix: 'example.com/foo', location: 'int.example.com/bar', insecure: true, mirror: [{ location: 'm.io/x' }] }] },
      'example.com/foo/img:tag',
      ['m.io/x/img:tag +mirror', 'int.example.com/bar/img:tag +insecure'],
    ],
    ...((): [string, unknown, string, string[]][] => {
      const pfm = {
        registry: [
          {
            location: 'example.com',
            mirror: [
              { location: 'all.io' },
              { location: 'digest.io', 'pull-from-mirror': 'digest-only' },
              { location: 'tag.io', 'pull-from-mirror': 'tag-only' },
            ],
          },
        ],
      };
      return [
        ['pull-from-mirror with a tag', pfm, 'example.com/x:1', ['all.io/x:1 +mirror', 'tag.io/x:1 +mirror', 'example.com/x:1']],
        ['pull-from-mirror with a digest', pfm, `example.com/x@${D}`, [`all.io/x@${D} +mirror`, `digest.io/x@${D} +mirror`, `example.com/x@${D}`]],
        ['pull-from-mirror with tag and digest counts as digest', pfm, `example.com/x:1@${D}`, [`all.io/x:1@${D} +mirror`, `digest.io/x:1@${D} +mirror`, `example.com/x:1@${D}`]],
      ];
    })(),
    [
      'mirror-by-digest-only skips mirrors for tags',
      { registry: [{ location: 'example.com', 'mirror-by-digest-only': true, mirror: [{ location: 'm.io' }] }] },
      'example.com/x:1',
      ['example.com/x:1'],
    ],
    [
      'mirror-by-digest-only uses mirrors for digests',
      { registry: [{ location: 'example.com', 'mirror-by-digest-only': true, mirror: [{ location: 'm.io' }] }] },
      `example.com/x@${D}`,
      [`m.io/x@${D} +mirror`, `example.com/x@${D}`],
    ],
    [
      'blocked primary with a mirror: the mirror stays',
      { registry: [{ location: 'example.com', blocked: true, mirror: [{ location: 'm.io' }] }] },
      'example.com/x:1',
      ['m.io/x:1 +mirror'],
    ],
    [
      'a mirror whose own entry is blocked is dropped',
      { registry: [{ location: 'example.com', mirror: [{ location: 'bad.io' }, { location: 'good.io' }] }, { location: 'bad.io', blocked: true }] },
      'example.com/x:1',
      ['good.io/x:1 +mirror', 'example.com/x:1'],
    ],
    [
      'a remap onto a blocked location is dropped',
      { registry: [{ prefix: 'example.com', location: 'bad.io/sub', mirror: [{ location: 'm.io' }] }, { location: 'bad.io', blocked: true }] },
      'example.com/x:1',
      ['m.io/x:1 +mirror'],
    ],
    [
      'blocked only under a path',
      { registry: [{ prefix: 'example.com/private', location: 'example.com/private', blocked: true }] },
      'example.com/public/x:1',
      ['example.com/public/x:1'],
    ],
    [
      'docker.io prefixes need library/',
      { registry: [{ prefix: 'docker.io/library/alpine', location: 'mirror.io/alpine' }, { prefix: 'docker.io/busybox', location: 'never.io/busybox' }] },
      'alpine:3',
      ['mirror.io/alpine:3'],
    ],
    [
      'docker.io/<name> matches a Hub user namespace, not the official image',
      { registry: [{ prefix: 'docker.io/busybox', location: 'never.io/busybox' }] },
      'busybox',
      ['docker.io/library/busybox:latest'],
    ],
    [
      'docker.io mirror for everything on the Hub',
      { registry: [{ prefix: 'docker.io', location: 'docker.io', mirror: [{ location: 'mirror.gcr.io' }] }] },
      'busybox:1.36',
      ['mirror.gcr.io/library/busybox:1.36 +mirror', 'docker.io/library/busybox:1.36'],
    ],
  ];
  for (const [what, obj, input, expected] of cases) {
    it(what, () => {
      assert.deepEqual(describeSources(conf(obj), input), expected);
    });
  }

  const denied: [string, unknown, string, RegExp][] = [
    ['blocked host', { registry: [{ location: 'example.com', blocked: true }] }, 'example.com/banned:1', /registry example\.com is blocked in registries\.conf/],
    ['blocked path', { registry: [{ prefix: 'example.com/banned', location: 'example.com/banned', blocked: true }] }, 'example.com/banned/x:1', /registry example\.com\/banned is blocked/],
    ['blocked wildcard', { registry: [{ prefix: '*.example.com', blocked: true }] }, 'a.example.com/x:1', /registry \*\.example\.com is blocked/],
    [
      'blocked table with a remap: the table wins',
      { registry: [{ prefix: 'example.com', location: 'int.example.com', blocked: true }] },
      'example.com/x:1',
      /registry example\.com is blocked/,
    ],
    [
      'blocked primary and every mirror blocked',
      { registry: [{ location: 'example.com', blocked: true, mirror: [{ location: 'm.io' }] }, { location: 'm.io', blocked: true }] },
      'example.com/x:1',
      /registry example\.com is blocked/,
    ],
    [
      'blocked primary and no mirror eligible',
      { registry: [{ location: 'example.com', blocked: true, 'mirror-by-digest-only': true, mirror: [{ location: 'm.io' }] }] },
      'example.com/x:1',
      /registry example\.com is blocked/,
    ],
  ];
  for (const [what, obj, input, re] of denied) {
    it(`denies: ${what}`, () => {
      assert.throws(() => pullSources(conf(obj), Reference.parse(input)), isCode('BLOCKED', re));
    });
  }

  it('names a file source in the BLOCKED message', () => {
    const c = RegistriesConf.fromObject({ registry: [{ location: 'example.com', blocked: true }] }, '/etc/containers/registries.conf');
    assert.throws(() => pullSources(c, Reference.parse('example.com/x')), /blocked in registries\.conf \(\/etc\/containers\/registries\.conf\)$/);
  });

  it('findRegistry returns the governing table', () => {
    const c = conf({ registry: [{ location: 'example.com' }, { prefix: 'example.com/a', location: 'x.io', insecure: true }] });
    assert.equal(findRegistry(c, Reference.parse('example.com/a/b'))?.location, 'x.io');
    assert.equal(findRegistry(c, Reference.parse('example.com/ab'))?.location, 'example.com');
    assert.equal(findRegistry(c, Reference.parse('other.io/ab')), undefined);
  });
});

describe('short names', () => {
  const shortness: [string, boolean][] = [
    ['busybox', true],
    ['busybox:1.36', true],
    [`busybox@${D}`, true],
    ['library/busybox', true],
    ['user/app', true],
    ['docker://busybox', true],
    ['docker.io/library/busybox', false],
    ['quay.io/x', false],
    ['localhost/x', false],
    ['localhost:5000/x', false],
    ['myhost:5000/x', false],
    ['[::1]:5000/x', false],
  ];
  for (const [input, expected] of shortness) {
    it(`isShortName(${JSON.stringify(input)}) = ${expected}`, () => assert.equal(isShortName(input), expected));
  }

  const search = { 'unqualified-search-registries': ['quay.io', 'docker.io', 'localhost:5000'] };
  const expansions: [string, unknown, string, string[]][] = [
    ['default search list is docker.io', {}, 'busybox', ['docker.io/library/busybox:latest']],
    ['permissive tries every registry in order', search, 'busybox:1.36', ['quay.io/busybox:1.36', 'docker.io/library/busybox:1.36', 'localhost:5000/busybox:1.36']],
    ['namespaced short name', search, 'user/app', ['quay.io/user/app:latest', 'docker.io/user/app:latest', 'localhost:5000/user/app:latest']],
    ['digest kept', { 'unqualified-search-registries': ['quay.io'] }, `busybox@${D}`, [`quay.io/busybox@${D}`]],
    ['docker:// prefix', { 'unqualified-search-registries': ['quay.io'] }, 'docker://busybox', ['quay.io/busybox:latest']],
    ['enforcing with one registry', { 'short-name-mode': 'enforcing', 'unqualified-search-registries': ['quay.io'] }, 'busybox', ['quay.io/busybox:latest']],
    ['disabled: docker.io like containerd', { ...search, 'short-name-mode': 'disabled', aliases: { busybox: 'quay.io/bb/busybox' } }, 'busybox:1', ['docker.io/library/busybox:1']],
    ['alias wins over search', { ...search, aliases: { busybox: 'quay.io/bb/busybox' } }, 'busybox:1.36', ['quay.io/bb/busybox:1.36']],
    ['alias with digest re-appended', { ...search, aliases: { busybox: 'quay.io/bb/busybox' } }, `busybox@${D}`, [`quay.io/bb/busybox@${D}`]],
    ['alias looked up in familiar form', { ...search, aliases: { busybox: 'quay.io/bb/busybox' } }, 'library/busybox', ['quay.io/bb/busybox:latest']],
    ['alias under enforcing with many registries', { ...search, 'short-name-mode': 'enforcing', aliases: { 'user/app': 'r.io/u/app' } }, 'user/app', ['r.io/u/app:latest']],
    ['alias onto docker.io', { ...search, aliases: { ubi: 'docker.io/ubi' } }, 'ubi', ['docker.io/library/ubi:latest']],
    ['qualified docker.io is not expanded', search, 'docker.io/library/busybox:1', ['docker.io/library/busybox:1']],
    ['qualified other host', search, 'ghcr.io/x/y', ['ghcr.io/x/y:latest']],
    ['qualified index.docker.io normalized', search, 'index.docker.io/library/busybox', ['docker.io/library/busybox:latest']],
  ];
  for (const [what, obj, input, expected] of expansions) {
    it(`expandShortName: ${what}`, () => assert.deepEqual(expandShortName(conf(obj), input), expected));
  }

  it('enforcing with several registries and no alias fails (no TTY to ask)', () => {
    assert.throws(
      () => expandShortName(conf({ ...search, 'short-name-mode': 'enforcing' }), 'busybox'),
      isCode('INVALID_REFERENCE', /short-name-mode is "enforcing".*ambiguous over quay\.io, docker\.io, localhost:5000/),
    );
  });

  it('an empty search list fails short names but not qualified ones', () => {
    const c = conf({ 'unqualified-search-registries': [] });
    assert.throws(() => expandShortName(c, 'busybox'), isCode('INVALID_REFERENCE', /no unqualified-search-registries are defined in test\.conf/));
    assert.deepEqual(expandShortName(c, 'quay.io/x:1'), ['quay.io/x:1']);
  });

  it('rejects invalid input', () => {
    assert.throws(() => expandShortName(RegistriesConf.empty(), 'Busybox'), isCode('INVALID_REFERENCE', /lowercase/));
  });
});

describe('loadRegistriesConf (TOML file) and inline JSON', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'registries-conf-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const TOML = `
unqualified-search-registries = ["quay.io", "docker.io"]
short-name-mode = "enforcing"

[aliases]
"busybox" = "quay.io/bb/busybox"

[[registry]]
prefix = "example.com/foo"
location = "int.example.com/bar"
insecure = true
future-knob = 1

[[registry.mirror]]
location = "mirror.example.net/bar/"
pull-from-mirror = "digest-only"

[[registry.mirror]]
location = "plain.example.net:5000"
insecure = true

[[registry]]
location = "banned.example.com"
blocked = true
`;

  it('reads a real file', async () => {
    const path = join(dir, 'registries.conf');
    await writeFile(path, TOML);
    const c = await loadRegistriesConf(path);
    assert.equal(c.source, path);
    assert.equal(c.shortNameMode, 'enforcing');
    assert.deepEqual(c.unqualifiedSearchRegistries, ['quay.io', 'docker.io']);
    assert.deepEqual(c.registries[0], {
      prefix: 'example.com/foo',
      location: 'int.example.com/bar',
      insecure: true,
      blocked: false,
      mirrorByDigestOnly: false,
      mirrors: [
        { location: 'mirror.example.net/bar', insecure: false, pullFromMirror: 'digest-only' },
        { location: 'plain.example.net:5000', insecure: true, pullFromMirror: 'all' },
      ],
    });
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0]!, /unknown key "future-knob"/);
    assert.deepEqual(describeSources(c, 'example.com/foo/img:tag'), ['plain.example.net:5000/img:tag +insecure +mirror', 'int.example.com/bar/img:tag +insecure']);
    assert.deepEqual(describeSources(c, `example.com/foo/img@${D}`), [
      `mirror.example.net/bar/img@${D} +mirror`,
      `plain.example.net:5000/img@${D} +insecure +mirror`,
      `int.example.com/bar/img@${D} +insecure`,
    ]);
    assert.throws(() => pullSources(c, Reference.parse('banned.example.com/x')), isCode('BLOCKED', /registry banned\.example\.com is blocked/));
    assert.deepEqual(expandShortName(c, 'busybox'), ['quay.io/bb/busybox:latest']);
  });

  it('an empty file is the default configuration', async () => {
    const path = join(dir, 'empty.conf');
    await writeFile(path, '');
    const c = await loadRegistriesConf(path);
    assert.equal(c.registries.length, 0);
    assert.deepEqual(c.unqualifiedSearchRegistries, ['docker.io']);
  });

  it('reports a missing file with its path', async () => {
    const path = join(dir, 'nope.conf');
    await assert.rejects(loadRegistriesConf(path), isCode('CONFIG_FILE_INVALID', new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist`)));
  });

  it('reports bad TOML on one line with line and column', async () => {
    const path = join(dir, 'bad.conf');
    await writeFile(path, 'unqualified-search-registries = ["a.io",\n[[registry]]\n');
    await assert.rejects(loadRegistriesConf(path), isCode('CONFIG_FILE_INVALID', /bad\.conf: invalid TOML at line \d+, column \d+: \S/));
  });

  it('reports invalid settings with the path', async () => {
    const path = join(dir, 'scheme.conf');
    await writeFile(path, '[[registry]]\nlocation = "https://a.io"\n');
    await assert.rejects(loadRegistriesConf(path), isCode('CONFIG_FILE_INVALID', /scheme\.conf: \[\[registry\]\] #1 key "location": URI schemes/));
  });

  it('reads a v1 file', async () => {
    const path = join(dir, 'v1.conf');
    await writeFile(path, '[registries.search]\nregistries = ["quay.io"]\n[registries.block]\nregistries = ["bad.io"]\n');
    const c = await loadRegistriesConf(path);
    assert.deepEqual(c.unqualifiedSearchRegistries, ['quay.io']);
    assert.throws(() => pullSources(c, Reference.parse('bad.io/x')), isCode('BLOCKED', /bad\.io is blocked/));
  });

  it('applies <path>.d/*.conf drop-ins in name order: keys replace, aliases merge, registries replace by prefix', async () => {
    const path = join(dir, 'dropin.conf');
    await writeFile(path, [
      'unqualified-search-registries = ["quay.io"]',
      '[aliases]',
      '"a" = "quay.io/x/a"',
      '[[registry]]',
      'prefix = "example.com"',
      'location = "old.example.com"',
      '[[registry]]',
      'location = "kept.example.com"',
      'insecure = true',
      '',
    ].join('\n'));
    await mkdir(`${path}.d`);
    // 20- sorts after 10-: its prefix entry wins over both the file's and 10-'s.
    await writeFile(join(`${path}.d`, '20-last.conf'), '[[registry]]\nprefix = "example.com"\nlocation = "final.example.com"\n');
    await writeFile(join(`${path}.d`, '10-first.conf'), [
      'unqualified-search-registries = ["r.example.org"]',
      'short-name-mode = "disabled"',
      '[aliases]',
      '"b" = "quay.io/x/b"',
      '[[registry]]',
      'prefix = "example.com"',
      'location = "middle.example.com"',
      '[[registry]]',
      'location = "new.example.com"',
      'blocked = true',
      '',
    ].join('\n'));
    await writeFile(join(`${path}.d`, 'ignored.txt'), 'not toml at all [');
    const c = await loadRegistriesConf(path);
    assert.equal(c.source, `${path} with ${path}.d`);
    assert.deepEqual(c.unqualifiedSearchRegistries, ['r.example.org']);
    assert.equal(c.shortNameMode, 'disabled');
    assert.deepEqual([...c.aliases.keys()].sort(), ['a', 'b']);
    assert.deepEqual(describeSources(c, 'example.com/app'), ['final.example.com/app:latest']);
    assert.deepEqual(describeSources(c, 'kept.example.com/app'), ['kept.example.com/app:latest +insecure']);
    assert.throws(() => pullSources(c, Reference.parse('new.example.com/app')), isCode('BLOCKED', /new\.example\.com is blocked/));
  });

  it('names the drop-in at fault', async () => {
    const path = join(dir, 'bad-dropin.conf');
    await writeFile(path, 'unqualified-search-registries = ["quay.io"]\n');
    await mkdir(`${path}.d`);
    await writeFile(join(`${path}.d`, 'x.conf'), 'short-name-mode = "sometimes"\n');
    await assert.rejects(loadRegistriesConf(path), isCode('CONFIG_FILE_INVALID', /bad-dropin\.conf\.d\/x\.conf: short-name-mode must be one of/));
  });

  it("accepts image-rs's inline registry_config JSON object", () => {
    const imageRsConfig = JSON.parse(`{
      "registry_config": {
        "unqualified-search-registries": ["docker.io"],
        "registry": [
          { "prefix": "example.com/banned", "blocked": true, "location": "example.com/banned" },
          { "prefix": "mirror-test.com", "location": "mirror-test.com", "mirror": [{ "location": "127.0.0.1:5000", "insecure": true }] },
          { "prefix": "remapping-test.com", "location": "127.0.0.1:5000", "insecure": true }
        ]
      }
    }`) as { registry_config: unknown };
    const c = RegistriesConf.fromObject(imageRsConfig.registry_config, 'registry_config');
    assert.throws(() => pullSources(c, Reference.parse('example.com/banned')), isCode('BLOCKED', /blocked in registries\.conf \(registry_config\)/));
    assert.deepEqual(describeSources(c, 'mirror-test.com/some-image'), ['127.0.0.1:5000/some-image:latest +insecure +mirror', 'mirror-test.com/some-image:latest']);
    assert.deepEqual(describeSources(c, 'remapping-test.com/some-image'), ['127.0.0.1:5000/some-image:latest +insecure']);
    assert.deepEqual(describeSources(c, 'docker.io/library/busybox'), ['docker.io/library/busybox:latest']);
  });
});
