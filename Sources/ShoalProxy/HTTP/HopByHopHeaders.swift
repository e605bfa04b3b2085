import NIOHTTP1

/// Hop-by-hop header handling (RFC 9110 §7.6.1): these headers describe one connection, so a
/// relay drops them on both hops and sets its own.
enum HopByHopHeaders {
    /// The lower-case names `Connection` lists (besides hop-by-hop ones): dropped on forwarding too.
    static func namedByConnection(_ headers: HTTPHeaders) -> [String] {
        var names: [String] = []
        for value in headers["connection"] {
            for token in value.split(separator: ",") {
                let name = token.trimmingASCIISpaces()
                if !name.isEmpty, !isHopByHop(name) { names.append(name.lowercased()) }
            }
        }
        return names
    }

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

    /// The same, for a name as raw bytes (a member's response head, see ``ResponseReader``).
    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        let equals = ResponseReader.equalsLowercase
        switch name.count {
        case 2: return equals(name, "te")
        case 7: return equals(name, "trailer") || equals(name, "upgrade") || isProxy(name)
        case 10: return equals(name, "connection") || equals(name, "keep-alive") || isProxy(name)
        case 17: return equals(name, "transfer-encoding") || isProxy(name)
        case 8...: return isProxy(name)
        default: return false
        }
    }

    private static func isProxy(_ name: UnsafeRawBufferPointer) -> Bool {
        name.count > 6 && ResponseReader.equalsLowercase(UnsafeRawBufferPointer(rebasing: name[0..<6]), "proxy-")
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
