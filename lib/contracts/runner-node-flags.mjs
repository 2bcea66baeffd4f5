/**
 * Node flags every runner process runs with: core's pool, the tests' child runners and the runner
 * image's command (infra/docker/runner.Dockerfile, which repeats them).
 *
 * Memory is what decides how many repls a machine holds. A 1 MB young generation (V8's default grows
 * to 16 MB per semi-space) takes ~18 MB off an idle runner's private memory, and V8's
 * --optimize-for-size (tighter heap growth, less kept code) ~6 MB more: 28 MB instead of 52. Neither
 * slowed terminal output (the runner's hot path moves buffers outside the JS heap): 26 MB/s and
 * 24 CPU s/GB with both, 19 MB/s and 30 s/GB without, over the WebSocket bridge on 2 cores. The
 * price is ~50 ms more for a fresh process to answer (525 against 470 ms), which the warm pool hides.
 * One V8 worker thread instead of Node's four (--v8-pool-size=1): ~4 MB less private memory (their
 * stacks and malloc arenas), the same start, and terminal output within noise (20.1 against 20.6
 * MB/s, 22.6 against 21.0 CPU s/GB, 100 MB through a standalone runner, interleaved rounds).
 *
 * Plain JavaScript because scripts/build.mjs reads them too: V8 accepts the runner's code cache only
 * from a process whose flags match the ones it was made with (--optimize-for-size is one that counts).
 */
export const runnerNodeFlags = ["--max-semi-space-size=1", "--optimize-for-size", "--v8-pool-size=1"];
