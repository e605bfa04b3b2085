import Foundation
import Logging
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import Synchronization

/// One of several brokers, elected through etcd: the shell that carries out ``Leadership``.
///
/// Standing by, ``campaign()`` tries every half second to create the leader key
/// (`PREFIX/leader`, holding this broker's name and API URL) under a fresh etcd lease; it returns
/// the term (the key's creation revision) once it did. Active, ``run()`` renews the lease and
/// throws ``LeadershipLost`` as soon as leadership can no longer be proven — or a write was refused
/// — so the broker stops granting and the process exits; a service manager starts it again, as
/// a standby. On a graceful stop it revokes the lease, so a standby takes over at once.
public actor BrokerElection: Service {
    public struct LeadershipLost: Error, CustomStringConvertible {
        public var description: String
    }

    /// What the leader key holds.
    public struct Leader: Codable, Sendable, Hashable {
        public var name: String
        public var url: String
    }

    public nonisolated let leaderKey: String
    /// Where every broker lists its API URL, standbys included (workers are told them all).
    public nonisolated let brokersPrefix: String
    private let etcd: EtcdClient
    private let me: Leader
    private let clock: @Sendable () -> Timestamp
    private let logger: Logger
    private var leadership: Leadership
    private var lease: Int64?
    /// Set once active: a refused write there ends leadership.
    private var replica: EtcdReplica?

    /// Prints the line that tells a script this broker stands by (stdout, once).
    private let announceStandby: @Sendable (String) -> Void

    public init(etcd: EtcdClient, prefix: String, name: String, url: String,
                configuration: Leadership.Configuration = .init(),
                announceStandby: @escaping @Sendable (String) -> Void = { _ in },
                clock: @escaping @Sendable () -> Timestamp = Timestamp.now, logger: Logger) {
        self.etcd = etcd
        self.leaderKey = prefix + "leader"
        self.brokersPrefix = prefix + "brokers/"
        self.me = Leader(name: name, url: url)
        self.clock = clock
        self.announceStandby = announceStandby
        self.logger = logger
        self.leadership = Leadership(configuration: configuration)
    }

    /// Lists this broker among the brokers, then stands by until elected; returns the term. etcd
    /// out of reach is waited out, not a failure.
    public func campaign() async throws -> Int64 {
        var seen: Leader?
        var listed = false
        let ttl = Int((leadership.configuration.ttl / .seconds(1)).rounded(.up))
        while true {
            let sent = clock()
            do {
                if !listed {
                    try await etcd.put(key: brokersPrefix + me.name, value: Data(me.url.utf8))
                    listed = true
                }
                let lease = try await etcd.grantLease(ttl: ttl)
                let result = try await etcd.transaction(
                    ifKey: leaderKey, createdAt: 0, then: [.put(key: leaderKey, value: try JSONEncoder().encode(me), lease: lease)])
                if result.succeeded {
                    self.lease = lease
                    _ = leadership.elected(term: result.revision, at: sent)
                    logger.notice("elected: this broker is the active one", metadata: ["term": "\(result.revision)", "name": "\(me.name)"])
                    return result.revision
                }
                try? await etcd.revoke(lease: lease)
                let leader = result.current.flatMap { try? JSONDecoder().decode(Leader.self, from: $0.value) }
                if let leader, leader != seen {
                    logger.notice("standing by; the active broker is \(leader.name) (\(leader.url))")
                    if seen == nil { announceStandby("shoal broker \(me.name) standing by; the active broker is \(leader.name) at \(leader.url)") }
                    seen = leader
                }
            } catch {
                logger.warning("cannot reach etcd to campaign; trying again", metadata: ["error": "\(error)"])
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// A refused write (``EtcdReplica``) ends leadership as surely as an expired lease.
    public func watch(_ replica: EtcdReplica) {
        self.replica = replica
    }

    /// Keeps leadership while it can be proven; throws ``LeadershipLost`` when it cannot.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully {
                for action in self.tick() {
                    switch action {
                    case .renew:
                        group.addTask { await self.renew() }
                    case .stepDown(let reason):
                        self.logger.critical("leadership lost: this broker stops (a service manager starts it again as a standby)",
                                             metadata: ["reason": "\(reason)"])
                        throw LeadershipLost(description: reason)
                    case .activate:
                        break
                    }
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            group.cancelAll()
        }
        // Stopping on purpose: give leadership up now rather than after the TTL.
        if let lease { try? await etcd.revoke(lease: lease) }
    }

    private func tick() -> [Leadership.Action] {
        if let refusal = replica?.refusal.withLock({ $0 }) {
            return leadership.writeRefused(refusal)
        }
        return leadership.tick(now: clock())
    }

    private func renew() async {
        guard let lease else { return }
        let sent = clock()
        do {
            let remaining = try await etcd.keepAlive(lease: lease)
            _ = leadership.renewed(sentAt: sent, remaining: .seconds(remaining))
        } catch {
            logger.warning("could not renew leadership", metadata: ["error": "\(error)"])
        }
    }
}
