import NIOCore
import Testing

@testable import ShoalProxy

/// The member-side reader on its own: the same events whether an answer arrives whole or one
/// byte at a time, the framing RFC 9112 §6.3 gives each answer, and clear errors for answers
/// that would desynchronise the connection.
extension ProxyTests {
    @Suite struct ResponseReading {
        /// Feeds `text` in pieces of `step` bytes; returns the head and the body bytes passed on.
        static func read(_ text: String, step: Int, toHEAD: Bool = false, dechunk: Bool = false) throws -> (head: ResponseReader.Head?, body: String, done: Bool) {
            var reader = ResponseReader()
            reader.expectResponse(toHEAD: toHEAD, dechunk: dechunk)
            let bytes = Array(text.utf8)
            var head: ResponseReader.Head?
            var body = ""
            for start in stride(from: 0, to: bytes.count, by: step) {
                var buffer = ByteBuffer(bytes: bytes[start..<min(start + step, bytes.count)])
                while let event = try reader.next(&buffer) {
                    switch event {
                    case .head(let parsed): head = parsed
                    case .body(let slice): body += String(buffer: slice)
                    }
                }
            }
            return (head, body, reader.isDone)
        }

        static let cases: [(answer: String, framing: ResponseReader.Framing, keepsAlive: Bool, body: String)] = [
            ("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", .length(5), true, "hello"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", .chunked, true, "3\r\nabc\r\n0\r\n\r\n"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n1;a=b\r\nz\r\n0\r\nt: 1\r\n\r\n", .chunked, true, "1;a=b\r\nz\r\n0\r\nt: 1\r\n\r\n"),
            ("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", .length(2), false, "ok"),
            ("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", .length(2), false, "ok"),
            ("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 2\r\n\r\nok", .length(2), true, "ok"),
            ("HTTP/1.1 204 No Content\r\n\r\n", .empty, true, ""),
            ("HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n", .empty, true, ""),
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\nx", .length(1), true, "x"),
            ("HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n", .length(0), true, ""),
        ]

        @Test func wholeOrByteByByteGivesTheSameAnswer() throws {
            for (answer, framing, keepsAlive, body) in Self.cases {
                for step in [1, 2, 7, answer.utf8.count] {
                    let read = try Self.read(answer, step: step)
                    #expect(read.head?.framing == framing, "\(answer.debugDescription) by \(step)")
                    #expect(read.head?.keepsAlive == keepsAlive, "\(answer.debugDescription) by \(step)")
                    #expect(read.body == body, "\(answer.debugDescription) by \(step)")
                    #expect(read.done, "\(answer.debugDescription) by \(step)")
                }
            }
        }

        @Test func untilCloseHEADAndDechunking() throws {
            let untilClose = try Self.read("HTTP/1.1 200 OK\r\n\r\nsome bytes", step: 3)
            #expect(untilClose.head?.framing == .untilClose && untilClose.head?.keepsAlive == false)
            #expect(untilClose.body == "some bytes" && !untilClose.done)

            let head = try Self.read("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n", step: 5, toHEAD: true)
            #expect(head.head?.framing == .empty && head.done)

            for step in [1, 4, 100] {
                let dechunked = try Self.read("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x\r\n world\r\n0\r\na: b\r\n\r\n", step: step, dechunk: true)
                #expect(dechunked.body == "hello world" && dechunked.done, "by \(step)")
            }
        }

        /// However many interim answers come first, in one read: dropped in a loop, not by recursion.
        @Test func manyInterimAnswersBeforeTheFinalOne() throws {
            let answer = String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: 20_000) + "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            let read = try Self.read(answer, step: answer.utf8.count)
            #expect(read.head?.status == 200 && read.body == "ok" && read.done)
        }

        @Test func answersThatWouldDesynchroniseTheConnectionAreErrors() {
            let malformed = [
                "HTTP/1.1 2OO OK\r\n\r\n",
                "HTTP/2.0 200 OK\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\n",
                "HTTP/1.1 200 OK\r\n folded: line\r\n\r\n",
                "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                "HTTP/1.1 200 OK\r\nx: a\nb\r\n\r\n",
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
            ]
            for answer in malformed {
                #expect(throws: MalformedHTTP.self, "\(answer.debugDescription)") { try Self.read(answer, step: 1) }
            }
            var reader = ResponseReader(maxHeadBytes: 100)
            reader.expectResponse(toHEAD: false, dechunk: false)
            var long = ByteBuffer(string: "HTTP/1.1 200 OK\r\n" + String(repeating: "x-a: b\r\n", count: 20))
            #expect(throws: MalformedHTTP.self) { try reader.next(&long) }
        }

        @Test func headIsCopiedWithOnlyHopByHopLinesChanged() throws {
            let parsed = try #require(try Self.read(
                "HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: 1\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\nx-b: 2\r\n\r\n",
                step: 1000).head)
            var out = ByteBuffer()
            parsed.write(into: &out, http10: false, keepAlive: true, passesChunks: true, via: "1.1 shoal", memberHeader: (name: "x-member", value: "c1"))
            #expect(String(buffer: out) == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-b: 2\r\nvia: 1.1 shoal\r\nx-member: c1\r\n\r\n")
            out.clear()
            parsed.write(into: &out, http10: true, keepAlive: false, passesChunks: false, via: nil, memberHeader: nil)
            #expect(String(buffer: out) == "HTTP/1.0 200 OK\r\nx-b: 2\r\n\r\n")
        }
    }
}
