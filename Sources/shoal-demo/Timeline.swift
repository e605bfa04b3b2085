import Foundation
import ShoalTesting

/// What the demo saw each second, per service; written as CSV and drawn as a timeline (SVG,
/// rendered to PNG by headless Chromium).
struct Timeline {
    struct Point {
        var connections: Int
        var served: Int
        var failed: Int
        var p50: Double?
        var p99: Double?
        /// Leases holding a slot: granted, active or draining.
        var backends: Int
    }

    struct Second {
        var at: Int
        var services: [String: Point]
    }

    var services: [String]
    var poolSize: Int
    var seconds: [Second] = []

    /// Each service its own colour, whatever the order; others from the rest.
    static let named = ["a": "#1f77b4", "b": "#ff7f0e", "c": "#2ca02c", "master2": "#d62728"]
    static let others = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    var csv: String {
        var lines = ["second,service,connections,served,failed,p50_ms,p99_ms,backends"]
        for second in seconds {
            for service in services {
                guard let point = second.services[service] else { continue }
                let p50 = point.p50.map { String(format: "%.1f", $0) } ?? ""
                let p99 = point.p99.map { String(format: "%.1f", $0) } ?? ""
                lines.append("\(second.at),\(service),\(point.connections),\(point.served),\(point.failed),\(p50),\(p99),\(point.backends)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static let width = 1200, height = 900

    /// Three panels over the same time axis: requests served per second and p99 latency (a line
    /// per service), and the pool's slots held (stacked, a band per service).
    var svg: String {
        let (left, right, top, panelHeight, gap) = (70.0, 150.0, 64.0, 220.0, 56.0)
        let plotWidth = Double(Self.width) - left - right
        let lastSecond = Double(max(1, seconds.last?.at ?? 1))
        func x(_ second: Int) -> Double { left + plotWidth * Double(second) / lastSecond }
        func colour(_ index: Int) -> String { Self.named[services[index]] ?? Self.others[index % Self.others.count] }

        var body: [String] = [
            ##"<rect width="100%" height="100%" fill="white"/>"##,
            ##"<text x="\##(left)" y="26" font-size="18" font-weight="bold">Shoal demo: \##(poolSize) back-ends shared by \##(services.count) services</text>"##,
        ]
        /// A panel's frame, its title and its value axis; the function that places a value.
        func panel(_ index: Int, title: String, ceiling: Double, ticks: [Double]) -> (Double) -> Double {
            let y0 = top + Double(index) * (panelHeight + gap)
            func y(_ value: Double) -> Double { y0 + panelHeight - panelHeight * min(value, ceiling) / ceiling }
            body.append(##"<text x="\##(left)" y="\##(y0 - 8)" font-size="14">\##(title)</text>"##)
            for value in ticks {
                body.append(##"<line x1="\##(left)" x2="\##(left + plotWidth)" y1="\##(y(value))" y2="\##(y(value))" stroke="#eee"/>"##)
                body.append(##"<text x="\##(left - 8)" y="\##(y(value) + 4)" font-size="11" text-anchor="end">\##(Int(value.rounded()))</text>"##)
            }
            body.append(##"<rect x="\##(left)" y="\##(y0)" width="\##(plotWidth)" height="\##(panelHeight)" fill="none" stroke="#999"/>"##)
            return y
        }
        let lines: [(title: String, value: (Point) -> Double?)] = [
            ("requests served per second", { Double($0.served) }),
            ("p99 latency (ms)", { $0.p99 }),
        ]
        for (index, line) in lines.enumerated() {
            let values = seconds.flatMap { second in services.compactMap { second.services[$0].flatMap(line.value) } }
            let ceiling = Self.roundUp(values.max() ?? 1)
            let y = panel(index, title: line.title, ceiling: ceiling, ticks: (0...4).map { ceiling * Double($0) / 4 })
            for (serviceIndex, service) in services.enumerated() {
                // A gap where the service answered nothing in a second (no latency to show).
                var runs: [[String]] = [[]]
                for second in seconds {
                    if let value = second.services[service].flatMap(line.value) {
                        runs[runs.count - 1].append("\(x(second.at)),\(y(value))")
                    } else if !runs[runs.count - 1].isEmpty {
                        runs.append([])
                    }
                }
                for run in runs where !run.isEmpty {
                    body.append(##"<polyline fill="none" stroke="\##(colour(serviceIndex))" stroke-width="2" points="\##(run.joined(separator: " "))"/>"##)
                }
            }
        }
        // Slots held, stacked: each service a band between the services before it and itself.
        let y = panel(2, title: "back-ends held (the pool: \(poolSize) slots)", ceiling: Double(poolSize),
                      ticks: (0...poolSize).map(Double.init))
        var below = Array(repeating: 0, count: seconds.count)
        for (serviceIndex, service) in services.enumerated() {
            let above = zip(below, seconds).map { $0 + ($1.services[service]?.backends ?? 0) }
            var outline: [String] = []
            for (i, second) in seconds.enumerated() {  // the top edge, left to right, as steps
                let (from, to) = (x(i == 0 ? 0 : seconds[i - 1].at), x(second.at))
                outline += ["\(from),\(y(Double(above[i])))", "\(to),\(y(Double(above[i])))"]
            }
            for (i, second) in seconds.enumerated().reversed() {  // the bottom edge, back
                let (from, to) = (x(i == 0 ? 0 : seconds[i - 1].at), x(second.at))
                outline += ["\(to),\(y(Double(below[i])))", "\(from),\(y(Double(below[i])))"]
            }
            body.append(##"<polygon fill="\##(colour(serviceIndex))" fill-opacity="0.75" stroke="none" points="\##(outline.joined(separator: " "))"/>"##)
            below = above
        }
        let axisY = top + 3 * panelHeight + 2 * gap
        for second in stride(from: 0, through: Int(lastSecond), by: 5) {
            body.append(##"<text x="\##(x(second))" y="\##(axisY + 18)" font-size="11" text-anchor="middle">\##(second)s</text>"##)
        }
        for (index, service) in services.enumerated() {
            let y = top + 20 + Double(index) * 24
            body.append(##"<line x1="\##(left + plotWidth + 20)" x2="\##(left + plotWidth + 50)" y1="\##(y)" y2="\##(y)" stroke="\##(colour(index))" stroke-width="4"/>"##)
            body.append(##"<text x="\##(left + plotWidth + 58)" y="\##(y + 5)" font-size="14">\##(service)</text>"##)
        }
        return ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Self.width)" height="\##(Self.height)" font-family="sans-serif">"##
            + "\n" + body.joined(separator: "\n") + "\n</svg>\n"
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`: a round top for an axis.
    static func roundUp(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let power = pow(10, floor(log10(value)))
        return [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= value } ?? 10 * power
    }

    /// Writes `timeline.csv`, `timeline.svg` and, where Chromium is installed, `timeline.png` into
    /// `directory`; the files written.
    func write(to directory: String) async throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let csvPath = directory + "/timeline.csv", svgPath = directory + "/timeline.svg", pngPath = directory + "/timeline.png"
        try csv.write(toFile: csvPath, atomically: true, encoding: .utf8)
        try svg.write(toFile: svgPath, atomically: true, encoding: .utf8)
        guard let chromium = HeadlessChromium.find() else { return [csvPath, svgPath] }
        _ = try await chromium.dumpDOM(URL(fileURLWithPath: svgPath).absoluteString, virtualTimeBudget: .milliseconds(100),
                                       screenshot: pngPath, width: Self.width, height: Self.height)
        return [csvPath, svgPath, pngPath]
    }
}
