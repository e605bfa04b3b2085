import Foundation
import NIOCore
import NIOHTTP1
import ShoalClient
import Synchronization

/// The few calls of etcd v3 the broker needs, over etcd's HTTP/JSON gateway (`/v3/...`, etcd
/// 3.4): leases (grant, keep alive, revoke), transactions, and reads of a key range. Keys and
/// values are bytes, base64 in the JSON; revisions and ids are 64-bit numbers sent as strings.
///
/// Given every member's URL, a call goes to the member that answered last, and to the next when
/// that one cannot be reached.
public final class EtcdClient: Sendable {
    public struct KeyValue: Sendable, Hashable {
        public var key: String
        public var value: Data
        public var createRevision: Int64
        public var modRevision: Int64
        public var lease: Int64
    }

    /// One write in a transaction.
    public enum Operation: Sendable, Hashable {
        case put(key: String, value: Data, lease: Int64? = nil)
        case delete(key: String)
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public let endpoints: [String]
    private let members: [HTTPClientConnection]
    private let preferred = Mutex(0)
    private let timeout: Duration

    /// - Parameter endpoints: `http://HOST:PORT` of each etcd member.
    public init(endpoints: [String], timeout: Duration = .seconds(2)) throws {
        var members: [HTTPClientConnection] = []
        for endpoint in endpoints {
            guard let url = URL(string: endpoint), url.scheme == "http", let host = url.host, let port = url.port else {
                throw Failure(description: "etcd endpoint \(endpoint) is not http://HOST:PORT")
            }
            members.append(HTTPClientConnection(host: host, port: port))
        }
        guard !members.isEmpty else { throw Failure(description: "no etcd endpoint given") }
        self.endpoints = endpoints
        self.members = members
        self.timeout = timeout
    }

    public func close() async {
        for member in members { await member.close() }
    }

    // MARK: Leases

    /// A new lease that lives `ttl` seconds unless kept alive; returns its id.
    public func grantLease(ttl seconds: Int) async throws -> Int64 {
        let answer = try await call("/v3/lease/grant", ["TTL": "\(seconds)"])
        guard let id = Self.int64(answer["ID"]) else { throw Failure(description: "lease grant: no ID in \(answer)") }
        return id
    }

    /// Renews the lease; returns the seconds it now has left (0: it had expired, and is gone).
    public func keepAlive(lease: Int64) async throws -> Int64 {
        let answer = try await call("/v3/lease/keepalive", ["ID": "\(lease)"])
        return Self.int64((answer["result"] as? [String: Any])?["TTL"]) ?? 0
    }

    /// Ends the lease now; its keys go with it.
    public func revoke(lease: Int64) async throws {
        _ = try await call("/v3/lease/revoke", ["ID": "\(lease)"])
    }

    // MARK: Keys

    /// Every key starting with `prefix`, in key order.
    public func range(prefix: String) async throws -> [KeyValue] {
        let answer = try await call("/v3/kv/range", ["key": Self.base64(prefix), "range_end": Self.base64(Self.prefixEnd(prefix))])
        return (answer["kvs"] as? [[String: Any]] ?? []).compactMap(Self.keyValue)
    }

    public func put(key: String, value: Data) async throws {
        _ = try await call("/v3/kv/put", ["key": Self.base64(key), "value": value.base64EncodedString()])
    }

    /// If `key` was created at `createRevision` (0: it does not exist), does `operations` and
    /// returns true with the revision they made; otherwise does nothing and returns false, with
    /// the key as it is (if it exists).
    public func transaction(
        ifKey key: String, createdAt createRevision: Int64, then operations: [Operation]
    ) async throws -> (succeeded: Bool, revision: Int64, current: KeyValue?) {
        let compare: [String: Any] = [
            "key": Self.base64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "\(createRevision)",
        ]
        let success: [[String: Any]] = operations.map { operation in
            switch operation {
            case .put(let key, let value, let lease):
                var put: [String: Any] = ["key": Self.base64(key), "value": value.base64EncodedString()]
                if let lease { put["lease"] = "\(lease)" }
                return ["request_put": put]
            case .delete(let key):
                return ["request_delete_range": ["key": Self.base64(key)]]
            }
        }
        let answer = try await call("/v3/kv/txn", [
            "compare": [compare], "success": success, "failure": [["request_range": ["key": Self.base64(key)]]],
        ])
        let revision = Self.int64((answer["header"] as? [String: Any])?["revision"]) ?? 0
        if answer["succeeded"] as? Bool == true { return (true, revision, nil) }
        let responses = answer["responses"] as? [[String: Any]] ?? []
        let range = responses.first?["response_range"] as? [String: Any]
        let current = (range?["kvs"] as? [[String: Any]] ?? []).compactMap(Self.keyValue).first
        return (false, revision, current)
    }

    // MARK: The exchange

    private func call(_ path: String, _ body: [String: Any]) async throws -> [String: Any] {
        let bytes = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
        let headers: HTTPHeaders = ["Content-Type": "application/json"]
        let first = preferred.withLock { $0 }
        var failure = Failure(description: "no etcd member answered")
        for offset in members.indices {
            let index = (first + offset) % members.count
            let answer: HTTPAnswer
            do {
                answer = try await members[index].send(.POST, path, headers: headers, body: bytes, timeout: timeout)
            } catch let error as HTTPClientFailure {
                failure = Failure(description: "etcd \(endpoints[index]) \(path): \(error)")
                continue
            }
            preferred.withLock { $0 = index }
            let data = Data(answer.body.readableBytesView)
            guard answer.status == .ok, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw Failure(description: "etcd \(endpoints[index]) \(path): \(answer.status.code) \(String(decoding: data.prefix(300), as: UTF8.self))")
            }
            return object
        }
        throw failure
    }

    private static func keyValue(_ object: [String: Any]) -> KeyValue? {
        guard let key = (object["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
        return KeyValue(
            key: String(decoding: key, as: UTF8.self),
            value: (object["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data(),
            createRevision: int64(object["create_revision"]) ?? 0,
            modRevision: int64(object["mod_revision"]) ?? 0,
            lease: int64(object["lease"]) ?? 0)
    }

    /// The gateway sends 64-bit numbers as strings.
    private static func int64(_ value: Any?) -> Int64? {
        switch value {
        case let text as String: Int64(text)
        case let number as NSNumber: number.int64Value
        default: nil
        }
    }

    private static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// The end of the range of keys starting with `prefix`: the prefix with its last byte plus one.
    private static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        bytes[bytes.count - 1] += 1
        return String(decoding: bytes, as: UTF8.self)
    }
}
