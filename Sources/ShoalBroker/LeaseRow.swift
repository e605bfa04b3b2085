import Foundation
import GRDB
import ShoalCore

/// A row of the `lease` table ↔ a ``StoredLease``.
struct LeaseRow: FetchableRecord, PersistableRecord {
    static let databaseTableName = "lease"
    /// `('requested', 'granted', …)`: the core's ``LeaseState/live`` as an SQL list.
    static let live = sqlList(LeaseState.live)
    /// The core's ``LeaseState/holdingSlot`` as an SQL list.
    static let holdingSlot = sqlList(LeaseState.holdingSlot)

    private static func sqlList(_ states: [LeaseState]) -> String {
        "(" + states.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
    }

    var stored: StoredLease

    init(_ stored: StoredLease) {
        self.stored = stored
    }

    init(row: Row) throws {
        let id = LeaseID(row["id"] as String)
        func decode<T: RawRepresentable>(_ column: String, as _: T.Type) throws -> T? where T.RawValue == String {
            guard let raw: String = row[column] else { return nil }
            guard let value = T(rawValue: raw) else {
                throw LeaseStoreError.corrupt("lease \(id): unknown \(column) \"\(raw)\"")
            }
            return value
        }
        guard let state = try decode("state", as: LeaseState.self) else {
            throw LeaseStoreError.corrupt("lease \(id): no state")
        }
        let tasksJSON: String = row["tasks"]
        guard let tasks = try? JSONDecoder().decode([Int32].self, from: Data(tasksJSON.utf8)) else {
            throw LeaseStoreError.corrupt("lease \(id): tasks \(tasksJSON) are not a list of task ids")
        }
        var lease = Lease(
            id: id, service: row["service"], frontend: row["frontend"],
            requestedAt: Timestamp(milliseconds: row["requested_at"]), ttl: .zero)
        lease.host = row["host"]
        lease.state = state
        lease.tasks = tasks
        lease.endpoint = row["endpoint"]
        lease.expiresAt = Timestamp(milliseconds: row["expires_at"])
        if let reason = try decode("drain_reason", as: Drain.Reason.self), let deadline: Int64 = row["drain_deadline"] {
            lease.drain = Drain(reason: reason, deadline: Timestamp(milliseconds: deadline))
        }
        lease.revocation = try decode("revocation", as: RevocationReason.self)
        lease.grantedAt = (row["granted_at"] as Int64?).map(Timestamp.init(milliseconds:))
        lease.workerDraining = row["worker_draining"]
        let secret: String? = row["secret"]
        stored = StoredLease(lease: lease, slotIndex: row["slot_index"], secret: try secret.map { text in
            guard let secret = LeaseSecret(text) else { throw LeaseStoreError.corrupt("lease \(id): its secret is not 43 base64url characters") }
            return secret
        })
    }

    func encode(to container: inout PersistenceContainer) throws {
        let lease = stored.lease
        container["id"] = lease.id.rawValue
        container["service"] = lease.service
        container["frontend"] = lease.frontend
        container["host"] = lease.host
        container["slot_index"] = stored.slotIndex
        container["state"] = lease.state.rawValue
        container["tasks"] = "[" + lease.tasks.map(String.init).joined(separator: ",") + "]"
        container["endpoint"] = lease.endpoint
        container["requested_at"] = lease.requestedAt.milliseconds
        container["expires_at"] = lease.expiresAt.milliseconds
        container["drain_reason"] = lease.drain?.reason.rawValue
        container["drain_deadline"] = lease.drain?.deadline.milliseconds
        container["revocation"] = lease.revocation?.rawValue
        container["granted_at"] = lease.grantedAt?.milliseconds
        container["worker_draining"] = lease.workerDraining
        container["secret"] = stored.secret?.text
    }
}
