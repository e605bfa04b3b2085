/// The paper's three experiments: what is measured, over which paths, and the paper's own figures.

/// A way a request reaches the service.
enum PathKind: String, CaseIterable, Sendable {
    /// httperf → shoal-webserver.
    case direct
    /// httperf → nginx → the same shoal-webserver (a reference reverse proxy).
    case nginx
    /// httperf → shoal frontend → its local instance (the paper's "Master": no back-end).
    case frontend = "fe"
    /// httperf → shoal frontend → worker on a back-end → its instance, with 1, 2 or 3 back-ends leased.
    case backends1 = "be1"
    case backends2 = "be2"
    case backends3 = "be3"

    var backends: Int? {
        switch self {
        case .direct, .nginx: nil
        case .frontend: 0
        case .backends1: 1
        case .backends2: 2
        case .backends3: 3
        }
    }

    var label: String {
        switch self {
        case .direct: "direct"
        case .nginx: "nginx"
        case .frontend: "FE alone"
        case .backends1: "1 back-end"
        case .backends2: "2 back-ends"
        case .backends3: "3 back-ends"
        }
    }
}

/// One measurement point of a table: a rate, a document size, work per request.
struct Point: Sendable {
    var x: Int
    var rate: Double
    var size: Int
    /// How long each request holds its service instance before the answer (`delay_ms`). With an
    /// instance concurrency of 1 this is the paper's per-request CPU work on a machine of its
    /// own: burning it on this machine's 2 shared cores instead would cap every column at
    /// 2 cores' worth (under 200 requests/s), whatever the number of back-ends.
    var workMs: Int

    var uri: String { "/doc?size=\(size)" + (workMs > 0 ? "&delay_ms=\(workMs)" : "") }
}

struct Experiment: Sendable {
    var id: String
    var title: String
    var xLabel: String
    var paths: [PathKind]
    var points: [Point]
    /// Requests one service instance processes at once (the webserver's and the manifest's):
    /// 1 makes an instance behave like one of the paper's small machines.
    var concurrency: Int
    /// The paper's mean response times (ms) by x, by path (its "Only Master" is `direct`, its
    /// "Master" the front-end alone, its "N' Slave" N back-ends).
    var paper: [Int: [PathKind: Double]]

    static func all(table2Rate: Double) -> [Experiment] {
        [
            Experiment(
                id: "table1", title: "Table 1: 1 KB documents, rate 100–300 requests/s", xLabel: "rate (requests/s)",
                paths: [.direct, .nginx, .frontend, .backends1, .backends2, .backends3],
                points: [100, 150, 200, 250, 300].map { Point(x: $0, rate: Double($0), size: 1024, workMs: 0) },
                concurrency: 256,
                paper: [
                    100: [.direct: 0.8, .frontend: 1.2, .backends1: 5.5, .backends2: 5.5, .backends3: 5.4],
                    150: [.direct: 0.7, .frontend: 1.1, .backends1: 5.4, .backends2: 5.6, .backends3: 5.4],
                    200: [.direct: 0.7, .frontend: 1.1, .backends1: 5.5, .backends2: 5.6, .backends3: 5.3],
                    250: [.direct: 0.7, .frontend: 1.2, .backends1: 5.3, .backends2: 5.3, .backends3: 5.5],
                    300: [.direct: 0.7, .frontend: 1.2, .backends1: 5.6, .backends2: 5.4, .backends3: 5.5],
                ]),
            Experiment(
                id: "table2", title: "Table 2: 10–500 KB documents at \(Int(table2Rate)) requests/s (the paper: 1 request/s)",
                xLabel: "document size (KB)",
                paths: [.direct, .nginx, .frontend, .backends1, .backends2, .backends3],
                points: [10, 100, 200, 300, 400, 500].map { Point(x: $0, rate: table2Rate, size: $0 * 1024, workMs: 0) },
                concurrency: 256,
                paper: [
                    10: [.direct: 0.7, .frontend: 2.0, .backends1: 9.5, .backends2: 9.9, .backends3: 8.1],
                    100: [.direct: 0.8, .frontend: 1.8, .backends1: 15.9, .backends2: 16.2, .backends3: 16.4],
                    200: [.direct: 0.7, .frontend: 2.7, .backends1: 15.7, .backends2: 17.3, .backends3: 17.5],
                    300: [.direct: 0.7, .frontend: 2.9, .backends1: 15.0, .backends2: 16.1, .backends3: 15.4],
                    400: [.direct: 0.7, .frontend: 3.3, .backends1: 30.6, .backends2: 27.3, .backends3: 34.2],
                    500: [.direct: 0.7, .frontend: 2.4, .backends1: 655.5, .backends2: 549.1, .backends3: 488.1],
                ]),
            Experiment(
                id: "table3", title: "Table 3: 1 KB documents after 10 ms of work each, rate 1–250 requests/s, one request at a time per instance",
                xLabel: "rate (requests/s)",
                paths: [.direct, .nginx, .frontend, .backends3],
                points: [1, 50, 80, 100, 150, 200, 250].map { Point(x: $0, rate: Double($0), size: 1024, workMs: 10) },
                concurrency: 1,
                paper: [
                    1: [.frontend: 11.0, .backends3: 16.7],
                    50: [.frontend: 12.2, .backends3: 15.6],
                    80: [.frontend: 48.7, .backends3: 15.9],
                    100: [.frontend: 100.8, .backends3: 16.1],
                    150: [.frontend: 163.5, .backends3: 16.7],
                    200: [.frontend: 204.2, .backends3: 81.6],
                    250: [.frontend: 292.3, .backends3: 117.2],
                ]),
        ]
    }
}
