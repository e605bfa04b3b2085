import Foundation
import Logging
import ShoalBroker

/// A fresh state directory under the system's temporary directory, removed by `remove()`.
struct TemporaryStateDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("shoal-broker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    var databasePath: String { (path as NSString).appendingPathComponent(LeaseStore.fileName) }

    func open() throws -> LeaseStore {
        try LeaseStore(directory: path, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs `body` with a temporary state directory and deletes it afterwards.
func withStateDirectory<T>(_ body: (TemporaryStateDirectory) async throws -> T) async throws -> T {
    let directory = try TemporaryStateDirectory()
    defer { directory.remove() }
    return try await body(directory)
}
