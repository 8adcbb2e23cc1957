import { ContainerModule } from 'inversify';
import type { RegistriesConf } from '../../../domain/registry/registries-conf.js';
import type { Credentials } from '../../../ports/image-source/image-source.js';
import type { Decompressor } from '../../../ports/layer/decompressor.js';
import type { Logger } from '../../../ports/observability/logger.js';
import type { ResourceLoader } from '../../../ports/resources/resource-loader.js';
import { NativeDecompressor } from '../../outbound/decompress/native-decompressor.js';
import { SubprocessDecompressor, findSubprocessCodecs } from '../../outbound/decompress/subprocess-decompressor.js';
import { OciLayoutSourceFactory } from '../../outbound/oci-layout/oci-layout-source.js';
import { RegistrySourceFactory } from '../../outbound/registry/registry-source.js';
import type { Settings } from '../settings-file.js';
import { registriesLoader } from '../signatures.js';
import { Tokens } from '../tokens.js';
import { DecompressorToken, ImageSourceFactoryToken, LoggerToken, ResourceLoaderToken } from '../port-tokens.js';

/**
 * Registries (OCI distribution API), configured by the settings. registries.conf
 * is loaded through the bound ResourceLoader, so a kbs:// one comes through
 * whatever key broker is bound.
 */
export function registrySource(settings: Settings, credentials?: Credentials): ContainerModule {
  return new ContainerModule(({ bind }) => {
    if (settings.registriesConf) {
      bind(Tokens.Registries).toDynamicValue((ctx) =>
        registriesLoader(settings, ctx.get<ResourceLoader>(ResourceLoaderToken), ctx.get<Logger>(LoggerToken))!).inSingletonScope();
    }
    bind(ImageSourceFactoryToken).toDynamicValue((ctx) => new RegistrySourceFactory({
      insecureRegistries: settings.insecureRegistries,
      plainHttpRegistries: settings.plainHttpRegistries,
      caFiles: settings.caFiles,
      caPems: settings.caPems,
      certsDirs: settings.certsDirs,
      authFiles: settings.authFiles,
      credentials,
      logger: ctx.get<Logger>(LoggerToken),
      registries: ctx.get<() => Promise<RegistriesConf | undefined>>(Tokens.Registries, { optional: true }),
      proxy: settings.proxy,
      timeouts: settings.timeouts,
    })).inSingletonScope();
  });
}

/** OCI image layouts on disk (`oci:DIR[:REF]`). */
export function ociLayoutSource(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(ImageSourceFactoryToken).toConstantValue(new OciLayoutSourceFactory());
  });
}

/**
 * gzip: ISA-L in process when the addon was built with it; else an igzip
 * process when the machine has one (4x node's zlib); else node's zlib. zstd:
 * zstd-napi in process, which beat a zstd process once the pipe's copies
 * were counted (bench/NOTES.md). Nothing is probed until a layer needs it.
 */
export function autoDecompressor(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(DecompressorToken).toDynamicValue((): Decompressor => {
      const native = new NativeDecompressor();
      return new SubprocessDecompressor(() => (native.hasIsal() ? {} : { gzip: findSubprocessCodecs().gzip }), native);
    }).inSingletonScope();
  });
}

/** In process only: ISA-L or zlib for gzip, zstd-napi for zstd. */
export function nativeDecompressor(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(DecompressorToken).toConstantValue(new NativeDecompressor());
  });
}
