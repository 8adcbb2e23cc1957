import { InvalidArgumentError } from '../errors.js';

/** An OCI platform: os/architecture[/variant]. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string | undefined;
}

const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

const ARCH_ALIASES: Readonly<Record<string, string>> = { x86_64: 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

export const Platform = {
  parse(input: string): Platform {
    const parts = input.split('/');
    if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0 || !/^[A-Za-z0-9_.-]+$/.test(p))) {
      throw new InvalidArgumentError(`invalid platform ${JSON.stringify(input)}: expected OS/ARCH[/VARIANT]`);
    }
    return Platform.normalize({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] });
  },

  /** The platform of a host as Node names it (process.platform, process.arch). */
  fromNode(platform: string, arch: string): Platform {
    return Platform.normalize({ os: platform, architecture: NODE_ARCH[arch] ?? arch, variant: arch === 'arm' ? 'v7' : undefined });
  },

  /** containerd's normalization: arm64 means v8, arm means v7, amd64 v1 means no variant. */
  normalize(p: Platform): Platform {
    const os = p.os.toLowerCase();
    const architecture = ARCH_ALIASES[p.architecture.toLowerCase()] ?? p.architecture.toLowerCase();
    let variant = p.variant?.toLowerCase() || undefined;
    if (architecture === 'arm64' && (variant === undefined || variant === '8')) variant = 'v8';
    if (architecture === 'arm' && variant === undefined) variant = 'v7';
    if (architecture === 'arm' && variant !== undefined && /^[5-8]$/.test(variant)) variant = `v${variant}`;
    if (architecture === 'amd64' && variant === 'v1') variant = undefined;
    return { os, architecture, variant };
  },

  format(p: Platform): string {
    return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  },

  /**
   * How well `candidate` serves `wanted`: 0 is exact, higher is a compatible
   * fallback (an older arm variant), undefined means it cannot run.
   */
  matchRank(wanted: Platform, candidate: Platform): number | undefined {
    const w = Platform.normalize(wanted);
    const c = Platform.normalize(candidate);
    if (w.os !== c.os || w.architecture !== c.architecture) return undefined;
    if (w.variant === c.variant) return 0;
    if (w.architecture === 'arm' && w.variant && c.variant) {
      const wv = Number(w.variant.slice(1));
      const cv = Number(c.variant.slice(1));
      if (Number.isInteger(wv) && Number.isInteger(cv) && cv < wv) return wv - cv;
    }
    if (w.architecture === 'amd64' && c.variant === undefined) return 1;
    return undefined;
  },
};
