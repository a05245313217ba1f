/**
 * What the bench must undo if it is interrupted or exits early (throwaway daemons, network
 * namespaces): one set per kind, watched by SIGINT, SIGTERM and exit handlers while it holds anything.
 */
export class UndoOnExit<T> {
  readonly #live = new Set<T>();
  readonly #undo: (item: T) => void;
  readonly #onExit = (): void => this.undoAll();
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.undoAll();
    // Die of the same signal, as the process would have without this handler.
    process.kill(process.pid, signal);
  };

  /** `undo` runs synchronously (an exit handler cannot wait) and must not throw. */
  constructor(undo: (item: T) => void) {
    this.#undo = undo;
  }

  add(item: T): void {
    this.#live.add(item);
    if (this.#live.size !== 1) return;
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
    process.on('exit', this.#onExit);
  }

  /** Forgets `item` (undone by its owner); false if it was not held. */
  delete(item: T): boolean {
    if (!this.#live.delete(item)) return false;
    if (this.#live.size === 0) this.#unwatch();
    return true;
  }

  undoAll(): void {
    for (const item of this.#live) this.#undo(item);
    this.#live.clear();
    this.#unwatch();
  }

  #unwatch(): void {
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
    process.off('exit', this.#onExit);
  }
}
