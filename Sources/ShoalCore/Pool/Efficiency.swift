/// What each service's back-ends cost per request: **back-end-seconds per 1 000 requests
/// served**. Back-end-seconds add up, tick by tick, the slots a service holds (granted, active or
/// draining: a slot given to it is a slot no one else has). Requests are those its front-ends
/// answered, from their own instance or a back-end, as each front-end's heartbeat reports its
/// running count. No peer reports it; it is what an operator sharing a pool wants to know.
///
/// Pure: the broker passes the time held and the counts in.
public struct Efficiency: Sendable, Hashable {
    public struct Service: Sendable, Hashable {
        public var backendSeconds: Double = 0
        public var requestsServed = 0

        public init() {}

        /// Back-end-seconds per 1 000 requests served; `nil` before the first request.
        public var backendSecondsPerThousandRequests: Double? {
            requestsServed > 0 ? backendSeconds * 1000 / Double(requestsServed) : nil
        }
    }

    public private(set) var services: [String: Service] = [:]
    /// Each front-end's last reported count, to add only what is new.
    private var lastCount: [String: Int] = [:]

    public init() {}

    /// `held` slots per service were held for `duration`.
    public mutating func held(_ held: [String: Int], for duration: Duration) {
        let seconds = duration / .seconds(1)
        guard seconds > 0 else { return }
        for (service, slots) in held where slots > 0 {
            services[service, default: Service()].backendSeconds += Double(slots) * seconds
        }
    }

    /// Front-end `frontend` of `service` has answered `count` requests since it started. Returns
    /// how many are new. A count lower than the last is a restarted front-end: all of it is new.
    @discardableResult
    public mutating func served(_ count: Int, by frontend: String, of service: String) -> Int {
        let last = lastCount[frontend] ?? 0
        let new = count >= last ? count - last : count
        lastCount[frontend] = count
        services[service, default: Service()].requestsServed += new
        return new
    }
}
