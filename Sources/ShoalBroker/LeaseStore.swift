import Foundation
import GRDB
import Logging
import ShoalCore

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

    /// Opens `directory/broker.sqlite`, creating the directory and the file if needed, and brings
    /// the schema up to date.
    public init(directory: String, logger: Logger) throws {
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
        try Self.migrator.migrate(pool)
        logger.info("lease store open", metadata: ["path": "\(path)"])
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
