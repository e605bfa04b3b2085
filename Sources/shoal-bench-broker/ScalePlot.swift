import Foundation
import ShoalTesting

/// The scale curve as an SVG of small charts (x: hosts in the pool; a line per service count),
/// and a PNG of it rendered by headless Chromium — no plotting library needed.
struct ScalePlot {
    var result: ScaleBenchmark.Result

    struct Series {
        var name: String
        var color: String
        var dashed = false
        var points: [(x: Double, y: Double)]
    }

    struct Panel {
        var title: String
        var series: [Series]
    }

    static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    static let width = 460.0, height = 300.0, columns = 2

    /// Writes `png` and the SVG beside it (same name, `.svg`).
    func write(png: String) async throws {
        let svgPath = String(png.dropLast(4)) + ".svg"
        try svg().write(toFile: svgPath, atomically: true, encoding: .utf8)
        guard let chromium = HeadlessChromium.find() else {
            throw BenchError("no Chromium to render \(svgPath) as \(png) (`make setup` installs it); the SVG is written")
        }
        let size = dimensions
        _ = try await chromium.dumpDOM(URL(fileURLWithPath: svgPath).absoluteString, virtualTimeBudget: .milliseconds(100),
                                       screenshot: URL(fileURLWithPath: png).path, width: Int(size.width), height: Int(size.height))
    }

    var panels: [Panel] {
        let serviceCounts = Array(Set(result.sizes.map(\.services))).sorted()
        func perServices(_ title: String, _ lines: [(String, Bool, (ScaleBenchmark.Size) -> Double)]) -> Panel {
            var series: [Series] = []
            for (index, services) in serviceCounts.enumerated() {
                let sizes = result.sizes.filter { $0.services == services }.sorted { $0.hosts < $1.hosts }
                for (label, dashed, figure) in lines {
                    series.append(Series(name: "\(services) services\(label)", color: Self.colors[index % Self.colors.count],
                                         dashed: dashed, points: sizes.map { (Double($0.hosts), figure($0)) }))
                }
            }
            return Panel(title: title, series: series)
        }
        var panels = [
            perServices("grant over HTTP, ms (p50 solid, p99 dashed)",
                        [("", false, { $0.grant.p50 }), (" p99", true, { $0.grant.p99 })]),
            perServices("arbitration per decision (core), µs p50", [("", false, { $0.arbitrationMicroseconds.p50 })]),
            perServices("CPU per acquire+release+heartbeat, ms", [("", false, { $0.cpuMillisecondsPerCycle })]),
            perServices("GET /v1/leases (solid), status page (dashed), ms p50",
                        [("", false, { $0.listLeases.p50 }), (" page", true, { $0.statusPage.p50 })]),
        ]
        if !result.poolStarts.isEmpty {
            let starts = result.poolStarts.sorted { $0.hosts < $1.hosts }
            panels.append(Panel(title: "pool start: broker started → all hosts up, s", series: [
                Series(name: "pool", color: Self.colors[3], points: starts.map { (Double($0.hosts), $0.poolSeconds) }),
            ]))
            panels.append(Panel(title: "RSS once the pool is up, MiB: broker (solid), all pvmds (dashed)", series: [
                Series(name: "broker", color: Self.colors[4], points: starts.map { (Double($0.hosts), $0.brokerRSSMiB) }),
                Series(name: "pvmds", color: Self.colors[5], dashed: true, points: starts.map { (Double($0.hosts), $0.pvmdRSSMiB) }),
            ]))
        }
        return panels
    }

    var dimensions: (width: Double, height: Double) {
        let rows = (panels.count + Self.columns - 1) / Self.columns
        return (Self.width * Double(Self.columns), Self.height * Double(rows) + 40)
    }

    func svg() -> String {
        let size = dimensions
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(size.width))" height="\(Int(size.height))" \
            font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(size.width / 2)" y="22" text-anchor="middle" font-size="14">Shoal scale curve, \
            \(result.slotsPerHost) slots per host (x: hosts in the pool; a colour per service count: \
            \(legend))</text>

            """
        for (index, panel) in panels.enumerated() {
            let originX = Double(index % Self.columns) * Self.width
            let originY = 40 + Double(index / Self.columns) * Self.height
            out += chart(panel, x: originX, y: originY)
        }
        return out + "</svg>\n"
    }

    private var legend: String {
        Array(Set(result.sizes.map(\.services))).sorted().enumerated()
            .map { "<tspan fill=\"\(Self.colors[$0.offset % Self.colors.count])\">\($0.element) services</tspan>" }
            .joined(separator: ", ")
    }

    private func chart(_ panel: Panel, x originX: Double, y originY: Double) -> String {
        let left = originX + 55, right = originX + Self.width - 35, top = originY + 30, bottom = originY + Self.height - 40
        let allPoints = panel.series.flatMap(\.points)
        let maxX = max(1, allPoints.map(\.x).max() ?? 1)
        let maxY = Self.niceCeiling(allPoints.map(\.y).max() ?? 1)
        func px(_ value: Double) -> Double { left + value / maxX * (right - left) }
        func py(_ value: Double) -> Double { bottom - value / maxY * (bottom - top) }
        var out = "<text x=\"\(originX + Self.width / 2)\" y=\"\(originY + 18)\" text-anchor=\"middle\" font-size=\"12\">"
            + Self.escape(panel.title) + "</text>\n"
        out += "<line x1=\"\(left)\" y1=\"\(bottom)\" x2=\"\(right)\" y2=\"\(bottom)\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(bottom)\" stroke=\"black\"/>\n"
        for step in 0...4 {
            let value = maxY * Double(step) / 4
            out += "<line x1=\"\(left)\" y1=\"\(py(value))\" x2=\"\(right)\" y2=\"\(py(value))\" stroke=\"#ddd\"/>\n"
            out += "<text x=\"\(left - 5)\" y=\"\(py(value) + 4)\" text-anchor=\"end\">\(Self.label(value))</text>\n"
        }
        for tick in Set(allPoints.map(\.x)).sorted() {
            out += "<text x=\"\(px(tick))\" y=\"\(bottom + 15)\" text-anchor=\"middle\">\(Int(tick))</text>\n"
        }
        out += "<text x=\"\((left + right) / 2)\" y=\"\(bottom + 30)\" text-anchor=\"middle\">hosts</text>\n"
        for series in panel.series where !series.points.isEmpty {
            let path = series.points.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(series.color)\" stroke-width=\"2\"\(series.dashed ? " stroke-dasharray=\"5,4\"" : "") points=\"\(path)\"/>\n"
            for point in series.points {
                out += "<circle cx=\"\(px(point.x))\" cy=\"\(py(point.y))\" r=\"3\" fill=\"\(series.color)\"><title>"
                    + Self.escape("\(series.name): \(Int(point.x)) hosts, \(Self.label(point.y))") + "</title></circle>\n"
            }
        }
        return out
    }

    /// 1, 2 or 5 × a power of ten at or above `value`, so the axis' labels are round.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let power = pow(10, floor(log10(value)))
        return [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= value } ?? 10 * power
    }

    static func label(_ value: Double) -> String {
        value == 0 ? "0" : value >= 100 ? String(format: "%.0f", value) : value >= 1 ? String(format: "%.1f", value)
            : String(format: "%.3g", value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
