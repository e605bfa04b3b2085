/// What `shoal broker` and `shoal frontend` print once they serve — their one ready line — read
/// back by whatever started them (tests, the demo, the benchmarks).
public enum ReadyLine {
    /// `http(s)://HOST:PORT` from `shoal broker listening on http://HOST:PORT (...)` (or any
    /// line that names the broker's URL, like `shoal up`'s).
    public static func brokerURL(_ line: String) -> String? {
        line.split(separator: " ").first { $0.hasPrefix("http://") || $0.hasPrefix("https://") }.map(String.init)
    }

    public struct Frontend: Sendable, Hashable {
        public var name: String
        public var port: Int
        /// The front-end's local service instance (its child), which outlives a SIGKILLed front-end.
        public var instancePID: Int32?
        /// Its admin listener's `http://HOST:PORT/metrics`.
        public var metricsURL: String?

        public init(name: String, port: Int, instancePID: Int32?, metricsURL: String? = nil) {
            self.name = name
            self.port = port
            self.instancePID = instancePID
            self.metricsURL = metricsURL
        }
    }

    /// From `shoal frontend NAME listening on HOST:PORT (local instance pid N on ..., metrics URL)`.
    public static func frontend(_ line: String) -> Frontend? {
        let words = line.split(separator: " ")
        func after(_ word: Substring) -> Substring? {
            words.firstIndex(of: word).flatMap { $0 + 1 < words.endIndex ? words[$0 + 1] : nil }
        }
        guard words.count > 2, words[0] == "shoal", words[1] == "frontend",
              let port = after("on")?.split(separator: ":").last.flatMap({ Int($0) }) else { return nil }
        let metrics = after("metrics").map { $0.hasSuffix(")") ? $0.dropLast() : $0 }.map(String.init)
        return Frontend(name: String(words[2]), port: port, instancePID: after("pid").flatMap { Int32($0) },
                        metricsURL: metrics?.hasPrefix("http://") == true ? metrics : nil)
    }
}
