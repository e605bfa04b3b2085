import Foundation
import GRDB
import ShoalCore

/// Keeping the event log and the finished leases bounded: old rows are deleted a few at a time,
/// each chunk a short write of its own, so grants never wait long behind a prune.
extension LeaseStore {
    /// What to keep (see ``Broker/Configuration/retention``).
    public struct Retention: Sendable, Hashable {
        /// Events older than this are deleted; then the finished leases none of whose events is left.
        public var maxAge: Duration = .seconds(7 * 24 * 3600)
        /// At most this many events are kept, the newest.
        public var maxEvents = 1_000_000
        /// How often the broker prunes.
        public var interval: Duration = .seconds(60)

        public init() {}
    }

    /// Rows per table in one prune write: with standby brokers each write is one etcd
    /// transaction, and etcd takes at most 128 operations in one.
    static let pruneChunk = 50

    /// Deletes up to ``pruneChunk`` events older than `cutoff` or beyond the newest `maxEvents`,
    /// and up to as many released or revoked leases with no event left. Never a live lease.
    /// Returns how many rows went; fewer than a full chunk of each means nothing more is due.
    public func pruneChunk(olderThan cutoff: Timestamp, maxEvents: Int) async throws -> (events: Int, leases: Int) {
        let chunk = Self.pruneChunk
        return try await write { db in
            try db.execute(sql: """
                DELETE FROM event WHERE id IN (
                  SELECT id FROM event
                  WHERE time < ? OR id <= (SELECT MAX(id) FROM event) - ?
                  ORDER BY id LIMIT ?)
                """, arguments: [cutoff.milliseconds, max(1, maxEvents), chunk])
            let events = db.changesCount
            try db.execute(sql: """
                DELETE FROM lease WHERE id IN (
                  SELECT id FROM lease
                  WHERE state IN ('released', 'revoked')
                    AND NOT EXISTS (SELECT 1 FROM event WHERE event.lease_id = lease.id)
                  ORDER BY id LIMIT ?)
                """, arguments: [chunk])
            return (events, db.changesCount)
        }
    }

    /// The database's size on disk: the file and its write-ahead log.
    public func sizeInBytes() -> Int {
        [path, path + "-wal"].reduce(0) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0)
        }
    }
}
