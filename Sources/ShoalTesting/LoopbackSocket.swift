#if canImport(Glibc)
import Glibc
#endif

/// Plain blocking TCP sockets (to 127.0.0.1 unless told another IPv4 address), for tests and
/// tools that must see the kernel's own behaviour (flow control, resets, exact bytes) rather than
/// an event loop's buffering.
public enum LoopbackSocket {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A socket connected to `host`:`port`; the caller closes it. `receiveTimeout` bounds each
    /// `recv` (`EAGAIN` when it passes).
    public static func connect(host: String = "127.0.0.1", port: Int, receiveTimeout: Duration? = nil) throws(Failure) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        if let receiveTimeout {
            let (seconds, attoseconds) = receiveTimeout.components
            var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let number = errno
            close(fd)
            throw Failure(description: "connect to \(host):\(port): errno \(number)")
        }
        return fd
    }
}
