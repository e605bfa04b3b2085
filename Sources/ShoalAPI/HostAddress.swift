#if canImport(Glibc)
import Glibc
#endif

/// The address this host tells others to use (a worker to front-ends, a broker to workers): its
/// hostname's first IPv4 address (on a test host, its namespace address from `/etc/hosts`), or
/// loopback when the name resolves to nothing else.
public enum HostAddress {
    /// Whether a listen address reaches this host only: `localhost`, 127.x or `::1`.
    public static func isLoopback(_ address: String) -> Bool {
        address == "localhost" || address == "::1" || address.hasPrefix("127.")
    }

    public static func advertised() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return "127.0.0.1" }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &results) == 0, let first = results else { return "127.0.0.1" }
        defer { freeaddrinfo(first) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let address = current.pointee.ai_addr {
                var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer -> String? in
                    var inAddress = pointer.pointee.sin_addr
                    return inet_ntop(AF_INET, &inAddress, &text, socklen_t(text.count)).map { _ in
                        String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    }
                }
                if let ip, !ip.hasPrefix("127.") { return ip }
            }
            entry = current.pointee.ai_next
        }
        return "127.0.0.1"
    }
}
