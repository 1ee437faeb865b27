import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { loadLocalConfigFile, parseLocalConfig } from '../config/local-config.js';
import type { Logger } from '../logging.js';
import type { StateStore } from './store.js';

/**
 * Feeds the store from LOCAL_XDS (inline) or LOCAL_XDS_PATH (file, reloaded on change). The
 * first load throws on an invalid file; later invalid versions are logged and ignored, so a bad
 * edit never changes the running state.
 */
export class LocalConfigSource {
  readonly #store: StateStore;
  readonly #logger: Logger;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<void> = Promise.resolve();

  constructor(store: StateStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  loadInline(yaml: string): void {
    this.#store.replaceLocal(parseLocalConfig(yaml, 'LOCAL_XDS'));
  }

  async loadFile(
    path: string,
    options: { watch?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    const config = await loadLocalConfigFile(path, options);
    this.#store.replaceLocal(config);
    this.#logger.info(
      {
        path,
        workloads: config.workloads.length,
        services: config.services.length,
        policies: config.policies.length,
      },
      'local config loaded',
    );
    if (options.watch !== false) this.#watch(resolve(path));
  }

  /** Reloads now (also used by the watcher); resolves when the store holds the new content. */
  reload(path: string): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      try {
        const config = await loadLocalConfigFile(path);
        this.#store.replaceLocal(config);
        this.#logger.info(
          { path, workloads: config.workloads.length, policies: config.policies.length },
          'local config reloaded',
        );
      } catch (err) {
        this.#logger.error(
          { err, path },
          'local config change ignored: the new version is invalid',
        );
      }
    });
    return this.#reloading;
  }

  #watch(path: string): void {
    // Watch the directory: editors and ConfigMap updates replace the file rather than write it.
    this.#watcher = watch(dirname(path), (_event, name) => {
      if (name !== null && name !== basename(path) && !name.startsWith('..')) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.reload(path), 100);
    });
    this.#watcher.on('error', (err) =>
      this.#logger.warn({ err, path }, 'cannot watch the local config file'),
    );
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher?.close();
  }
}
