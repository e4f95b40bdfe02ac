// Runs async operations one after another, in call order: concurrent calls on one engine object
// are queued, never interleaved. A failed operation rejects only its own promise.
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
