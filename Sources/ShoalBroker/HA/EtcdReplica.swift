import Foundation
import GRDB
import Synchronization

/// With standby brokers, the lease table lives in etcd: every write transaction of the
/// ``LeaseStore`` is sent to etcd once SQLite committed it, in commit order, **fenced** by this
/// broker's term (the leader key's creation revision) — etcd applies it only while this broker is
/// still the elected one. A write etcd refuses (another broker leads) or cannot take (unreachable)
/// throws: nothing that write decided is carried out, and the broker steps down and exits (its
/// SQLite file is rebuilt from etcd at its next activation). The active broker's SQLite is a copy
/// it reads from; etcd is the truth a standby takes over.
///
/// What changed is found by temporary triggers that list every written row's key; the rows are
/// stored under `PREFIX/rows/TABLE/KEY` as JSON, one key each.
public final class EtcdReplica: Sendable {
    /// The replicated tables and their key columns, parents before children.
    static let tables: [(name: String, key: String)] = [
        ("sequence", "name"), ("frontend", "name"), ("cordon", "host"), ("lease", "id"), ("event", "id"),
    ]

    let etcd: EtcdClient
    let prefix: String
    let leaderKey: String
    let term: Int64
    /// Numbers each write in commit order (assigned inside the write transaction).
    private let nextBatch = Mutex<Int64>(0)
    private let pushes = OrderedPushes()
    /// Why etcd refused a write, once it has: the broker must step down.
    let refusal = Mutex<String?>(nil)

    public init(etcd: EtcdClient, prefix: String, leaderKey: String, term: Int64) {
        self.etcd = etcd
        self.prefix = prefix
        self.leaderKey = leaderKey
        self.term = term
    }

    /// The changes of one write, numbered in commit order.
    struct Batch: Sendable {
        var number: Int64
        var operations: [EtcdClient.Operation]
    }

    // MARK: Inside the store's write transactions

    /// Creates the change list and its triggers on the writer's connection.
    static func installTriggers(_ db: Database) throws {
        try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS replica_outbox (tbl TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID")
        for table in tables {
            for (event, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
                try db.execute(sql: """
                    CREATE TEMP TRIGGER IF NOT EXISTS replica_\(table.name)_\(event.lowercased()) AFTER \(event) ON main.\(table.name)
                    BEGIN INSERT OR IGNORE INTO replica_outbox VALUES ('\(table.name)', \(row).\(table.key)); END
                    """)
            }
        }
    }

    /// Takes what this transaction wrote, as etcd operations, and numbers it.
    func takeChanges(_ db: Database) throws -> Batch {
        var operations: [EtcdClient.Operation] = []
        for change in try Row.fetchAll(db, sql: "SELECT tbl, key FROM temp.replica_outbox") {
            let table: String = change["tbl"], key: String = change["key"]
            guard let column = Self.tables.first(where: { $0.name == table })?.key else { continue }
            let etcdKey = rowKey(table: table, key: key)
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM \(table) WHERE \(column) = ?", arguments: [key]) {
                operations.append(.put(key: etcdKey, value: try Self.json(row)))
            } else {
                operations.append(.delete(key: etcdKey))
            }
        }
        try db.execute(sql: "DELETE FROM temp.replica_outbox")
        return Batch(number: nextBatch.withLock { number in defer { number += 1 }; return number }, operations: operations)
    }

    /// Marks every row as changed: the next write sends the whole table (seeding an empty etcd).
    static func markEverything(_ db: Database) throws {
        for table in tables {
            try db.execute(sql: "INSERT OR IGNORE INTO temp.replica_outbox SELECT '\(table.name)', \(table.key) FROM main.\(table.name)")
        }
    }

    // MARK: After the commit

    /// Sends `batch` to etcd after every earlier one, fenced by the term.
    func push(_ batch: Batch) async throws {
        try await pushes.push(batch.number) { [self] in
            if let refusal = refusal.withLock({ $0 }) { throw EtcdClient.Failure(description: refusal) }
            // etcd takes at most 128 operations per transaction; only seeding comes near.
            for start in stride(from: 0, to: batch.operations.count, by: 100) {
                let chunk = Array(batch.operations[start..<min(start + 100, batch.operations.count)])
                let result: (succeeded: Bool, revision: Int64, current: EtcdClient.KeyValue?)
                do {
                    result = try await etcd.transaction(ifKey: leaderKey, createdAt: term, then: chunk)
                } catch {
                    refusal.withLock { $0 = "etcd did not take a write: \(error)" }
                    throw error
                }
                guard result.succeeded else {
                    let why = "the leader key was created at revision \(result.current?.createRevision ?? 0), not this broker's term \(term)"
                    refusal.withLock { $0 = why }
                    throw EtcdClient.Failure(description: "etcd refused a write: \(why)")
                }
            }
        }
    }

    // MARK: Taking over

    /// The replicated rows in etcd, by table, in key order.
    func fetchRows() async throws -> [EtcdClient.KeyValue] {
        try await etcd.range(prefix: prefix + "rows/")
    }

    /// Replaces the replicated tables' contents with `rows` (as ``fetchRows()`` returned them).
    static func restore(_ rows: [EtcdClient.KeyValue], prefix: String, into db: Database) throws {
        var byTable: [String: [[String: Any]]] = [:]
        for row in rows {
            let table = row.key.dropFirst((prefix + "rows/").count).split(separator: "/").first.map(String.init) ?? ""
            guard let object = try JSONSerialization.jsonObject(with: row.value) as? [String: Any] else { continue }
            byTable[table, default: []].append(object)
        }
        for table in tables.reversed() { try db.execute(sql: "DELETE FROM main.\(table.name)") }
        for table in tables {
            for object in byTable[table.name] ?? [] {
                let columns = object.keys.sorted()
                let values: [(any DatabaseValueConvertible)?] = columns.map { column in
                    switch object[column] {
                    case let text as String: text
                    case let number as NSNumber:
                        // Every replicated number is an integer (ids, times in ms, slots, flags).
                        number.doubleValue.rounded() == number.doubleValue ? number.int64Value : number.doubleValue
                    default: nil
                    }
                }
                try db.execute(sql: "INSERT INTO main.\(table.name) (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))",
                               arguments: StatementArguments(values))
            }
        }
        try db.execute(sql: "DELETE FROM temp.replica_outbox")
    }

    private func rowKey(table: String, key: String) -> String {
        // Event ids padded, so that a range read lists them in order.
        let padded = table == "event" ? String(repeating: "0", count: max(0, 12 - key.count)) + key : key
        return prefix + "rows/\(table)/\(padded)"
    }

    private static func json(_ row: Row) throws -> Data {
        var object: [String: Any] = [:]
        for (column, value) in row {
            switch value.storage {
            case .null: object[column] = NSNull()
            case .int64(let number): object[column] = number
            case .double(let number): object[column] = number
            case .string(let text): object[column] = text
            case .blob(let data): object[column] = data.base64EncodedString()
            }
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }
}

/// Runs numbered operations one at a time in number order, whatever order they arrive in.
private actor OrderedPushes {
    private var next: Int64 = 0
    private var waiting: [Int64: CheckedContinuation<Void, Never>] = [:]

    func push(_ number: Int64, _ operation: @Sendable () async throws -> Void) async throws {
        if number != next { await withCheckedContinuation { waiting[number] = $0 } }
        defer {
            next += 1
            waiting.removeValue(forKey: next)?.resume()
        }
        try await operation()
    }
}
