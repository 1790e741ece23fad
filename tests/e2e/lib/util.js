// Small waiting helpers. Every wait is bounded: a test that waits on an event
// that never comes fails with a message naming what it waited for.

/** Resolves with `promise`, or rejects after `ms` with a message naming `what`. */
export function withTimeout(promise, what, ms = 5000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Collects values and lets a test wait until one satisfying a predicate has
 * arrived (already arrived counts).
 */
export class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    this.items.push(item);
    this.waiters = this.waiters.filter(({ predicate, resolve }) => {
      if (predicate(item)) {
        resolve(item);
        return false;
      }
      return true;
    });
  }

  /** Waits until an item satisfying `predicate` is (or was) pushed. */
  next(predicate = () => true, what = "an item", ms = 5000) {
    const found = this.items.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    const waiter = deferred();
    this.waiters.push({ predicate, resolve: waiter.resolve });
    return withTimeout(waiter.promise, `${what} in ${this.name}`, ms);
  }

  /** Waits until `count` items satisfying `predicate` have arrived. */
  async count(count, predicate = () => true, what = "items", ms = 5000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const have = this.items.filter(predicate).length;
      if (have >= count) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${count} ${what} in ${this.name} (have ${have})`);
      }
      // Wait for the next matching arrival (or the deadline).
      const waiter = deferred();
      this.waiters.push({ predicate, resolve: waiter.resolve });
      await withTimeout(waiter.promise, `${count} ${what} in ${this.name} (have ${have})`, left);
    }
  }
}

/**
 * Calls `check` (sync or async) every `every` ms until it returns a truthy
 * value, which it resolves with; rejects after `ms` naming `what` (a string,
 * or a function called then, for a message with the last state). A thrown
 * error counts as "not yet". Polls a condition; never a sleep standing in
 * for one.
 */
export async function poll(check, what, ms = 5000, every = 100) {
  const deadline = Date.now() + ms;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const name = typeof what === "function" ? await what() : what;
      const why = lastError ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${ms} ms waiting for ${name}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(every, Math.max(0, deadline - Date.now()))));
  }
}
