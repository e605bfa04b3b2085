import Foundation
import GRDB
import Logging
import ShoalCore
import Synchronization

/// The broker's lease table and event log: `STATE_DIR/broker.sqlite`, SQLite in WAL mode.
///
/// Every change is one transaction that runs the core's lease state machine on the stored lease,
/// writes the new record and an event row with its reason, and commits — or throws and changes
/// nothing. A broker restart reopens the file and finds every lease (with its host, slot and
/// task ids) as it was. The database itself refuses a second live lease on one (host, slot);
/// see ``migrator``.
///
/// Readers never block the writer (WAL); writers queue behind one another, also across
/// processes (a busy timeout, not an error).
public final class LeaseStore: Sendable {
    public static let fileName = "broker.sqlite"

    /// The database file.
    public let path: String
    let pool: DatabasePool
    let logger: Logger
    /// With standby brokers: where every write goes once committed (``EtcdReplica``).
    let replica: EtcdReplica?

    /// Opens `directory/broker.sqlite`, creating the directory and the file if needed, and brings
    /// the schema up to date.
    public init(directory: String, replica: EtcdReplica? = nil, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = (directory as NSString).appendingPathComponent(Self.fileName)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        // WAL with synchronous=NORMAL: a commit survives the broker's crash (the case that
        // matters: SIGKILL, restart); a power cut may lose the last commits but never corrupts
        // the file — and a lost grant's worker is then a stray the next start stops. It saves an
        // fsync per commit, most of a grant's time.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        self.logger = logger
        self.replica = replica
        try Self.migrator.migrate(pool)
        if replica != nil { try pool.writeWithoutTransaction(EtcdReplica.installTriggers) }
        logger.info("lease store open", metadata: ["path": "\(path)"])
    }

    /// Every change goes through here: one transaction, then (with a replica) to etcd, in commit
    /// order. It returns only once both took it; a throw means nothing of it may be acted on.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        guard let replica else { return try await pool.write(body) }
        let taken = Mutex<EtcdReplica.Batch?>(nil)
        let value: T
        do {
            value = try await pool.write { db in
                let value = try body(db)
                let batch = try replica.takeChanges(db)
                taken.withLock { $0 = batch }
                return value
            }
        } catch {
            // Numbered but not committed: its turn must still pass, or every later write waits.
            if var batch = taken.withLock({ $0 }) {
                batch.operations = []
                try? await replica.push(batch)
            }
            throw error
        }
        if let batch = taken.withLock({ $0 }) { try await replica.push(batch) }
        return value
    }

    /// On becoming the active broker: the table as etcd has it, or, if etcd has none yet (the
    /// first active broker), this store's own, sent to etcd.
    public func takeOver() async throws {
        guard let replica else { return }
        let rows = try await replica.fetchRows()
        if rows.isEmpty {
            try await write { db in try EtcdReplica.markEverything(db) }
            logger.notice("etcd had no lease table: this broker's was sent there")
        } else {
            try await pool.write { db in try EtcdReplica.restore(rows, prefix: replica.prefix, into: db) }
            logger.notice("lease table taken over from etcd", metadata: ["rows": "\(rows.count)"])
        }
    }

    /// Closes the database. The store must not be used afterwards.
    public func close() throws {
        try pool.close()
    }

    // MARK: Reading

    /// The lease with this id, or nil.
    public func lease(_ id: LeaseID) async throws -> StoredLease? {
        try await pool.read { db in try LeaseRow.fetchOne(db, key: id.rawValue)?.stored }
    }

    /// Every lease in id order; the released and revoked ones only if `includingFinal`.
    public func leases(includingFinal: Bool = false) async throws -> [StoredLease] {
        try await pool.read { db in
            let sql = includingFinal
                ? "SELECT * FROM lease ORDER BY id"
                : "SELECT * FROM lease WHERE state IN \(LeaseRow.live) ORDER BY id"
            return try LeaseRow.fetchAll(db, sql: sql).map(\.stored)
        }
    }

    /// The live leases of `service` or of `frontend`, in id order: what admitting one more
    /// lease needs, without reading the whole table.
    public func liveLeases(service: String, frontend: String) async throws -> [StoredLease] {
        try await pool.read { db in
            try LeaseRow.fetchAll(db, sql: "SELECT * FROM lease WHERE state IN \(LeaseRow.live) AND (service = ? OR frontend = ?) ORDER BY id",
                                  arguments: [service, frontend]).map(\.stored)
        }
    }

    /// Whether any lease waits for a slot: when none does, there is nothing to arbitrate.
    public func hasWaitingLease() async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM lease WHERE state = ?)",
                              arguments: [LeaseState.requested.rawValue]) ?? false
        }
    }

    /// The leases that hold a slot (granted, active, draining), by host, each host's in slot order.
    public func liveLeasesByHost() async throws -> [String: [StoredLease]] {
        try await pool.read { db in
            let rows = try LeaseRow.fetchAll(db, sql: "SELECT * FROM lease WHERE state IN \(LeaseRow.holdingSlot) ORDER BY host, slot_index")
            return Dictionary(grouping: rows.map(\.stored), by: { $0.lease.host ?? "" })
        }
    }

    /// Events with an id above `after`, oldest first, at most `limit`.
    public func events(after: Int64 = 0, limit: Int = 100) async throws -> [BrokerEvent] {
        try await pool.read { db in
            try EventRow.fetchAll(db, sql: "SELECT * FROM event WHERE id > ? ORDER BY id LIMIT ?",
                                  arguments: [after, limit]).map(\.event)
        }
    }

    /// The newest event's id (0 when there is none): where a follower that wants only what
    /// comes next starts.
    public func latestEventID() async throws -> Int64 {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM event") ?? 0 }
    }

    /// Every event of one lease, oldest first: its history, for `shoal leases explain`.
    public func events(forLease id: LeaseID) async throws -> [BrokerEvent] {
        try await pool.read { db in
            try EventRow.fetchAll(db, sql: "SELECT * FROM event WHERE lease_id = ? ORDER BY id",
                                  arguments: [id.rawValue]).map(\.event)
        }
    }
}
