import GRDB
import ShoalCore

extension LeaseStore {
    /// A registered front-end: who owns leases, and the manifest its workers are started from.
    public struct FrontendRecord: Sendable, Hashable {
        public var name: String
        public var manifestPath: String
        public var registeredAt: Timestamp
    }

    /// Records (or re-records) a front-end's registration, so a restarted broker still knows the
    /// owners of the leases it finds.
    public func saveFrontend(name: String, manifestPath: String, now: Timestamp) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO frontend (name, manifest_path, registered_at) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET manifest_path = excluded.manifest_path, registered_at = excluded.registered_at
                """, arguments: [name, manifestPath, now.milliseconds])
        }
    }

    /// Records that `host` is drained for maintenance (or, with `false`, no longer), so a
    /// restarted broker keeps it out of the pool.
    public func setCordoned(_ host: String, _ cordoned: Bool, now: Timestamp) async throws {
        try await write { db in
            if cordoned {
                try db.execute(sql: "INSERT OR IGNORE INTO cordon (host, since) VALUES (?, ?)", arguments: [host, now.milliseconds])
            } else {
                try db.execute(sql: "DELETE FROM cordon WHERE host = ?", arguments: [host])
            }
        }
    }

    /// The hosts drained for maintenance.
    public func cordonedHosts() async throws -> Set<String> {
        try await pool.read { db in Set(try String.fetchAll(db, sql: "SELECT host FROM cordon")) }
    }

    /// Every registered front-end, by name.
    public func frontends() async throws -> [FrontendRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM frontend ORDER BY name").map {
                FrontendRecord(name: $0["name"], manifestPath: $0["manifest_path"],
                               registeredAt: Timestamp(milliseconds: $0["registered_at"]))
            }
        }
    }
}
