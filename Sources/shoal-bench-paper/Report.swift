import Foundation

/// One measured point: a table's x (rate or size in KB) on one path.
struct Row: Sendable {
    var table: String
    var x: Int
    var path: String
    var rate: Double
    var size: Int
    var workMs: Int
    var connections: Int
    var replies: Int
    var status2xx: Int
    var errors: Int
    var timeouts: Int
    var mean: Double?
    var median: Double?
    var connect: Double?
    var response: Double?
    var transfer: Double?
    var requestRate: Double?
    var run: String
    var load: Double
    /// httperf runs of this point; this row is the one with the median mean.
    var rounds = 1

    static let header = "table,x,path,rate,size_bytes,work_ms,connections,replies,status_2xx,errors,timeouts,"
        + "mean_ms,median_ms,connect_ms,first_byte_ms,transfer_ms,request_rate,run,load_average,rounds"

    init(table: String, x: Int, path: PathKind, point: Point, result: HttperfResult, run: String, load: Double) {
        self.table = table
        self.x = x
        self.path = path.rawValue
        rate = point.rate
        size = point.size
        workMs = point.workMs
        connections = result.connections
        replies = result.replies
        status2xx = result.status2xx
        errors = result.errors
        timeouts = result.timeouts
        mean = result.connectionAvg
        median = result.connectionMedian
        connect = result.connect
        response = result.response
        transfer = result.transfer
        requestRate = result.requestRate
        self.run = run
        self.load = load
    }

    init?(csv line: Substring) {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard f.count == 19 || f.count == 20, let x = Int(f[1]), f[0] != "table" else { return nil }
        table = f[0]
        self.x = x
        path = f[2]
        rate = Double(f[3]) ?? 0
        size = Int(f[4]) ?? 0
        workMs = Int(f[5]) ?? 0
        connections = Int(f[6]) ?? 0
        replies = Int(f[7]) ?? 0
        status2xx = Int(f[8]) ?? 0
        errors = Int(f[9]) ?? 0
        timeouts = Int(f[10]) ?? 0
        mean = Double(f[11])
        median = Double(f[12])
        connect = Double(f[13])
        response = Double(f[14])
        transfer = Double(f[15])
        requestRate = Double(f[16])
        run = f[17]
        load = Double(f[18]) ?? 0
        rounds = f.count > 19 ? Int(f[19]) ?? 1 : 1
    }

    var csv: String {
        func d(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "" }
        return [table, "\(x)", path, String(format: "%g", rate), "\(size)", "\(workMs)", "\(connections)", "\(replies)",
                "\(status2xx)", "\(errors)", "\(timeouts)", d(mean), d(median), d(connect), d(response), d(transfer),
                d(requestRate), run, String(format: "%.2f", load), "\(rounds)"].joined(separator: ",")
    }

    var clean: Bool { errors == 0 && status2xx == connections && connections > 0 }
}

/// Merges this run's rows into the CSV (a table measured now replaces that table's old rows) and
/// rewrites the generated sections of `benchmarks.md` from the whole CSV.
struct Report {
    var csvPath: String
    var markdownPath: String

    func write(newRows: [Row], experiments: [Experiment], pool: String) throws {
        let measured = Set(newRows.map(\.table))
        let old = ((try? String(contentsOfFile: csvPath, encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { Row(csv: $0) }.filter { !measured.contains($0.table) }
        let rows = (old + newRows).sorted { ($0.table, $0.x) < ($1.table, $1.x) }
        try ([Row.header] + rows.map(\.csv)).joined(separator: "\n").appending("\n")
            .write(toFile: csvPath, atomically: true, encoding: .utf8)
        say("\nwrote \(csvPath)")

        var sections: [String: String] = [:]
        for experiment in experiments {
            let tableRows = rows.filter { $0.table == experiment.id }
            guard !tableRows.isEmpty else { continue }
            sections[experiment.id] = table(experiment, tableRows, pool: pool)
        }
        sections["targets"] = targets(rows)
        for key in sections.keys.sorted() { say("\n" + sections[key]!) }

        guard var document = try? String(contentsOfFile: markdownPath, encoding: .utf8) else {
            say("no \(markdownPath): the tables above were not written into it")
            return
        }
        for (key, text) in sections {
            let begin = "<!-- bench-paper:\(key):begin -->", end = "<!-- bench-paper:\(key):end -->"
            guard let start = document.range(of: begin), let stop = document.range(of: end), start.upperBound <= stop.lowerBound else {
                say("warning: \(markdownPath) has no \(begin) … \(end) markers; section \(key) not written")
                continue
            }
            document.replaceSubrange(start.upperBound..<stop.lowerBound, with: "\n" + text + "\n")
        }
        try document.write(toFile: markdownPath, atomically: true, encoding: .utf8)
        say("updated \(markdownPath)")
    }

    private func table(_ experiment: Experiment, _ rows: [Row], pool: String) -> String {
        let paths = experiment.paths
        let xs = Array(Set(rows.map(\.x))).sorted()
        func row(_ x: Int, _ path: PathKind) -> Row? { rows.first { $0.x == x && $0.path == path.rawValue } }
        let first = rows[0]
        let fixedRate = Set(rows.map(\.rate)).count == 1 ? String(format: "%g requests/s, ", first.rate) : ""
        // The fastest point's length: slower ones send at least 20 requests, so they may last longer.
        let fastest = rows.max { $0.rate < $1.rate }!
        let seconds = String(format: "%g", (Double(fastest.connections) / fastest.rate).rounded())
        var lines = ["Run \(first.run), load average \(String(format: "%.2f", first.load)) at its start; \(fixedRate)"
            + "\(seconds) s per point\(first.rounds > 1 ? ", the median of \(first.rounds) runs" : ""); pool: \(pool). Mean response time in ms (httperf's connection time: "
            + "connect + request + whole reply), and × direct's.", ""]
        lines.append("| \(experiment.xLabel) | " + paths.map(\.label).joined(separator: " | ") + " |")
        lines.append("|---:|" + paths.map { _ in "---:" }.joined(separator: "|") + "|")
        var failures: [String] = []
        for x in xs {
            let direct = row(x, .direct)?.mean
            var cells = ["\(x)"]
            for path in paths {
                guard let r = row(x, path), let mean = r.mean else { cells.append("—"); continue }
                var cell = format(mean)
                if path != .direct, let direct, direct > 0 { cell += " (\(String(format: "%.2f", mean / direct))×)" }
                if !r.clean {
                    cell += " ⚠"
                    failures.append("\(path.label) at \(x): \(r.status2xx) of \(r.connections) answered 2xx, "
                        + "\(r.errors) errors (\(r.timeouts) timed out)")
                }
                cells.append(cell)
            }
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        lines.append(failures.isEmpty ? "Every request answered 200." : "⚠ Not every request answered 200 (the mean covers those that did): "
            + failures.joined(separator: "; ") + ".")
        lines.append("")
        lines.append("The paper's figures (ms, and × its direct where it has one):")
        lines.append("")
        let paperPaths = paths.filter { $0 != .nginx }
        lines.append("| \(experiment.xLabel) | " + paperPaths.map(\.label).joined(separator: " | ") + " |")
        lines.append("|---:|" + paperPaths.map { _ in "---:" }.joined(separator: "|") + "|")
        for x in experiment.paper.keys.sorted() {
            let figures = experiment.paper[x]!
            let direct = figures[.direct]
            lines.append("| \(x) | " + paperPaths.map { path in
                guard let value = figures[path] else { return "—" }
                if path != .direct, let direct { return "\(value) (\(String(format: "%.1f", value / direct))×)" }
                return "\(value)"
            }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    private func format(_ value: Double) -> String {
        value < 10 ? String(format: "%.2f", value) : value < 100 ? String(format: "%.1f", value) : String(format: "%.0f", value)
    }

    /// The issue's targets, each marked from the CSV's figures.
    private func targets(_ rows: [Row]) -> String {
        func row(_ table: String, _ x: Int, _ path: PathKind) -> Row? {
            rows.first { $0.table == table && $0.x == x && $0.path == path.rawValue }
        }
        func mark(_ ok: Bool) -> String { ok ? "met" : "**not met**" }
        var lines = ["| target | this run | verdict |", "|---|---|---|"]
        let shoal: [PathKind] = [.frontend, .backends1, .backends2, .backends3]
        let t1 = rows.filter { $0.table == "table1" }
        if !t1.isEmpty {
            var worst: [String] = []
            var ok = true
            for path in shoal {
                let adds = Set(t1.map(\.x)).sorted().compactMap { x -> Double? in
                    guard let r = row("table1", x, path), let m = r.mean, let d = row("table1", x, .direct)?.mean else { return nil }
                    if !r.clean { ok = false }
                    return m - d
                }
                guard let max = adds.max() else { ok = false; continue }
                if max > 0.2 { ok = false }
                worst.append("\(path.label) +\(String(format: "%.2f", max)) ms")
            }
            lines.append("| Table 1: through Shoal within 0.2 ms of direct at every rate (paper: +0.4 ms FE alone, +4.7 ms with back-ends) "
                + "| largest addition over direct: \(worst.joined(separator: ", ")) | \(mark(ok)) |")
        }
        if let d = row("table2", 500, .direct)?.mean {
            var parts: [String] = []
            var ok = true
            for path in shoal {
                guard let r = row("table2", 500, path), let m = r.mean else { ok = false; continue }
                if m > 1.5 * d || !r.clean { ok = false }
                parts.append("\(path.label) \(String(format: "%.2f", m / d))×")
            }
            let n = row("table2", 500, .nginx)?.mean.map { String(format: "%.2f", $0 / d) } ?? "—"
            lines.append("| Table 2: 500 KB within 1.5× of direct (paper: 700×) | \(parts.joined(separator: ", ")) (nginx \(n)×) | \(mark(ok)) |")
        }
        if let r = row("table3", 250, .backends3), let m = r.mean {
            lines.append("| Table 3: 3 back-ends under 15 ms mean at 250 requests/s (paper: 117 ms) | \(format(m)) ms"
                + (r.clean ? "" : ", \(r.connections - r.status2xx) of \(r.connections) not answered 200") + " | \(mark(m < 15 && r.clean)) |")
        }
        if let b = row("table3", 1, .backends3)?.mean, let f = row("table3", 1, .frontend)?.mean {
            lines.append("| Table 3: 3 back-ends within 1 ms of the front-end alone at 1 request/s (paper: +5.7 ms) | "
                + "\(format(b)) vs \(format(f)) ms (\(String(format: "%+.2f", b - f)) ms) | \(mark(abs(b - f) <= 1)) |")
        }
        return lines.joined(separator: "\n")
    }
}
