import Foundation
import HTTPTypes
import NIOCore
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// An answer as the API tests look at it.
struct LiveResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer
}

/// A deliberately plain HTTP/1.1 client for the API tests: one connection per request
/// (`Connection: close`), bytes written as given — so a test can send what no well-behaved
/// client would (malformed JSON, odd headers) — and the answer read to the end. Blocking socket
/// calls on a detached thread; loopback only.
struct LiveHTTPClient: Sendable {
    let port: Int

    func execute(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> LiveResponse {
        var request = "\(method.rawValue) \(uri) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for field in headers { request += "\(field.name.rawName): \(field.value)\r\n" }
        let bytes = body.map { Array($0.readableBytesView) } ?? []
        if body != nil || method == .post { request += "Content-Length: \(bytes.count)\r\n" }
        let raw = Array((request + "\r\n").utf8) + bytes
        let port = port
        let answer = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result { try Self.exchange(raw, port: port) })
            }
        }
        return try Self.parse(answer)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static func exchange(_ request: [UInt8], port: Int) throws -> [UInt8] {
        let fd = try LoopbackSocket.connect(port: port, receiveTimeout: .seconds(10))
        defer { close(fd) }
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { break }  // The server may answer (413) and close before taking it all.
            sent += count
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            answer += buffer[..<count]
        }
        return answer
    }

    private static func parse(_ answer: [UInt8]) throws -> LiveResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = answer.indices.first(where: { answer[$0...].starts(with: separator) }) else {
            throw Failure(description: "no complete response head in \(answer.count) bytes")
        }
        let lines = String(decoding: answer[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusWords = lines[0].split(separator: " ", maxSplits: 2)
        guard statusWords.count >= 2, let code = Int(statusWords[1]) else { throw Failure(description: "bad status line \(lines[0])") }
        var headers = HTTPFields()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else { continue }
            headers.append(HTTPField(name: name, value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = Array(answer[(end + separator.count)...])
        if headers[.transferEncoding]?.lowercased() == "chunked" { body = try dechunk(body) }
        return LiveResponse(status: HTTPResponse.Status(code: code), headers: headers, body: ByteBuffer(bytes: body))
    }

    private static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstIndex(of: UInt8(ascii: "\r")) else { break }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";")[0]
            guard let size = Int(sizeText, radix: 16) else { throw Failure(description: "bad chunk size \(sizeText)") }
            index = lineEnd + 2
            if size == 0 { break }
            output += bytes[index..<min(bytes.count, index + size)]
            index += size + 2
        }
        return output
    }
}
