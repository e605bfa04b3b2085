/// Whether this broker may act as the active one, by the rules of a lease on leadership held in
/// a consensus store (etcd): the store elects, this decides when to stop believing it leads.
///
/// A leader holds a store lease of `ttl`. It renews it every `renewInterval`; each renewal sent
/// at `t` and acknowledged proves leadership until `t + ttl × safety` — the store's own clock
/// starts the lease no earlier than `t`, and `safety` (below 1) leaves room for clocks that run
/// at different rates. Past that time without a newer acknowledgement (the store is unreachable,
/// or this broker is partitioned from it) the broker must step down before a standby can be
/// elected: the store expires the lease at `t + ttl` at the earliest. A write the store refuses
/// because another broker's term holds the leader key also ends leadership at once.
///
/// Pure: events are `mutating func`s taking the time and returning what to do.
public struct Leadership: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The store lease's time to live.
        public var ttl: Duration = .seconds(3)
        /// How often the leader renews it.
        public var renewInterval: Duration = .seconds(1)
        /// The share of `ttl` a renewal is trusted for.
        public var safety = 0.8

        public init() {}
    }

    public enum Role: Sendable, Hashable {
        case standby
        /// Elected with this term: the leader key's creation revision, which fences every write.
        case active(term: Int64)
        /// No longer leads; the broker stops granting and exits (a new process stands by).
        case steppedDown(reason: String)
    }

    public enum Action: Sendable, Hashable {
        case activate(term: Int64)
        case renew
        case stepDown(reason: String)
    }

    public let configuration: Configuration
    public private(set) var role: Role = .standby
    /// Leadership is proven until then.
    public private(set) var validUntil: Timestamp?
    private var lastRenewSent: Timestamp?
    /// When the newest acknowledged renewal (or the campaign) was sent.
    private var lastProof: Timestamp?

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Whether this broker may grant now.
    public func mayAct(at now: Timestamp) -> Bool {
        guard case .active = role, let validUntil else { return false }
        return now < validUntil
    }

    /// The store elected this broker; `at`: when the campaign's request was sent.
    public mutating func elected(term: Int64, at sent: Timestamp) -> [Action] {
        guard case .standby = role else { return [] }
        role = .active(term: term)
        validUntil = sent + configuration.ttl * configuration.safety
        lastRenewSent = sent
        lastProof = sent
        return [.activate(term: term)]
    }

    /// A renewal sent at `sent` was acknowledged with `remaining` seconds of lease (0: the lease
    /// had already expired in the store).
    public mutating func renewed(sentAt sent: Timestamp, remaining: Duration) -> [Action] {
        guard case .active = role else { return [] }
        guard remaining > .zero else { return stepDown("the store says the leadership lease expired") }
        validUntil = max(validUntil ?? sent, sent + min(remaining, configuration.ttl) * configuration.safety)
        lastProof = max(lastProof ?? sent, sent)
        return []
    }

    /// The store refused a write fenced with this broker's term: another broker leads.
    public mutating func writeRefused(_ why: String) -> [Action] {
        guard case .active = role else { return [] }
        return stepDown("a write was refused: \(why)")
    }

    /// Time passed: renew when due; step down once leadership can no longer be proven.
    public mutating func tick(now: Timestamp) -> [Action] {
        guard case .active = role else { return [] }
        if let validUntil, now >= validUntil {
            return stepDown("leadership unproven for \(lastProof.map { "\(now - $0)" } ?? "?") (no renewal acknowledged); another broker may lead")
        }
        if let last = lastRenewSent, now - last < configuration.renewInterval { return [] }
        lastRenewSent = now
        return [.renew]
    }

    private mutating func stepDown(_ reason: String) -> [Action] {
        role = .steppedDown(reason: reason)
        validUntil = nil
        return [.stepDown(reason: reason)]
    }
}
