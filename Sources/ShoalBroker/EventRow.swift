import GRDB
import ShoalCore

/// A row of the `event` table ↔ a ``BrokerEvent``.
struct EventRow: FetchableRecord, PersistableRecord {
    static let databaseTableName = "event"

    var event: BrokerEvent

    init(_ event: BrokerEvent) {
        self.event = event
    }

    init(row: Row) throws {
        func state(_ column: String) throws -> LeaseState? {
            guard let raw: String = row[column] else { return nil }
            guard let state = LeaseState(rawValue: raw) else {
                throw LeaseStoreError.corrupt("event \(row["id"] as Int64): unknown \(column) \"\(raw)\"")
            }
            return state
        }
        event = BrokerEvent(
            id: row["id"], time: Timestamp(milliseconds: row["time"]),
            kind: BrokerEvent.Kind(rawValue: row["kind"]),
            lease: (row["lease_id"] as String?).map(LeaseID.init(rawValue:)),
            service: row["service"], host: row["host"],
            fromState: try state("from_state"), toState: try state("to_state"),
            reason: row["reason"], details: row["details"])
    }

    func encode(to container: inout PersistenceContainer) throws {
        // id 0 means "not inserted yet": let SQLite choose it.
        container["id"] = event.id == 0 ? nil : event.id
        container["time"] = event.time.milliseconds
        container["kind"] = event.kind.rawValue
        container["lease_id"] = event.lease?.rawValue
        container["service"] = event.service
        container["host"] = event.host
        container["from_state"] = event.fromState?.rawValue
        container["to_state"] = event.toState?.rawValue
        container["reason"] = event.reason
        container["details"] = event.details
    }

    /// Inserts `event` and returns it with the id SQLite gave it.
    static func insert(_ event: BrokerEvent, _ db: Database) throws -> BrokerEvent {
        try EventRow(event).insert(db)
        var inserted = event
        inserted.id = db.lastInsertedRowID
        return inserted
    }
}
