import { instance, runtime } from '$lib/runtime.js';

// GET /pid: one line for scripts. In the container the server is PID 1; the
// instance changes with every start.
export function GET() {
  return new Response(`pid=${process.pid} runtime=${runtime()} instance=${instance}\n`, {
    headers: { 'content-type': 'text/plain' }
  });
}
