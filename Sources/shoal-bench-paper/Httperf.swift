import Foundation
import ShoalTesting

/// One httperf run at a fixed rate, a new connection per request (`--num-calls 1`), as the paper
/// measured; what it printed, parsed.
struct HttperfResult: Sendable {
    var connections = 0
    var replies = 0
    var status2xx = 0
    var errors = 0
    var timeouts = 0
    /// "Connection time [ms]: avg": connect + request + whole reply, per connection (one call
    /// each): the response time a client sees. Successful connections only.
    var connectionAvg: Double?
    var connectionMedian: Double?
    var connect: Double?
    /// "Reply time [ms]: response" (first byte) and "transfer" (the rest of the body).
    var response: Double?
    var transfer: Double?
    var requestRate: Double?
    var duration: Double?

    /// Every request answered 2xx and none failed.
    var clean: Bool { errors == 0 && status2xx == connections }
}

enum Httperf {
    static let executable = URL(fileURLWithPath: "/usr/bin/httperf")

    /// Runs httperf against 127.0.0.1:`port` for `uri` at `rate` requests/s, `count` connections
    /// of one request each; bounded by httperf's own `--timeout` and a kill behind it.
    static func run(port: Int, uri: String, rate: Double, count: Int, timeout: Int = 10) throws -> HttperfResult {
        let arguments = [
            "--hog", "--server", "127.0.0.1", "--port", "\(port)", "--uri", uri,
            "--rate", String(format: "%g", rate), "--num-conns", "\(count)", "--num-calls", "1",
            "--timeout", "\(timeout)",
        ]
        let bound = Double(count) / rate + Double(timeout) + 15
        let output = try ProcessRunner.run(executable, arguments, timeout: bound)
        guard output.status == 0 else {
            throw BenchError("httperf \(arguments.joined(separator: " ")) failed (\(output.status)): \(output.stderr)\(output.stdout)")
        }
        return parse(output.stdout)
    }

    static func parse(_ text: String) -> HttperfResult {
        var result = HttperfResult()
        for line in text.split(separator: "\n").map(String.init) {
            let fields = line.split(separator: " ").map(String.init)
            func value(after key: String) -> Double? {
                fields.firstIndex(of: key).flatMap { $0 + 1 < fields.count ? Double(fields[$0 + 1]) : nil }
                    .flatMap { $0.isFinite ? $0 : nil }
            }
            if line.hasPrefix("Total: connections") {
                result.connections = Int(value(after: "connections") ?? 0)
                result.replies = Int(value(after: "replies") ?? 0)
                result.duration = value(after: "test-duration")
            } else if line.hasPrefix("Connection time [ms]: min") {
                result.connectionAvg = value(after: "avg")
                result.connectionMedian = value(after: "median")
            } else if line.hasPrefix("Connection time [ms]: connect") {
                result.connect = value(after: "connect")
            } else if line.hasPrefix("Reply time [ms]: response") {
                result.response = value(after: "response")
                result.transfer = value(after: "transfer")
            } else if line.hasPrefix("Reply status:") {
                result.status2xx = fields.first { $0.hasPrefix("2xx=") }.flatMap { Int($0.dropFirst(4)) } ?? 0
            } else if line.hasPrefix("Errors: total") {
                result.errors = Int(value(after: "total") ?? 0)
                result.timeouts = Int(value(after: "client-timo") ?? 0)
            } else if line.hasPrefix("Request rate:") {
                result.requestRate = value(after: "rate:")
            }
        }
        return result
    }
}

/// One GET with curl (bounded): the value of the member header, or nil if it failed.
func probe(port: Int, uri: String, timeout: Int = 30) -> String? {
    guard let output = try? ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), [
        "-s", "-o", "/dev/null", "-D", "-", "--max-time", "\(timeout)", "http://127.0.0.1:\(port)\(uri)",
    ], timeout: Double(timeout) + 5), output.status == 0 else { return nil }
    let lines = output.stdout.split(whereSeparator: \.isNewline)
    guard lines.first?.contains(" 200") == true else { return nil }
    let prefix = memberHeader.lowercased() + ":"
    return lines.first { $0.lowercased().hasPrefix(prefix) }
        .map { $0.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces) } ?? ""
}
