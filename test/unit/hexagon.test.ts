/**
 * The architecture, held by a test: the domain is pure and the ports are
 * only interfaces. Imports are read with TypeScript's own parser, so type-only
 * imports (which vanish at run time) are told from real ones.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/cli.js';

const SRC = join(ROOT, 'src');

/** Node modules that compute and nothing else: hashing, ciphers, streams of bytes. */
const PURE_NODE: Readonly<Record<string, readonly string[] | 'any'>> = {
  'node:crypto': ['createHash', 'createHmac', 'createDecipheriv', 'timingSafeEqual', 'Hash', 'Hmac', 'Decipher'],
  'node:stream': 'any',
  'node:stream/promises': ['pipeline'],
};

/** Sources of time and randomness the domain must take from outside, and I/O it must not reach. */
const IMPURE_CALLS: readonly (readonly [RegExp, string])[] = [
  [/\bDate\.now\s*\(/, 'Date.now()'], [/\bnew Date\(\s*\)/, 'new Date()'], [/\bMath\.random\s*\(/, 'Math.random()'],
  [/\bperformance\.now\s*\(/, 'performance.now()'], [/\bprocess\.(env|exit|cwd|pid|hrtime)\b/, 'process'],
  [/\bsetTimeout\s*\(/, 'setTimeout()'], [/\bsetInterval\s*\(/, 'setInterval()'],
];

interface Import {
  readonly from: string;
  readonly typeOnly: boolean;
  readonly names: readonly string[];
  readonly line: number;
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

function importsOf(file: string, text: string): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const line = (n: ts.Node): number => sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : [];
      const allTypes = named.length > 0 && named.every((e) => e.isTypeOnly) && !clause?.name;
      out.push({
        from: node.moduleSpecifier.text,
        typeOnly: clause === undefined ? false : clause.isTypeOnly || allTypes,
        names: [...(clause?.name ? [clause.name.text] : []), ...named.filter((e) => !e.isTypeOnly).map((e) => (e.propertyName ?? e.name).text)],
        line: line(node),
      });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ from: node.moduleSpecifier.text, typeOnly: node.isTypeOnly, names: [], line: line(node) });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      out.push({ from: arg && ts.isStringLiteral(arg) ? arg.text : '<computed>', typeOnly: false, names: [], line: line(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Where a relative import lands, as a path under src/. */
const target = (file: string, from: string): string => relative(SRC, resolve(dirname(file), from));

/** What is wrong with one domain file, given its text. */
function domainProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  const where = (l: number): string => `${relative(ROOT, file)}:${l}`;
  for (const imp of importsOf(file, text)) {
    if (imp.from.startsWith('.')) {
      const to = target(file, imp.from);
      if (to.startsWith('domain/')) continue;
      if (to.startsWith('ports/') && imp.typeOnly) continue;
      problems.push(`${where(imp.line)} imports ${to}${to.startsWith('ports/') ? ' as a value (ports are imported as types)' : ''}`);
    } else if (!imp.typeOnly) {
      const allowed = PURE_NODE[imp.from];
      const impure = allowed === undefined ? (imp.names.length ? imp.names : ['*']) : allowed === 'any' ? [] : imp.names.filter((n) => !allowed.includes(n));
      if (impure.length > 0) problems.push(`${where(imp.line)} imports ${impure.join(', ')} from ${imp.from}`);
    }
  }
  const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
  for (const [re, name] of IMPURE_CALLS) if (re.test(code)) problems.push(`${relative(ROOT, file)} uses ${name}: time, randomness and the process come from outside`);
  return problems;
}

/** What a ports file leaves at run time: its JavaScript, with the empty module marker and comments gone. */
function runtimeCode(file: string, text: string): string {
  const js = ts.transpileModule(text, { fileName: file, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, removeComments: true } }).outputText;
  return js.replace(/^export \{\};$/m, '').trim();
}

describe('the hexagon', () => {
  it('the domain imports only the domain, ports as types, and node modules that only compute', () => {
    const problems = files(join(SRC, 'domain')).flatMap((file) => domainProblems(file, readFileSync(file, 'utf8')));
    assert.deepEqual(problems, []);
  });

  it('ports import no adapter and no node module at run time', () => {
    const problems: string[] = [];
    for (const file of files(join(SRC, 'ports'))) {
      for (const imp of importsOf(file, readFileSync(file, 'utf8'))) {
        const to = imp.from.startsWith('.') ? target(file, imp.from) : imp.from;
        if (to.startsWith('adapters/')) problems.push(`${relative(ROOT, file)}:${imp.line} imports ${to}`);
        else if (!imp.from.startsWith('.') && !imp.typeOnly) problems.push(`${relative(ROOT, file)}:${imp.line} imports ${imp.from} at run time`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('ports hold no runtime code: each compiles to nothing', () => {
    const problems = files(join(SRC, 'ports')).flatMap((file) => {
      const code = runtimeCode(file, readFileSync(file, 'utf8'));
      return code ? [`${relative(ROOT, file)} runs: ${code.split('\n')[0]}`] : [];
    });
    assert.deepEqual(problems, []);
  });

  it('sees runtime code in a ports file', () => {
    const probe = join(SRC, 'ports', 'probe.ts');
    assert.equal(runtimeCode(probe, "import type { Digest } from '../domain/image/digest.js';\nexport interface P { d: Digest }\nexport type Q = P;\n"), '');
    assert.match(runtimeCode(probe, "export interface P { x: number }\nexport const PToken = Symbol.for('P');\n"), /PToken/);
    assert.match(runtimeCode(probe, "import { Digest } from '../domain/image/digest.js';\nexport const d = Digest;\n"), /import/);
  });

  it('sees each kind of violation in a domain file', () => {
    const probe = join(SRC, 'domain', 'pull', 'probe.ts');
    const problems = domainProblems(probe, [
      "import { createHash, randomUUID } from 'node:crypto';",
      "import { readFile } from 'node:fs/promises';",
      "import { FsLayerStore } from '../../adapters/outbound/layer-store/fs-layer-store.js';",
      "import { LoggerToken } from '../../ports/observability/logger.js';",
      "import type { Logger } from '../../ports/observability/logger.js';",
      "import { Digest } from '../image/digest.js';",
      'export const id = () => `${Date.now()}-${Math.random()}`; // Date.now() in a comment is fine',
    ].join('\n'));
    assert.deepEqual(problems.map((p) => p.replace(/^src\/domain\/pull\/probe\.ts(:\d+)? /, '')), [
      'imports randomUUID from node:crypto',
      'imports readFile from node:fs/promises',
      'imports adapters/outbound/layer-store/fs-layer-store.js',
      'imports ports/observability/logger.js as a value (ports are imported as types)',
      'uses Date.now(): time, randomness and the process come from outside',
      'uses Math.random(): time, randomness and the process come from outside',
    ]);
  });
});
