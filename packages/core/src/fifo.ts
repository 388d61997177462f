/**
 * A FIFO with O(1) push, shift and unshift of one item. `Array#shift` is O(n), and a backlog
 * of thousands of messages made delivery quadratic (memory transport, kafka partitions).
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(...items: T[]): void {
    for (const item of items) this.#items.push(item);
  }

  first(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    // Compact once the consumed prefix dominates, so memory follows what is buffered.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Puts items back at the front, in their order. */
  unshift(...items: T[]): void {
    if (items.length === 1 && this.#head > 0) {
      this.#items[--this.#head] = items[0];
      return;
    }
    this.#items = [...items, ...this.#items.slice(this.#head)];
    this.#head = 0;
  }

  /** Puts an item back where its order (`seq`) says, among those waiting. */
  insertInOrder(item: T, seq: (item: T) => number): void {
    let at = this.#head;
    while (at < this.#items.length && seq(this.#items[at] as T) < seq(item)) at++;
    this.#items.splice(at, 0, item);
  }
}
