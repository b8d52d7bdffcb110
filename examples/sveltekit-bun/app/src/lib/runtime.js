// Which runtime serves: Bun sets globalThis.Bun, Node does not.
export function runtime() {
  return typeof globalThis.Bun === 'undefined' ? `node ${process.versions.node}` : `bun ${globalThis.Bun.version}`;
}

// Chosen once per process: in a container every run is PID 1, so this is what
// tells two runs apart.
export const instance = Math.random().toString(16).slice(2, 10);
