import type { ImageConfig } from '../image/image-config.js';
import type { ResolvedUser } from './user.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const BUNDLE_HOSTNAME = 'image-ts';

export interface Mount {
  destination: string;
  type: string;
  source?: string;
  options?: string[];
}

/** The subset of the OCI runtime spec that a bundle's config.json carries. */
export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: Mount[];
  annotations: Record<string, string>;
  linux: {
    namespaces: { type: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

const DEFAULT_MOUNTS: readonly Mount[] = [
  { destination: '/proc', type: 'proc', source: 'proc' },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
];

const IMAGE_ANNOTATION = 'org.opencontainers.image';

/** Env entries keyed by name; later entries win, order of first appearance is kept. */
function mergeEnv(base: readonly string[], over: readonly string[]): string[] {
  const map = new Map<string, string>();
  for (const e of [...base, ...over]) {
    const eq = e.indexOf('=');
    map.set(eq < 0 ? e : e.slice(0, eq), e);
  }
  return [...map.values()];
}

/**
 * Builds config.json from an image config, as image-rs does (spec §1a) with
 * its gaps closed: User is resolved to ids, the image Env is laid over the
 * default PATH and TERM rather than replacing them.
 */
export function buildRuntimeSpec(image: ImageConfig, user: ResolvedUser): RuntimeSpec {
  const cc = image.config;
  const args = [...(cc?.Entrypoint ?? []), ...(cc?.Cmd ?? [])];
  const annotations: Record<string, string> = { ...(cc?.Labels ?? {}) };
  const setIfAbsent = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '' && annotations[key] === undefined) annotations[key] = value;
  };
  setIfAbsent(`${IMAGE_ANNOTATION}.stopSignal`, cc?.StopSignal);
  setIfAbsent(`${IMAGE_ANNOTATION}.os`, image.os);
  setIfAbsent(`${IMAGE_ANNOTATION}.os.version`, image.osVersion);
  setIfAbsent(`${IMAGE_ANNOTATION}.os.features`, image.osFeatures ? JSON.stringify(image.osFeatures) : undefined);
  setIfAbsent(`${IMAGE_ANNOTATION}.architecture`, image.architecture);
  setIfAbsent(`${IMAGE_ANNOTATION}.variant`, image.variant);
  setIfAbsent(`${IMAGE_ANNOTATION}.author`, image.author);
  setIfAbsent(`${IMAGE_ANNOTATION}.created`, image.created);
  annotations[`${IMAGE_ANNOTATION}.exposedPorts`] = (cc?.ExposedPorts ?? []).join(',');

  const volumeMounts: Mount[] = (cc?.Volumes ?? []).map((destination) => ({
    destination,
    type: 'tmpfs',
    options: ['nosuid', 'noexec', 'nodev', 'relatime', 'rw'],
  }));

  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: [...user.additionalGids] } : {}) },
      args: args.length ? args : ['sh'],
      env: mergeEnv([`PATH=${DEFAULT_PATH}`, 'TERM=xterm'], cc?.Env ?? []),
      cwd: cc?.WorkingDir || '/',
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        inheritable: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
        ambient: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: BUNDLE_HOSTNAME,
    mounts: [...volumeMounts, ...DEFAULT_MOUNTS.map((m) => ({ ...m, ...(m.options ? { options: [...m.options] } : {}) }))],
    annotations,
    linux: {
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'].map((type) => ({ type })),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
