import Foundation
import NIOCore
import NIOPosix
import ShoalTesting

/// The real sample web server (`shoal-webserver`), started on a free port and stopped by PID.
final class WebServer: Sendable {
    let process: ManagedProcess
    let port: Int

    /// Starts `shoal-webserver --port 0` plus `arguments`, and reads the port from its first line
    /// (`shoal-webserver listening on 127.0.0.1:PORT ...`).
    init(_ arguments: [String] = []) throws {
        process = try ManagedProcess.startProduct("shoal-webserver", ["--port", "0"] + arguments)
        let words = process.firstLine.split(separator: " ")
        guard words.count >= 4, words[1] == "listening", let port = words[3].split(separator: ":").last.flatMap({ Int($0) }) else {
            process.stop()
            throw TestFailure("unexpected first line from shoal-webserver: \(process.firstLine)")
        }
        self.port = port
    }

    var address: SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: port) }

    func stop() { process.stop() }

    deinit { process.stop() }
}

/// A fresh temporary directory holding `m.yaml`, the manifest of service `m`: the real
/// `shoal-webserver`, by its full path (so any user can start it), 1 KB documents. The caller
/// removes the directory.
func webServerManifest() throws -> (directory: URL, manifest: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-manifest-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let manifest = directory.appendingPathComponent("m.yaml").path
    try """
        name: m
        frontend: fe-m
        command: \(try ProcessRunner.builtProduct("shoal-webserver").path)
        args: ["--port", "{port}", "--size", "1024"]
        port: 8099
        concurrency: 4

        """.write(toFile: manifest, atomically: true, encoding: .utf8)
    return (directory, manifest)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Byte `i` of every document the web server serves.
enum DocumentPattern {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_".utf8)
    /// 64 KiB of the pattern (a multiple of 64, so any piece starting at a multiple of 64 is a prefix).
    static let block: [UInt8] = (0..<65536).map { alphabet[$0 % 64] }

    /// `length` bytes of the pattern starting at `offset` (a multiple of 64).
    static func piece(at offset: Int, length: Int) -> ByteBuffer {
        precondition(offset % 64 == 0 && length <= block.count)
        return ByteBuffer(bytes: block[0..<length])
    }

    /// Whether `body` is exactly the `size`-byte document (compared a block at a time: this runs
    /// on megabytes in debug builds).
    static func matches(_ body: ByteBuffer, size: Int) -> Bool {
        guard body.readableBytes == size else { return false }
        return body.withUnsafeReadableBytes { bytes in
            block.withUnsafeBytes { pattern in
                var offset = 0
                while offset < size {
                    let length = min(pattern.count, size - offset)
                    if memcmp(bytes.baseAddress! + offset, pattern.baseAddress!, length) != 0 { return false }
                    offset += length
                }
                return true
            }
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound once, then released).
func closedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    return port
}

/// ESTABLISHED TCP connections to 127.0.0.1:`port` from this machine, read from `/proc/net/tcp`:
/// a count the relay can't influence, for the pooling test.
func establishedConnections(toPort port: Int) -> Int {
    // Read to EOF: /proc files report size 0, so size-based readers see nothing.
    guard let handle = FileHandle(forReadingAtPath: "/proc/net/tcp") else { return -1 }
    defer { try? handle.close() }
    let table = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    let hex = String(port, radix: 16, uppercase: true)
    // 127.0.0.1 (little-endian hex) and the port: a connection of another test to some other
    // address's listener on the same port number is not this server's.
    let wanted = "0100007F:" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    return table.split(separator: "\n").dropFirst().filter { line in
        let fields = line.split(separator: " ")
        // fields: sl local_address rem_address st ...
        return fields.count > 3 && fields[2] == wanted && fields[3] == "01"
    }.count
}
