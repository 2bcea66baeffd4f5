/**
 * Node flags every runner process runs with: core's pool, the tests' child runners and the runner
 * image's command (infra/docker/runner.Dockerfile, which repeats them).
 *
 * A 1 MB young generation (V8's default grows to 16 MB per semi-space) takes ~18 MB off an idle
 * runner's private memory, and memory is what decides how many repls a machine holds; the extra
 * scavenges cost little on a runner, whose hot paths (PTY output, file reads) move buffers outside
 * the JS heap.
 */
export const runnerNodeFlags = ["--max-semi-space-size=1"];
