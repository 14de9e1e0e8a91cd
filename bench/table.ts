// Tables as Markdown: the same text on the terminal and in BENCHMARKS.md. Pure.

export interface Table {
    headers: string[];
    rows: string[][];
    /** Per column: numbers read better right-aligned. Default: the first column left, the others right. */
    align?: ("left" | "right")[];
}

/** A Markdown table whose columns line up in plain text too. */
export function renderTable(table: Table): string {
    const columns = table.headers.length;
    for (const [i, row] of table.rows.entries()) {
        if (row.length !== columns) {
            throw new Error(`table row ${i} has ${row.length} cells, the header ${columns}: ${JSON.stringify(row)}`);
        }
    }
    const align = table.align ?? table.headers.map((_, i) => (i === 0 ? "left" : "right"));
    const cell = (text: string) => text.replace(/\|/g, "\\|");
    const widths = table.headers.map((h, i) => Math.max(3, cell(h).length, ...table.rows.map((r) => cell(r[i]).length)));
    const line = (cells: string[]) =>
        `| ${cells.map((c, i) => (align[i] === "right" ? cell(c).padStart(widths[i]) : cell(c).padEnd(widths[i]))).join(" | ")} |`;
    const rule = `| ${widths.map((w, i) => (align[i] === "right" ? `${"-".repeat(w - 1)}:` : "-".repeat(w))).join(" | ")} |`;
    return [line(table.headers), rule, ...table.rows.map(line)].join("\n");
}
