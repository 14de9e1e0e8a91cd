// The arithmetic of the benchmark: percentiles of one run, medians over runs, ratios. Pure functions.

/** The p-th percentile (0-100) by nearest rank: a value that was measured, never an interpolation. */
export function percentile(values: readonly number[], p: number): number {
    if (values.length === 0) {
        return NaN;
    }
    if (!(p >= 0 && p <= 100)) {
        throw new RangeError(`percentile ${p} is outside 0..100`);
    }
    const sorted = [...values].sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The median of several runs (the mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
    const finite = values.filter((v) => Number.isFinite(v));
    if (finite.length === 0) {
        return NaN;
    }
    const sorted = [...finite].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `a / b`, NaN when b is 0 or either is not a number: a ratio over nothing is no figure. */
export function ratio(a: number, b: number): number {
    return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}

/** One run of the load generator, summarised: latencies in milliseconds. */
export interface RunSummary {
    requests: number;
    seconds: number;
    requestsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
}

/** Summarises one run from its latencies (microseconds) and its measured duration. */
export function summarize(latenciesUs: readonly number[], seconds: number): RunSummary {
    return {
        requests: latenciesUs.length,
        seconds,
        requestsPerSecond: ratio(latenciesUs.length, seconds),
        p50Ms: percentile(latenciesUs, 50) / 1000,
        p99Ms: percentile(latenciesUs, 99) / 1000,
    };
}

/** Runs side by side: the median of each figure, and of each run's ratio to its baseline run (same repetition). */
export function medianOfRatios(pairs: readonly { value: number; baseline: number }[]): number {
    return median(pairs.map((p) => ratio(p.value, p.baseline)));
}

/** Formats a number for a table: `digits` after the point, "–" for no figure. */
export function fmt(value: number, digits = 2): string {
    return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

/** A ratio as a percentage ("37%"), "–" for none. */
export function pct(value: number): string {
    return Number.isFinite(value) ? `${Math.round(value * 100)}%` : "–";
}
