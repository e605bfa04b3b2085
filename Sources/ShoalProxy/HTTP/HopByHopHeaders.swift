import NIOHTTP1

/// Hop-by-hop header handling (RFC 9110 §7.6.1): these headers describe one connection, so a
/// relay drops them on both hops and sets its own.
enum HopByHopHeaders {
    /// Removes `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
    /// `Upgrade` and every header `Connection` names. Allocates nothing when there are none (the
    /// usual case), and removes in place otherwise.
    static func strip(_ headers: inout HTTPHeaders) {
        var found = false
        for (name, _) in headers where isHopByHop(name) {
            found = true
            break
        }
        guard found else { return }
        // Headers named by Connection first, while the Connection values are still there.
        for value in headers["connection"] {
            for token in value.split(separator: ",") {
                let name = token.trimmingASCIISpaces()
                if !name.isEmpty, !isHopByHop(name) { headers.remove(name: String(name)) }
            }
        }
        var proxyHeaders: [String] = []
        for (name, _) in headers where name.utf8.count > 6 && isProxy(name) {
            proxyHeaders.append(name)
        }
        for name in proxyHeaders { headers.remove(name: name) }
        for name in fixedNames { headers.remove(name: name) }
    }

    private static let fixedNames = ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]

    /// Whether `name` is hop-by-hop, by length first so most names are rejected in a compare or two.
    @inline(__always)
    static func isHopByHop<S: StringProtocol>(_ name: S) -> Bool {
        switch name.utf8.count {
        case 2: return equalsLowercase(name, "te")
        case 7: return equalsLowercase(name, "trailer") || equalsLowercase(name, "upgrade") || isProxy(name)
        case 10: return equalsLowercase(name, "connection") || equalsLowercase(name, "keep-alive") || isProxy(name)
        case 17: return equalsLowercase(name, "transfer-encoding") || isProxy(name)
        case 8...: return isProxy(name)
        default: return false
        }
    }

    /// `Proxy-Connection`, `Proxy-Authorization`, `Proxy-Authenticate` and their kin.
    @inline(__always)
    private static func isProxy<S: StringProtocol>(_ name: S) -> Bool {
        hasLowercasePrefix(name, "proxy-")
    }

    /// Case-insensitive equality with a lower-case ASCII literal made of letters and `-`.
    /// (`| 0x20` folds upper to lower case; for `-` it could also match CR, which no decoded name holds.)
    @inline(__always)
    static func equalsLowercase<S: StringProtocol>(_ name: S, _ lowercase: StaticString) -> Bool {
        guard name.utf8.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            var index = 0
            for byte in name.utf8 {
                if byte | 0x20 != expected[index] { return false }
                index += 1
            }
            return true
        }
    }

    @inline(__always)
    static func hasLowercasePrefix<S: StringProtocol>(_ name: S, _ prefix: StaticString) -> Bool {
        guard name.utf8.count >= prefix.utf8CodeUnitCount else { return false }
        return prefix.withUTF8Buffer { expected in
            for (index, byte) in zip(expected.indices, name.utf8) where byte | 0x20 != expected[index] {
                return false
            }
            return true
        }
    }
}

extension StringProtocol {
    /// The characters between leading and trailing spaces and tabs.
    func trimmingASCIISpaces() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
