import { runtime } from '$lib/runtime.js';

export function load() {
  return { pid: process.pid, runtime: runtime() };
}
