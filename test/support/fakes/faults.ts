/** Makes chosen calls of a fake fail, as a store whose connection drops would. */
export class Faults<Method extends string> {
  private readonly planned = new Map<Method, Error[]>();

  /** The next `times` calls of `method` fail with `error` (before doing anything). */
  failNext(method: Method, times = 1, error = new Error(`${method}: connection reset`)): void {
    this.planned.set(method, [...(this.planned.get(method) ?? []), ...Array<Error>(times).fill(error)]);
  }

  /** Called first by every faultable method. */
  check(method: Method): void {
    const error = this.planned.get(method)?.shift();
    if (error) throw error;
  }
}
