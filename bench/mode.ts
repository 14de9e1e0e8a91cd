// How much the benchmark measures: the full run whose figures BENCHMARKS.md holds, or a quick smoke run.

export interface BenchMode {
    name: "full" | "quick";
    /** Every measurement is repeated this often, side by side with the others; tables give medians. */
    repetitions: number;
    concurrencies: number[];
    /** Recorded requests per run, and warm-up requests before them, by concurrency. */
    requests: Record<number, number>;
    warmup: Record<number, number>;
    /** No run issues requests for longer than this. */
    maxSeconds: number;
    /** Streamed requests per run, by concurrency; each streams `streamTokens` tokens at each of `streamPaces` (tokens/s). */
    streams: Record<number, number>;
    streamTokens: number;
    streamPaces: number[];
    /** Replica counts N whose N→N+1 step is measured (at the maximum, N-1→N). */
    scalingFrom: number[];
    /** Previews and up/down rounds per N: each costs a whole program run. */
    scalingRepetitions: number;
    /** Fresh sandboxes brought to their first answer. */
    timeToServeRepetitions: number;
}

export const fullMode: BenchMode = {
    name: "full",
    repetitions: 5,
    concurrencies: [1, 16, 64],
    requests: { 1: 1000, 16: 3000, 64: 4000 },
    warmup: { 1: 50, 16: 300, 64: 640 },
    maxSeconds: 30,
    streams: { 1: 10, 16: 32 },
    streamTokens: 16,
    streamPaces: [20, 100],
    scalingFrom: [1, 8, 32, 64],
    scalingRepetitions: 3,
    timeToServeRepetitions: 3,
};

export const quickMode: BenchMode = {
    name: "quick",
    repetitions: 3,
    concurrencies: [1, 16, 64],
    requests: { 1: 100, 16: 300, 64: 400 },
    warmup: { 1: 10, 16: 32, 64: 128 },
    maxSeconds: 10,
    streams: { 1: 3, 16: 16 },
    streamTokens: 8,
    streamPaces: [20, 100],
    scalingFrom: [1, 2],
    scalingRepetitions: 1,
    timeToServeRepetitions: 1,
};
