#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ShoalTesting

/// A plain kernel socket, for tests that must see the kernel's own flow control: an event-loop
/// client buffers writes in user space, which would hide whether the relay pushes back.
final class BlockingSocket {
    private var fd: Int32

    init(port: Int) throws {
        fd = try LoopbackSocket.connect(port: port)
    }

    deinit { close() }

    func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }

    /// Sends all of `text`, blocking.
    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw TestFailure("send() failed: errno \(errno)") }
            bytes = bytes.dropFirst(sent)
        }
    }

    /// Sends `pattern` over and over without ever blocking, for `seconds`, pausing briefly
    /// whenever the kernel's buffers are full; returns how many bytes the kernel accepted.
    func sendWithoutBlocking(_ pattern: [UInt8], upTo limit: Int, seconds: Double) -> Int {
        let start = ContinuousClock.now
        var total = 0
        while total < limit, elapsed(since: start) < seconds {
            let sent = pattern.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, min($0.count, limit - total), Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if sent > 0 {
                total += sent
            } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                usleep(5_000)
            } else {
                break
            }
        }
        return total
    }

    /// Receives and counts bytes until the peer closes or `seconds` pass.
    func receiveAll(seconds: Double) -> Int {
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var total = 0
        while elapsed(since: start) < seconds {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received > 0 {
                total += received
            } else if received == 0 {
                break
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                break
            }
        }
        return total
    }

    /// Receives text until it contains `marker`, the peer closes, or `seconds` pass.
    func receiveText(until marker: String, seconds: Double) -> String {
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var text = ""
        while elapsed(since: start) < seconds, !text.contains(marker) {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received > 0 {
                text += String(decoding: buffer[0..<received], as: UTF8.self)
            } else if received == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                break
            }
        }
        return text
    }
}
