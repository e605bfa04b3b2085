/// `GET /v1/history`: leases per service over the last minutes, sampled at a fixed interval —
/// what the status page draws. Kept in the broker's memory only (a restarted broker starts empty).
public struct LeaseHistoryView: Codable, Sendable, Hashable {
    /// One sample: at `time`, per service, the slots it held (granted, active or draining) and the
    /// requests it had waiting. Services holding and waiting for nothing are left out.
    public struct Sample: Codable, Sendable, Hashable {
        public var time: Int64
        public var held: [String: Int]
        public var waiting: [String: Int]

        public init(time: Int64, held: [String: Int] = [:], waiting: [String: Int] = [:]) {
            self.time = time
            self.held = held
            self.waiting = waiting
        }
    }

    /// Milliseconds between samples.
    public var intervalMilliseconds: Int64
    /// How far back the history reaches, at most (milliseconds).
    public var windowMilliseconds: Int64
    /// Oldest first.
    public var samples: [Sample]

    public init(intervalMilliseconds: Int64, windowMilliseconds: Int64, samples: [Sample]) {
        self.intervalMilliseconds = intervalMilliseconds
        self.windowMilliseconds = windowMilliseconds
        self.samples = samples
    }
}
